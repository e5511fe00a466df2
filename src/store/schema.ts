import type { FieldSpec } from '../plan/catalog.js';
import { fieldsOf, type Expr } from '../plan/expr.js';
import type { StagedPlan } from '../plan/planner.js';
import { printExpr } from '../plan/print-expr.js';
import type { StoredField, StoredSchema } from './trace-store.js';

/** The field of the query's sources that an expression names, if it is one. */
function sourceField(plan: StagedPlan, name: string): FieldSpec | undefined {
  for (const source of plan.logical.sources) {
    const field = source.schema.fields.get(name) ?? source.schema.fieldFor?.(name);
    if (field) return field;
  }
  return undefined;
}

function storedField(plan: StagedPlan, name: string, e: Expr): StoredField {
  const unit = e.kind === 'Field' ? sourceField(plan, e.name)?.unit : undefined;
  return { name, type: e.type, ...(unit !== undefined && { unit }) };
}

/**
 * What the rows of a query's log will hold, kept with the log so that a history query is planned
 * against it: an event query's columns; an aggregating query's keys, aggregates and the fields
 * their arguments read.
 */
export function storedSchemaOf(plan: StagedPlan): StoredSchema {
  const output = plan.cluster.output;
  if (output.kind !== 'Aggregate') return { columns: output.columns.map((c) => storedField(plan, c.name, c.expr)), aggregates: [], argumentFields: [] };
  const argumentFields = new Map<string, StoredField>();
  for (const a of output.aggregates) {
    for (const name of fieldsOf(a.argument)) {
      const field = sourceField(plan, name);
      if (field) argumentFields.set(name, { name, type: field.type, ...(field.unit !== undefined && { unit: field.unit }) });
    }
  }
  return {
    columns: output.keys.map((k) => storedField(plan, k.name, k.expr)),
    aggregates: output.aggregates.map((a) => ({ name: a.name, function: a.function, ...(a.argument !== undefined && { argument: printExpr(a.argument) }), params: [...a.params] })),
    argumentFields: [...argumentFields.values()],
  };
}
