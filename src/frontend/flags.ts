import { UsageError } from '../errors.js';
import { DURATION_UNITS } from '../query/tokens.js';

/** Command-line values (sizes, counts, durations) as the front ends' flags and dot commands take them. */

/** Parses a command-line size such as 256M, 64K or 1G into bytes. */
export function parseSizeFlag(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)B?$/i.exec(text.trim());
  if (!match) throw new UsageError(`${flag} takes a size such as 256M, 64K or 1G, not "${text}"`);
  const scale = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(match[1]) * scale);
}

/** Parses a whole, positive command-line number. */
export function parseCountFlag(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} takes a whole number of at least 1, not "${text}"`);
  return n;
}

/** Parses a command-line duration such as 5s, 250ms or 2m into milliseconds. */
export function parseDurationFlag(text: string, flag: string, options: { zero?: boolean; maxMs?: number } = {}): number {
  if (options.zero && text.trim() === '0') return 0;
  const match = /^(\d+(?:\.\d+)?)([a-zµ]+)$/.exec(text.trim());
  const scale = match ? DURATION_UNITS[match[2]!] : undefined;
  if (!match || scale === undefined) {
    throw new UsageError(`${flag} takes a duration such as 5s, 250ms or 2m, not "${text}"`);
  }
  const ms = (Number(match[1]) * scale) / 1e6;
  if (!(ms > 0 || (options.zero && ms === 0))) throw new UsageError(`${flag} must be longer than zero`);
  if (options.maxMs !== undefined && ms > options.maxMs) throw new UsageError(`${flag} can be at most ${options.maxMs / 3_600_000}h`);
  return ms;
}
