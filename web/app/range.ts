import { colour } from './highlight.js';

/**
 * The time range picked for a history query (`stored:<log> | …`), written into the query as the
 * filter on `time` a user would type (and shown as what runs): a preset (`1h`: the last hour, up
 * to now) or a custom range from the page's date pickers. A query that is not a history query
 * runs as typed.
 */
export function withRange(text: string, preset: string, from: string, to: string): string {
  if (preset === '' || !/^\s*stored:/.test(text)) return text;
  let filter: string;
  if (preset === 'custom') {
    // FayQL's integers stop at 2^53, short of a time in ns since 1970: the bounds are said as times before now().
    const ago = (when: string) => Math.max(0, Math.round((Date.now() - Date.parse(when)) / 1000));
    const bounds = [
      from === '' || Number.isNaN(Date.parse(from)) ? undefined : `time >= now() - ${ago(from)}s`,
      to === '' || Number.isNaN(Date.parse(to)) || Date.parse(to) >= Date.now() ? undefined : `time < now() - ${ago(to)}s`,
    ].filter((b): b is string => b !== undefined);
    if (bounds.length === 0) return text;
    filter = bounds.join(' and ');
  } else filter = `time > now() - ${preset}`;
  // After the source: before the first pipe, or at the end.
  const pipe = colour(text).find((c) => c.kind === 'pipe');
  return pipe === undefined ? `${text.trimEnd()} | where ${filter}` : `${text.slice(0, pipe.start).trimEnd()} | where ${filter} ${text.slice(pipe.start)}`;
}
