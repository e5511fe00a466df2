import type { AggregateResult } from '../agg/aggregate.js';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import type { Coverage } from '../cluster/period-aligner.js';
import type { Cell } from '../cluster/rows.js';
import type { Unit } from '../plan/catalog.js';
import { formatCell, formatClock, renderHistogram } from './format.js';
import { printableLine } from './printable.js';

type Block = Extract<AggregateResult, { kind: 'hist' | 'topk' | 'sample' }>;

/** Results drawn as a block under their row rather than in a table cell (quantiles and a category's features fit a cell). */
function isBlock(cell: Cell | undefined): cell is Block {
  return typeof cell === 'object' && cell !== null && cell.kind !== 'quantiles' && cell.kind !== 'features';
}

function isStack(cell: Cell | undefined): boolean {
  return typeof cell === 'string' && cell.includes('\n');
}

/** Host names for a heading, one line whatever they hold. */
export function hostList(hosts: readonly string[]): string {
  return hosts.map(printableLine).join(', ');
}

/** Which hosts a result covers: `3/3 hosts`, `2/3 hosts (late: b) (missing: c)`, or one host's name. */
export function coverageText(coverage: Coverage): string {
  if (coverage.expected.length === 1 && coverage.reporting.length === 1 && !coverage.gaps?.length) return printableLine(coverage.reporting[0]!);
  const late = coverage.late.length > 0 ? ` (late: ${hostList(coverage.late)})` : '';
  const missing = coverage.missing.length > 0 ? ` (missing: ${hostList(coverage.missing)})` : '';
  const gapped = [...new Set((coverage.gaps ?? []).map((g) => g.host))].filter((h) => !coverage.missing.includes(h));
  const gaps = gapped.length > 0 ? ` (with gaps: ${hostList(gapped)})` : '';
  return `${coverage.reporting.length}/${coverage.expected.length} hosts${late}${missing}${gaps}`;
}

export function resultHeading(result: ResultMessage): string {
  const span = `${formatClock(result.startNs)} – ${formatClock(result.endNs)}`;
  const hosts = result.coverage ? coverageText(result.coverage) : result.hosts.length === 1 ? printableLine(result.hosts[0]!) : `${result.hosts.length} hosts`;
  const folded = result.foldedGroups > 0 ? `  (${result.foldedGroups} more groups folded into (other))` : '';
  const dropped = result.droppedEvents > 0 ? `  (${result.droppedEvents} events dropped over the cap)` : '';
  const uncounted = result.uncountedEvents > 0 ? `  (${result.uncountedEvents} events not counted: a kernel map was full)` : '';
  const sampled = result.sampleRate === undefined ? '' : `  sampled ${+(result.sampleRate * 100).toPrecision(6)}%`;
  return `${span}  ${hosts}  ${result.rows.length} row${result.rows.length === 1 ? '' : 's'}${sampled}${folded}${dropped}${uncounted}`;
}

/**
 * A result as text. Plain values make an aligned table; histograms and stacks
 * make one block per row, the way bpftrace prints its maps.
 */
export function renderResult(result: ResultMessage, maxRows = Infinity): string[] {
  const rows = result.rows.slice(0, maxRows);
  const blocks = rows.some((r) => r.some((c) => isBlock(c) || isStack(c)));
  const lines = blocks ? renderBlocks(result, rows) : renderTable(result.columns.map((c) => c.name), rows, result.columns.map((c) => c.unit));
  if (rows.length < result.rows.length) lines.push(`… ${result.rows.length - rows.length} more rows`);
  return lines;
}

/** An aligned table: numbers right-aligned, text left-aligned. */
export function renderTable(columnNames: readonly string[], rows: readonly (readonly Cell[])[], units: readonly (Unit | undefined)[] = []): string[] {
  const names = columnNames.map(printableLine);
  const text = rows.map((r) => names.map((_, i) => formatCell(r[i], units[i])));
  const numeric = names.map((_, i) => rows.every((r) => typeof r[i] === 'number' || r[i] === null));
  const widths = names.map((n, i) => Math.max(n.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(names), ...text.map(line)];
}

function renderBlocks(result: ResultMessage, rows: readonly (readonly Cell[])[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    const plain: string[] = [];
    const extra: string[] = [];
    result.columns.forEach((column, i) => {
      const cell = row[i];
      if (isBlock(cell)) {
        extra.push(`${printableLine(column.name)}:`, ...renderBlock(cell, column.unit).map((l) => `  ${l}`));
      } else if (isStack(cell)) {
        extra.push(`${printableLine(column.name)}:`, ...(cell as string).split('\n').filter((l) => l.trim() !== '').map((l) => `  ${printableLine(l.trim())}`));
      } else {
        plain.push(`${printableLine(column.name)}=${formatCell(cell, column.unit)}`);
      }
    });
    lines.push(plain.join('  '), ...extra, '');
  }
  return lines;
}

function renderBlock(cell: Block, unit: Unit | undefined): string[] {
  switch (cell.kind) {
    case 'hist':
      return renderHistogram(cell, undefined, unit);
    case 'topk':
      return renderTable(
        ['count', 'value'],
        cell.items.map((i) => [i.error > 0 ? `${i.count} (±${i.error})` : i.count, i.value]),
      );
    case 'sample': {
      const names = [...new Set(cell.events.flatMap((e) => Object.keys(e)))];
      return [`${cell.events.length} of ${cell.seen} events`, ...renderTable(names, cell.events.map((e) => names.map((n) => e[n] ?? null)))];
    }
  }
}
