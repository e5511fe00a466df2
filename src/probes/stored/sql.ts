import type { KeyPart } from '../../agg/group-table.js';
import type { AggregateSpec } from '../../plan/logical.js';
import type { Expr } from '../../plan/expr.js';

/**
 * FayQL expressions over a stored events log as DuckDB SQL, where the store can evaluate them
 * (the predicate and the aggregation of a history query pushed down into the scan). Each event is
 * the JSON `row` with its `time_ns` and `host`. Undefined: not expressible here, so the agent
 * evaluates it on the rows instead.
 */

/** A JSON path naming one key of `row`: `$.comm`, or `$."args.filename"` (the key's dots are its own; DuckDB reads a plain path faster). */
function jsonPath(name: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `'$.${name}'`;
  return `'$."${name.replaceAll("'", "''").replaceAll('"', '\\"')}"'`;
}

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

const COMPARISONS: Readonly<Record<string, string>> = { '==': '=', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
/** `/` and `%` are left to the agent: FayQL's are the kernel's integer ones (plan/evaluate.ts), SQL's on DOUBLE are not. */
const ARITHMETIC: Readonly<Record<string, string>> = { '+': '+', '-': '-', '*': '*' };

export function sqlOf(e: Expr): string | undefined {
  switch (e.kind) {
    case 'Const':
      if (typeof e.value === 'number') return Number.isFinite(e.value) ? `(${e.value})::DOUBLE` : undefined;
      if (typeof e.value === 'boolean') return e.value ? 'TRUE' : 'FALSE';
      return sqlString(e.value);
    case 'Field':
      if (e.name === 'time') return 'time_ns::DOUBLE';
      if (e.name === 'host') return 'host';
      // A missing value reads as the machine stage reads it: 0, false or "".
      if (e.type === 'int') return `coalesce(TRY_CAST(row->>${jsonPath(e.name)} AS DOUBLE), 0)`;
      if (e.type === 'bool') return `coalesce(TRY_CAST(row->>${jsonPath(e.name)} AS BOOLEAN), FALSE)`;
      return `coalesce(row->>${jsonPath(e.name)}, '')`;
    case 'Negate': {
      const operand = sqlOf(e.operand);
      return operand === undefined ? undefined : `(-${operand})`;
    }
    case 'Not': {
      const operand = sqlOf(e.operand);
      return operand === undefined ? undefined : `(NOT ${operand})`;
    }
    case 'Match': {
      // FayQL's globs (* ? [abc]) are SQL's GLOB's.
      const operand = sqlOf(e.operand);
      return operand === undefined ? undefined : `(${operand} GLOB ${sqlString(e.pattern)})`;
    }
    case 'Binary': {
      const left = sqlOf(e.left);
      const right = sqlOf(e.right);
      if (left === undefined || right === undefined) return undefined;
      if (e.operator === 'and' || e.operator === 'or') return `(${left} ${e.operator.toUpperCase()} ${right})`;
      const op = COMPARISONS[e.operator] ?? ARITHMETIC[e.operator];
      return op === undefined ? undefined : `(${left} ${op} ${right})`;
    }
    default:
      return undefined;
  }
}

/**
 * A group key as SQL: a plain field without sqlOf's coalesce (DuckDB groups the raw JSON value
 * faster), `orElse` being what a missing value reads as, for the reader of the rows to put in.
 */
export function sqlKey(e: Expr): { sql: string; orElse: KeyPart } | undefined {
  if (e.kind === 'Field' && e.name !== 'time' && e.name !== 'host') {
    if (e.type === 'int') return { sql: `TRY_CAST(row->>${jsonPath(e.name)} AS DOUBLE)`, orElse: 0 };
    if (e.type === 'bool') return { sql: `TRY_CAST(row->>${jsonPath(e.name)} AS BOOLEAN)`, orElse: false };
    return { sql: `row->>${jsonPath(e.name)}`, orElse: '' };
  }
  // sqlOf's expressions are never NULL: orElse is not read.
  const sql = sqlOf(e);
  return sql === undefined ? undefined : { sql, orElse: '' };
}

/** An aggregate the store computes: the SQL of its columns, and how they make the aggregate's wire state. */
export interface SqlAggregate {
  readonly columns: readonly string[];
  wire(values: readonly unknown[]): unknown;
}

const toNumber = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0);
const toNullable = (v: unknown): number | null => (v === null || v === undefined ? null : toNumber(v));

/** The aggregates SQL computes to the same state as Fay's (count, sum, min, max, avg), else undefined. */
export function sqlAggregate(spec: AggregateSpec): SqlAggregate | undefined {
  if (spec.scaled) return undefined;
  if (spec.function === 'count' && spec.argument === undefined) return { columns: ['count(*)'], wire: ([n]) => toNumber(n) };
  const argument = spec.argument && spec.argument.type === 'int' ? sqlOf(spec.argument) : undefined;
  if (argument === undefined) return undefined;
  switch (spec.function) {
    case 'sum':
      return { columns: [`coalesce(sum(${argument}), 0)`], wire: ([s]) => toNumber(s) };
    case 'min':
    case 'max':
      return { columns: [`${spec.function}(${argument})`], wire: ([v]) => toNullable(v) };
    case 'avg':
      return { columns: [`coalesce(sum(${argument}), 0)`, `count(${argument})`], wire: ([s, n]) => [toNumber(s), toNumber(n)] };
    default:
      return undefined;
  }
}
