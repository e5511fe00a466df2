import type { HistResult } from '../agg/aggregates.js';
import { DURATION_UNITS } from '../query/tokens.js';
import { UsageError } from '../errors.js';
import type { Cell } from '../cluster/rows.js';

/** A cell as text in a table: numbers as they are, averages with two decimals, stacks on one line. */
export function formatCell(cell: Cell | undefined): string {
  if (cell === null || cell === undefined) return '-';
  if (typeof cell === 'number') return Number.isInteger(cell) ? String(cell) : cell.toFixed(2);
  if (typeof cell === 'object') return `hist(${cell.total})`;
  if (typeof cell === 'boolean') return String(cell);
  return cell;
}

/** Wall-clock ns since the epoch as local HH:MM:SS.mmm (or .uuuuuu with microseconds). */
export function formatClock(ns: number, microseconds = false): string {
  const d = new Date(ns / 1e6);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const fraction = microseconds ? pad(Math.floor((ns / 1e3) % 1e6), 6) : pad(d.getMilliseconds(), 3);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${fraction}`;
}

/** bpftrace's compact power-of-two numbers: 1K, 2M, … */
function compact(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  while (n >= 1024 && n % 1024 === 0 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n}${units[i]}`;
}

function bucketLabel(low: number | null, high: number): string {
  if (low === null) return '(..., 0)';
  if (low === high) return `[${compact(low)}]`;
  return `[${compact(low)}, ${compact(high + 1)})`;
}

/** A histogram drawn as bpftrace draws it: one row per bucket, a bar of @ scaled to the largest. */
export function renderHistogram(hist: HistResult, width = 52): string[] {
  const labels = hist.buckets.map((b) => bucketLabel(b.low, b.high));
  const labelWidth = Math.max(0, ...labels.map((l) => l.length));
  const countWidth = Math.max(1, ...hist.buckets.map((b) => String(b.count).length));
  const most = Math.max(1, ...hist.buckets.map((b) => b.count));
  return hist.buckets.map((b, i) => {
    const bar = '@'.repeat(Math.round((b.count / most) * width));
    return `${labels[i]!.padEnd(labelWidth)} ${String(b.count).padStart(countWidth)} |${bar.padEnd(width)}|`;
  });
}

/** Parses a command-line duration such as 5s, 250ms or 2m into milliseconds. */
export function parseDurationFlag(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)([a-zµ]+)$/.exec(text.trim());
  const scale = match ? DURATION_UNITS[match[2]!] : undefined;
  if (!match || scale === undefined) {
    throw new UsageError(`${flag} takes a duration such as 5s, 250ms or 2m, not "${text}"`);
  }
  const ms = (Number(match[1]) * scale) / 1e6;
  if (!(ms > 0)) throw new UsageError(`${flag} must be longer than zero`);
  return ms;
}
