import type { ProbeCapabilities } from './catalog.js';
import { conjoin, conjuncts, type Expr } from './expr.js';
import type {
  AggregateOutput,
  AggregateSpec,
  BoundSource,
  Column,
  LogicalPlan,
  QueryOutput,
  RowOperation,
} from './logical.js';
import { printExpr } from './print-expr.js';

/** What the probe does with an event that passes its filter. */
export type ProbeAction = ProbeAggregate | ProbeShip;

/** Aggregate inside the probe; the agent reads the partial state every flush period. */
export interface ProbeAggregate {
  readonly kind: 'Aggregate';
  readonly keys: readonly Column[];
  readonly aggregates: readonly AggregateSpec[];
}

/**
 * Send these values of each event to the machine stage. A value is a field
 * (named as itself) or a provider function call (named by its printed text).
 */
export interface ProbeShip {
  readonly kind: 'Ship';
  readonly values: readonly Column[];
}

/** Runs where the event fires: in the kernel, or inside the traced process. */
export interface ProbeStage {
  readonly sources: readonly BoundSource[];
  readonly filter: Expr | undefined;
  readonly action: ProbeAction;
}

/** Runs in the agent, one per machine: what the probe could not do, then merging. */
export interface MachineStage {
  /** Predicate over shipped values that the probe could not evaluate. */
  readonly filter: Expr | undefined;
  /** Aggregation of shipped events, when the probe could not aggregate. */
  readonly aggregate: AggregateOutput | undefined;
  /** Event columns to emit, when the query does not aggregate. */
  readonly columns: readonly Column[] | undefined;
}

/** Runs in the client: merges every machine's partials, finalizes, ranks, emits. */
export interface ClusterStage {
  readonly output: QueryOutput;
  readonly rowOperations: readonly RowOperation[];
  readonly everyNs: number | undefined;
}

export type StageName = 'probe' | 'machine' | 'cluster';

/** Where one part of the query runs, and why there. */
export interface Placement {
  readonly part: string;
  readonly stage: StageName;
  readonly reason: string;
}

/** A query split into the three stages of Fay's pipeline. */
export interface StagedPlan {
  readonly logical: LogicalPlan;
  readonly probe: ProbeStage;
  readonly machine: MachineStage;
  readonly cluster: ClusterStage;
  readonly placements: readonly Placement[];
}

/**
 * Splits a logical plan into stages. Predicates go into the probe when every
 * provider involved can evaluate them; aggregation goes into the probe when the
 * whole filter is there and every key and aggregate is supported; otherwise the
 * probe ships the few values the machine stage needs.
 */
export function planStages(logical: LogicalPlan): StagedPlan {
  const placements: Placement[] = [];
  const providers = uniqueCapabilities(logical.sources);
  const reasonAgainst = (check: (c: ProbeCapabilities) => string | undefined) =>
    providers.map(check).find((r) => r !== undefined);

  const probeFilters: Expr[] = [];
  const machineFilters: Expr[] = [];
  for (const part of conjuncts(logical.filter)) {
    const reason = reasonAgainst((c) => c.cannotEvaluate(part));
    if (reason === undefined) {
      probeFilters.push(part);
      placements.push({ part: `where ${printExpr(part)}`, stage: 'probe', reason: 'evaluated where the event fires' });
    } else {
      machineFilters.push(part);
      placements.push({ part: `where ${printExpr(part)}`, stage: 'machine', reason });
    }
  }

  const output = logical.output;
  let action: ProbeAction;
  let machine: MachineStage;
  if (output.kind === 'Aggregate') {
    const text = describeAggregate(output);
    const reason =
      machineFilters.length > 0
        ? 'a predicate before it runs in the machine stage'
        : reasonAgainst((c) => firstReason(output, c));
    if (reason === undefined) {
      action = { kind: 'Aggregate', keys: output.keys, aggregates: output.aggregates };
      machine = { filter: undefined, aggregate: undefined, columns: undefined };
      placements.push({ part: text, stage: 'probe', reason: 'partial aggregate kept in the probe; the agent reads it every flush' });
    } else {
      const needed = [...machineFilters, ...output.keys.map((k) => k.expr), ...output.aggregates.flatMap((a) => (a.argument ? [a.argument] : []))];
      action = { kind: 'Ship', values: shippedValues(needed) };
      machine = { filter: conjoin(machineFilters), aggregate: output, columns: undefined };
      placements.push({ part: text, stage: 'machine', reason });
    }
  } else {
    const needed = [...machineFilters, ...output.columns.map((c) => c.expr)];
    action = { kind: 'Ship', values: shippedValues(needed) };
    machine = { filter: conjoin(machineFilters), aggregate: undefined, columns: output.columns };
    placements.push({
      part: `events (${output.columns.map((c) => c.name).join(', ')})`,
      stage: 'machine',
      reason: 'no aggregate: each matching event is shipped to the agent',
    });
  }

  if (output.kind === 'Aggregate') {
    placements.push({
      part: 'merge and finalize',
      stage: 'cluster',
      reason: 'every host’s partials are merged before values such as avg are computed',
    });
  }
  for (const op of logical.rowOperations) {
    placements.push({ part: describeRowOperation(op), stage: 'cluster', reason: 'needs the merged rows of every host' });
  }

  return Object.freeze({
    logical,
    probe: { sources: logical.sources, filter: conjoin(probeFilters), action },
    machine,
    cluster: { output, rowOperations: logical.rowOperations, everyNs: logical.everyNs },
    placements,
  });
}

function uniqueCapabilities(sources: readonly BoundSource[]): ProbeCapabilities[] {
  return [...new Set(sources.map((s) => s.schema.capabilities))];
}

function firstReason(output: AggregateOutput, c: ProbeCapabilities): string | undefined {
  for (const key of output.keys) {
    const reason = c.cannotGroupBy(key.expr) ?? c.cannotEvaluate(key.expr);
    if (reason) return `by ${key.name}: ${reason}`;
  }
  for (const a of output.aggregates) {
    const reason = c.cannotAggregate(a.function, a.argument) ?? (a.argument ? c.cannotEvaluate(a.argument) : undefined);
    if (reason) return `${a.name}: ${reason}`;
  }
  return undefined;
}

/** Fields read outside any call, and provider calls as whole values: what the probe must send. */
function shippedValues(exprs: readonly Expr[]): Column[] {
  const values = new Map<string, Expr>();
  const visit = (e: Expr): void => {
    switch (e.kind) {
      case 'Field':
        values.set(e.name, e);
        break;
      case 'Call':
        values.set(printExpr(e), e);
        break;
      case 'Negate':
      case 'Not':
      case 'Match':
        visit(e.operand);
        break;
      case 'Binary':
        visit(e.left);
        visit(e.right);
        break;
      case 'Const':
      case 'Column':
        break;
    }
  };
  exprs.forEach(visit);
  return [...values].map(([name, e]) => ({ name, expr: e }));
}

export function describeAggregate(output: AggregateOutput): string {
  const calls = output.aggregates
    .map((a) => {
      const call = `${a.function}(${a.argument ? printExpr(a.argument) : ''})`;
      return a.name === call || (a.name === a.function && !a.argument) ? call : `${a.name} = ${call}`;
    })
    .join(', ');
  const keys = output.keys.map((k) => (k.name === printExpr(k.expr) ? k.name : `${k.name} = ${printExpr(k.expr)}`));
  return keys.length > 0 ? `${calls} by ${keys.join(', ')}` : calls;
}

export function describeRowOperation(op: RowOperation): string {
  switch (op.kind) {
    case 'Filter':
      return `where ${printExpr(op.predicate)}`;
    case 'Compute':
      return `let ${op.columns.map((c) => `${c.name} = ${printExpr(c.expr)}`).join(', ')}`;
    case 'Top':
      return `top ${op.count} by ${op.by}${op.descending ? '' : ' asc'}`;
    case 'Limit':
      return `limit ${op.count}`;
  }
}
