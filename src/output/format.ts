import type { HistResult, QuantilesResult } from '../agg/aggregate.js';
import type { Unit } from '../plan/catalog.js';
import type { Cell } from '../cluster/rows.js';
import { printableLine } from './printable.js';

/**
 * A cell as text in a table: numbers as they are, averages with two decimals, quantiles as p50=… p99=…;
 * in a column of durations (unit ns), numbers as times: 845ns, 12.3µs, 1.05ms, 2.50s.
 */
export function formatCell(cell: Cell | undefined, unit?: Unit): string {
  if (cell === null || cell === undefined) return '-';
  if (typeof cell === 'number') return unit === 'ns' ? formatDuration(cell) : formatNumber(cell);
  if (typeof cell === 'boolean') return String(cell);
  if (typeof cell === 'string') return printableLine(cell);
  switch (cell.kind) {
    case 'quantiles':
      return formatQuantiles(cell, unit);
    case 'hist':
      return `hist(${cell.total})`;
    case 'topk':
      return `topk(${cell.items.length} of ${cell.total})`;
    case 'sample':
      return `sample(${cell.events.length} of ${cell.seen})`;
    case 'features':
      return cell.items.length === 0 ? '-' : cell.items.map((f) => `${printableLine(f.feature)} ${percent(f.share)} (all ${percent(f.overall)})`).join(', ');
  }
}

/** A share as a percentage: 62%, 4.1%, 0.35%. */
function percent(share: number): string {
  const p = share * 100;
  return `${p >= 10 ? Math.round(p) : Number(p.toPrecision(2))}%`;
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? String(Math.round(n)) : n.toFixed(2);
}

/** `p50=1203 p99=8192`; quantiles are within 1%, so they print as whole numbers once large. */
export function formatQuantiles(q: QuantilesResult, unit?: Unit): string {
  return q.quantiles.map(({ p, value }) => `p${+(p * 100).toFixed(3)}=${value === null ? '-' : formatCell(value, unit)}`).join(' ');
}

/** ns as a time, to three significant digits: 845ns, 12.3µs, 1.05ms, 2.50s (and a minus sign where negative). */
export function formatDuration(ns: number): string {
  // The unit is chosen after rounding: 999.7µs is 1.00ms.
  const size = Number(Math.abs(ns).toPrecision(3));
  const [scale, suffix] = size < 1e3 ? [1, 'ns'] : size < 1e6 ? [1e3, 'µs'] : size < 1e9 ? [1e6, 'ms'] : [1e9, 's'];
  const value = ns / scale;
  return `${scale === 1 || Math.abs(value) >= 1e3 ? Math.round(value) : value.toPrecision(3)}${suffix}`;
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
  while (Math.abs(n) >= 1024 && n % 1024 === 0 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n}${units[i]}`;
}

function bucketLabel(low: number | null, high: number | null, unit: Unit | undefined): string {
  const bound = unit === 'ns' ? formatDuration : compact;
  if (low === null) return `(..., ${bound((high ?? -1) + 1)})`;
  if (high === null) return `[${bound(low)}, ...)`;
  if (low === high) return `[${bound(low)}]`;
  return `[${bound(low)}, ${bound(high + 1)})`;
}

/** Each bucket's bounds as text, as the terminal prints them: [1.05ms, 2.10ms) for durations, [4K, 8K) else. */
export function histogramLabels(hist: HistResult, unit?: Unit): string[] {
  return hist.buckets.map((b) => bucketLabel(b.low, b.high, unit));
}

/**
 * A histogram drawn as bpftrace draws it: one row per bucket, a bar of @ scaled to the largest;
 * the buckets of durations (unit ns) bounded by times, [1.05ms, 2.10ms).
 */
export function renderHistogram(hist: HistResult, width = 52, unit?: Unit): string[] {
  const labels = histogramLabels(hist, unit);
  const labelWidth = Math.max(0, ...labels.map((l) => l.length));
  const countWidth = Math.max(1, ...hist.buckets.map((b) => String(b.count).length));
  const most = Math.max(1, ...hist.buckets.map((b) => b.count));
  return hist.buckets.map((b, i) => {
    const bar = '@'.repeat(Math.round((b.count / most) * width));
    return `${labels[i]!.padEnd(labelWidth)} ${String(b.count).padStart(countWidth)} |${bar.padEnd(width)}|`;
  });
}
