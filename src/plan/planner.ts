import type { ProbeCapabilities } from './catalog.js';
import { conjoin, conjuncts, type Expr } from './expr.js';
import type {
  AggregateSpec,
  BoundSource,
  Column,
  LogicalPlan,
  QueryOutput,
  RecordOutput,
  RowOperation,
  Windowing,
} from './logical.js';
import { QueryError } from '../errors.js';
import { printExpr } from './print-expr.js';

/**
 * Aggregates kept inside the probe, read every flush as partial states.
 * `slots` gives each one's position among the query's aggregates.
 */
export interface ProbeAggregate {
  readonly keys: readonly Column[];
  readonly aggregates: readonly AggregateSpec[];
  readonly slots: readonly number[];
}

/**
 * Values of each passing event sent to the machine stage. A value is a field
 * (named as itself) or a provider function call (named by its printed text).
 */
export interface ProbeShip {
  readonly values: readonly Column[];
}

/** Runs where the event fires: in the kernel, or inside the traced process. */
export interface ProbeStage {
  readonly sources: readonly BoundSource[];
  readonly filter: Expr | undefined;
  /** Keep each event that passes the filter with this probability (undefined: all). */
  readonly sampleRate: number | undefined;
  /** What the probe aggregates itself; undefined when it aggregates nothing. */
  readonly aggregate: ProbeAggregate | undefined;
  /** What it ships per event; undefined when the machine stage needs no events. */
  readonly ship: ProbeShip | undefined;
  /** The flight recorder kept where events fire, if the query records. */
  readonly record: RecordOutput | undefined;
}

/** Aggregates the machine stage computes from shipped events; `slots` as in ProbeAggregate. */
export interface MachineAggregate {
  readonly keys: readonly Column[];
  readonly aggregates: readonly AggregateSpec[];
  readonly slots: readonly number[];
}

/** Runs in the agent, one per machine: what the probe could not do, then merging. */
export interface MachineStage {
  /** Predicate over shipped values that the probe could not evaluate. */
  readonly filter: Expr | undefined;
  /** Aggregation of shipped events, for the aggregates the probe does not keep. */
  readonly aggregate: MachineAggregate | undefined;
  /** Event columns to emit, when the query does not aggregate. */
  readonly columns: readonly Column[] | undefined;
}

/** Runs in the client: merges every machine's partials, finalizes, ranks, emits. */
export interface ClusterStage {
  readonly output: QueryOutput;
  readonly rowOperations: readonly RowOperation[];
  readonly windowing: Windowing;
  /** The query's sampling rate, reported with each result. */
  readonly sampleRate: number | undefined;
  /**
   * Groups every result shows, with their aggregates' empty values when nothing came: for `… by
   * probe`, each probe the query named (SourceSchema.probeName). Empty otherwise.
   */
  readonly namedGroups: readonly (readonly string[])[];
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
 * provider involved can evaluate them. Each aggregate goes into the probe when
 * the providers can keep it there and the whole filter runs there too (else
 * the probe would count events the machine stage rejects); the others are
 * computed by the machine stage from the few values the probe ships.
 */
export function planStages(logical: LogicalPlan): StagedPlan {
  const placements: Placement[] = [];
  const providers = uniqueCapabilities(logical.sources);
  const reasonAgainst = (check: (c: ProbeCapabilities) => string | undefined) =>
    providers.map(check).find((r) => r !== undefined);

  const probeFilters: Expr[] = [];
  const machineFilters: Expr[] = [];
  if (logical.sampleRate !== undefined) {
    placements.push({ part: `sample ${+(logical.sampleRate * 100).toPrecision(6)}%`, stage: 'probe', reason: 'decided where the event fires, after the filter' });
  }
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
  if (output.kind === 'Record') return planRecording(logical, output, probeFilters, machineFilters, placements, reasonAgainst);
  let aggregate: ProbeAggregate | undefined;
  let shipped: Expr[] = [...machineFilters];
  let machine: MachineStage;
  if (output.kind === 'Aggregate') {
    const keyReason =
      machineFilters.length > 0
        ? 'a predicate before it runs in the machine stage'
        : output.keys.map((k) => reasonAgainst((c) => c.cannotGroupBy(k.expr) ?? c.cannotEvaluate(k.expr))).find(Boolean);
    const inProbe: number[] = [];
    const inMachine: number[] = [];
    output.aggregates.forEach((a, slot) => {
      const reason =
        keyReason ?? reasonAgainst((c) => c.cannotAggregate(a) ?? (a.argument ? c.cannotEvaluate(a.argument) : undefined));
      const part = `${describeCall(a)}${output.keys.length ? ` by ${output.keys.map((k) => k.name).join(', ')}` : ''}`;
      if (reason === undefined) {
        inProbe.push(slot);
        placements.push({ part, stage: 'probe', reason: 'partial aggregate kept in the probe; the agent reads it every flush' });
      } else {
        inMachine.push(slot);
        placements.push({ part, stage: 'machine', reason: `${reason}; the probe ships the values it needs` });
      }
    });
    const pick = (slots: number[]) => ({ keys: output.keys, aggregates: slots.map((i) => output.aggregates[i]!), slots });
    aggregate = inProbe.length > 0 ? pick(inProbe) : undefined;
    if (inMachine.length > 0) {
      const machineAggregates = inMachine.map((i) => output.aggregates[i]!);
      shipped.push(...output.keys.map((k) => k.expr));
      for (const a of machineAggregates) {
        if (a.argument) shipped.push(a.argument);
        for (const c of a.columns ?? []) shipped.push(c.expr);
      }
      if (machineAggregates.some((a) => ['first', 'last', 'sample'].includes(a.function))) shipped.push(TIME);
    }
    machine = { filter: conjoin(machineFilters), aggregate: inMachine.length > 0 ? pick(inMachine) : undefined, columns: undefined };
    placements.push({
      part: 'merge and finalize',
      stage: 'cluster',
      reason: 'every host’s partials are merged before values such as avg are computed',
    });
  } else {
    shipped = [...machineFilters, ...output.columns.map((c) => c.expr)];
    machine = { filter: conjoin(machineFilters), aggregate: undefined, columns: output.columns };
    placements.push({
      part: `events (${output.columns.map((c) => c.name).join(', ')})`,
      stage: 'machine',
      reason: 'no aggregate: each matching event is shipped to the agent',
    });
  }
  for (const op of logical.rowOperations) {
    placements.push({ part: describeRowOperation(op), stage: 'cluster', reason: 'needs the merged rows of every host' });
  }

  const needsEvents = output.kind === 'Events' || machine.aggregate !== undefined;
  return Object.freeze({
    logical,
    probe: {
      sources: logical.sources,
      filter: conjoin(probeFilters),
      sampleRate: logical.sampleRate,
      aggregate,
      ship: needsEvents ? { values: shippedValues(shipped) } : undefined,
      record: undefined,
    },
    machine,
    cluster: { output, rowOperations: logical.rowOperations, windowing: logical.windowing, sampleRate: logical.sampleRate, namedGroups: namedGroups(logical, output) },
    placements,
  });
}

/**
 * A recording lives where events fire: its filter, its columns and its
 * trigger must all run in the probe, or the query is refused with the reason.
 */
function planRecording(
  logical: LogicalPlan,
  output: RecordOutput,
  probeFilters: readonly Expr[],
  machineFilters: readonly Expr[],
  placements: Placement[],
  reasonAgainst: (check: (c: ProbeCapabilities) => string | undefined) => string | undefined,
): StagedPlan {
  const refuse = (what: string, e: Expr, reason: string): never => {
    const span = e.span ?? { start: 0, end: logical.query.length };
    throw new QueryError(`record keeps events where they fire, but ${what} cannot run there: ${reason}`, logical.query, span, {
      hint: 'record with a filter, columns and trigger the probe can evaluate (fay explain shows what runs where)',
    });
  };
  for (const part of machineFilters) refuse(`where ${printExpr(part)}`, part, reasonAgainst((c) => c.cannotEvaluate(part))!);
  for (const column of output.columns) {
    const reason = reasonAgainst((c) => c.cannotEvaluate(column.expr));
    if (reason) refuse(`the column ${column.name}`, column.expr, reason);
  }
  if (output.trigger) {
    const trigger = output.trigger;
    const reason = reasonAgainst((c) => c.cannotEvaluate(trigger));
    if (reason) refuse(`dump when ${printExpr(trigger)}`, trigger, reason);
  }
  placements.push({
    part: `record last ${output.size}${output.trigger ? ` dump when ${printExpr(output.trigger)}` : ''}`,
    stage: 'probe',
    reason: output.trigger ? 'a ring per CPU where events fire, written out when the trigger holds' : 'a ring per CPU where events fire, written out at the end',
  });
  return Object.freeze({
    logical,
    probe: { sources: logical.sources, filter: conjoin([...probeFilters]), sampleRate: logical.sampleRate, aggregate: undefined, ship: undefined, record: output },
    machine: { filter: undefined, aggregate: undefined, columns: undefined },
    cluster: { output, rowOperations: logical.rowOperations, windowing: logical.windowing, sampleRate: logical.sampleRate, namedGroups: namedGroups(logical, output) },
    placements,
  });
}

/** Event time, shipped for aggregates that order or keep events by it. */
const TIME: Expr = Object.freeze({ kind: 'Field', name: 'time', type: 'int' });

function uniqueCapabilities(sources: readonly BoundSource[]): ProbeCapabilities[] {
  return [...new Set(sources.map((s) => s.schema.capabilities))];
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

/** An aggregate call as written: `p = quantiles(duration, 0.5, 0.99)`. */
export function describeCall(a: AggregateSpec): string {
  const args = [...(a.argument ? [printExpr(a.argument)] : []), ...a.params.map(String)].join(', ');
  const call = `${a.function}(${args})${a.scaled ? ' scaled' : ''}`;
  return a.name === call || (a.name === a.function && args === '') ? call : `${a.name} = ${call}`;
}

/** Aggregates and keys as written: `count(), avg(duration) by comm`. */
export function describeAggregate(output: { readonly keys: readonly Column[]; readonly aggregates: readonly AggregateSpec[] }): string {
  const calls = output.aggregates.map(describeCall).join(', ');
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
    case 'Categorize':
      return `categorize ${op.entity} by ${op.features.join(', ')}${op.k === undefined ? '' : ` k=${op.k}`} (the mix of ${op.count} by ${op.features.join(', ')}, square-rooted shares; ${op.k === undefined ? 'k-means++ with k chosen by silhouette, or outliers from the median mix under 8 entities' : `k-means++, ${op.k} categories`})`;
  }
}

/** The probes a query named, as groups of a `… by probe` aggregate (see ClusterStage.namedGroups). */
function namedGroups(logical: LogicalPlan, output: QueryOutput): (readonly string[])[] {
  if (output.kind !== 'Aggregate' || output.keys.length !== 1) return [];
  const key = output.keys[0]!.expr;
  if (key.kind !== 'Field' || key.name !== 'probe') return [];
  const names = logical.sources.flatMap((s) => (s.schema.probeName === undefined ? [] : [s.schema.probeName]));
  return [...new Set(names)].map((name) => [name]);
}
