import type { AggregateFunction, AggregateResult } from '../agg/aggregate.js';
import type { GroupTable } from '../agg/group-table.js';
import { compileExpr } from '../plan/evaluate.js';
import type { Value } from '../plan/expr.js';
import type { Unit } from '../plan/catalog.js';
import type { AggregateOutput, RowOperation } from '../plan/logical.js';
import type { FeaturesCell } from '../mine/categorizer.js';

/** One value of a result: a key or computed value, an aggregate's result, a category's features (categorize), or nothing. */
export type Cell = Value | AggregateResult | FeaturesCell;

export interface ResultColumn {
  readonly name: string;
  readonly role: 'key' | 'aggregate' | 'computed';
  readonly function?: AggregateFunction;
  /** The unit of its values (ns: shown as a time). */
  readonly unit?: Unit;
}

/** Finalized rows of an aggregated query, in display order. */
export interface ResultRows {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly Cell[])[];
}

/** A value for ranking and for expressions: a histogram, quantiles, topk or sample counts as its count. */
function numeric(cell: Cell | undefined): Value {
  if (cell === null || cell === undefined) return 0;
  if (typeof cell !== 'object') return cell;
  switch (cell.kind) {
    case 'hist':
    case 'topk':
      return cell.total;
    case 'quantiles':
      return cell.count;
    case 'sample':
      return cell.seen;
    case 'features':
      return cell.items.length;
  }
}

/**
 * Finalizes merged states into rows and applies the query's row operations
 * (where, let, top, limit) in order. Without `top`, rows are ordered by the
 * first aggregate, largest first.
 */
export function finalizeRows(
  table: GroupTable,
  output: AggregateOutput,
  operations: readonly RowOperation[],
  sampleRate = 1,
  /** Groups shown even when nothing came for them (ClusterStage.namedGroups), with their aggregates' empty values. */
  namedGroups: readonly (readonly Cell[])[] = [],
): ResultRows {
  const columns: ResultColumn[] = [
    ...output.keys.map((k) => ({ name: k.name, role: 'key' as const })),
    ...output.aggregates.map((a) => ({ name: a.name, role: 'aggregate' as const, function: a.function, ...(a.unit !== undefined && { unit: a.unit }) })),
  ];
  // `scaled` aggregates of a sampled query estimate the unsampled total.
  const scale = output.aggregates.map((a) => (a.scaled ? 1 / sampleRate : 1));
  let rows: Cell[][] = table
    .finalize()
    .map((g) => [...g.key, ...g.values.map((v, i) => (scale[i] !== 1 && typeof v === 'number' ? Math.round(v * scale[i]!) : v))]);
  // Without keys there is always exactly one row: count() of nothing is 0.
  if (output.keys.length === 0 && rows.length === 0) rows = [table.kinds.map((k) => k.finalize(k.empty()))];
  // A probe the query named that never fired is an answer too: 0, not an absent row.
  if (namedGroups.length > 0) {
    const present = new Set(rows.map((r) => JSON.stringify(r.slice(0, output.keys.length))));
    for (const key of namedGroups) {
      if (!present.has(JSON.stringify(key))) rows.push([...key, ...table.kinds.map((k) => k.finalize(k.empty()))]);
    }
  }
  const firstAggregate = output.keys.length;
  // categorize orders its own rows: sorting what it reshapes would be wasted.
  if (!operations.some((op) => op.kind === 'Categorize')) rows.sort((a, b) => compareCells(b[firstAggregate], a[firstAggregate]) || compareKeys(a, b, firstAggregate));

  for (const op of operations) {
    const index = new Map(columns.map((c, i) => [c.name, i]));
    const view = (row: Cell[]) => Object.fromEntries(columns.map((c, i) => [c.name, numeric(row[i])]));
    switch (op.kind) {
      case 'Filter': {
        const predicate = compileExpr(op.predicate);
        rows = rows.filter((row) => predicate(view(row)));
        break;
      }
      case 'Compute':
        for (const column of op.columns) {
          const value = compileExpr(column.expr);
          rows = rows.map((row) => [...row, value(view(row))]);
          columns.push({ name: column.name, role: 'computed' });
        }
        break;
      case 'Top': {
        const at = index.get(op.by)!;
        const sign = op.descending ? -1 : 1;
        rows = [...rows].sort((a, b) => sign * compareCells(a[at], b[at]) || compareKeys(a, b, firstAggregate)).slice(0, op.count);
        break;
      }
      case 'Limit':
        rows = rows.slice(0, op.count);
        break;
      case 'Categorize':
        // The last operation, and one with a memory of past windows: the ClusterStage's Categorizer applies it.
        break;
    }
  }
  return { columns, rows };
}

function compareCells(a: Cell | undefined, b: Cell | undefined): number {
  const x = numeric(a);
  const y = numeric(b);
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return String(x).localeCompare(String(y));
}

function compareKeys(a: readonly Cell[], b: readonly Cell[], count: number): number {
  for (let i = 0; i < count; i++) {
    const c = compareCells(a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}
