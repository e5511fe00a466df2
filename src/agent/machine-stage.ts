import type { AggregateKind } from '../agg/aggregate.js';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { compileExpr, type Evaluator, type Row } from '../plan/evaluate.js';
import type { AggregateSpec } from '../plan/logical.js';
import type { StagedPlan } from '../plan/planner.js';
import type { ProbePartial, ProbeSink, RecordingDump } from '../probes/provider.js';

/** One machine's aggregate states for one period. */
export interface MachineWindow {
  readonly host: string;
  /** States of every aggregate of the query, in the query's order. */
  readonly table: GroupTable;
  /** Wall-clock ns since the epoch. */
  readonly startNs: number;
  readonly endNs: number;
  /** Events the probes dropped in this period (over the events-per-second cap). */
  readonly droppedEvents: number;
  /** Events of this period the probes could not count (a kernel map was full). */
  readonly uncountedEvents: number;
}

/** Where a machine stage delivers what it produces. */
export interface MachineSink {
  window(window: MachineWindow): void;
  events(host: string, rows: readonly Row[]): void;
  notice(host: string, message: string): void;
  dump(host: string, dump: RecordingDump): void;
  /** The host is removing its probes after a stop: `left` of `total` still in. */
  detaching(host: string, left: number, total: number): void;
}

export interface MachineStageOptions {
  /** Groups kept per period before the rest fold into (other). */
  readonly maxGroups?: number;
}

/** How the machine stage reads one aggregate's input from a shipped event. */
function inputOf(spec: AggregateSpec): (row: Row) => unknown {
  if (spec.function === 'sample') {
    const columns = (spec.columns ?? []).map((c) => ({ name: c.name, value: compileExpr(c.expr) }));
    return (row) => Object.fromEntries(columns.map((c) => [c.name, c.value(row)]));
  }
  return spec.argument ? compileExpr(spec.argument) : () => undefined;
}

/**
 * The agent's part of a query on one machine: finishes what the probe could
 * not (filters, aggregates it cannot keep, projection) and hands on one
 * partial per period with every aggregate of the query in place: the
 * probe's own partial states and those computed here from shipped events.
 */
export class MachineStage implements ProbeSink {
  private readonly filter: Evaluator | undefined;
  private readonly keys: Evaluator[] = [];
  private readonly inputs: ((row: Row) => unknown)[] = [];
  private readonly columns: { name: string; value: Evaluator }[] | undefined;
  /** Every aggregate of the query, in order; empty for an event query. */
  private readonly kinds: readonly AggregateKind[];
  private readonly machineKinds: readonly AggregateKind[];
  private table: GroupTable | undefined;
  private periodStartNs: number;
  private droppedEvents = 0;

  constructor(
    private readonly plan: StagedPlan,
    private readonly host: string,
    private readonly sink: MachineSink,
    startNs: number,
    private readonly options: MachineStageOptions = {},
  ) {
    const { machine, cluster } = plan;
    this.filter = machine.filter && compileExpr(machine.filter);
    this.kinds = cluster.output.kind === 'Aggregate' ? cluster.output.aggregates.map(createAggregate) : [];
    this.machineKinds = machine.aggregate?.slots.map((slot) => this.kinds[slot]!) ?? [];
    if (machine.aggregate) {
      this.keys = machine.aggregate.keys.map((k) => compileExpr(k.expr));
      this.inputs = machine.aggregate.aggregates.map(inputOf);
      this.table = this.newTable();
    }
    this.columns = machine.columns?.map((c) => ({ name: c.name, value: compileExpr(c.expr) }));
    this.periodStartNs = startNs;
  }

  /** Whether periods end on this stage's own clock: it aggregates events and no probe flushes partials. */
  get ticksItself(): boolean {
    return this.table !== undefined && this.plan.probe.aggregate === undefined;
  }

  /** A probe's partial closes a period: its states and those gathered here since the last one go on together. */
  partial(partial: ProbePartial): void {
    const probe = this.plan.probe.aggregate!;
    const identity = this.table === undefined && probe.slots.every((slot, i) => slot === i) && probe.slots.length === this.kinds.length;
    let table = partial.table;
    if (!identity) {
      table = this.newTable(this.kinds);
      table.mergeSlots(partial.table, probe.slots);
      if (this.table) table.mergeSlots(this.table, this.plan.machine.aggregate!.slots);
      this.table = this.table && this.newTable();
    }
    this.sink.window({ host: this.host, table, startNs: partial.startNs, endNs: partial.endNs, droppedEvents: this.takeDropped(), uncountedEvents: partial.uncountedEvents ?? 0 });
    this.periodStartNs = partial.endNs;
  }

  events(rows: readonly Row[]): void {
    const passed = this.filter ? rows.filter((r) => this.filter!(r)) : rows;
    if (passed.length === 0) return;
    if (this.table) {
      for (const row of passed) {
        const time = typeof row.time === 'number' ? row.time : Date.now() * 1e6;
        this.table.add(
          this.keys.map((k) => k(row)),
          this.inputs.map((input) => input(row)),
          time,
        );
      }
      return;
    }
    if (this.columns) {
      const columns = this.columns;
      this.sink.events(
        this.host,
        passed.map((row) => Object.fromEntries(columns.map((c) => [c.name, c.value(row)]))),
      );
    }
  }

  notice(message: string): void {
    this.sink.notice(this.host, message);
  }

  /** Aggregated queries report drops with their next period; event queries say so at once. */
  dropped(events: number): void {
    if (this.kinds.length > 0) this.droppedEvents += events;
    else this.sink.notice(this.host, `${events} events over the cap of events per second were dropped where they fired`);
  }

  dump(dump: RecordingDump): void {
    this.sink.dump(this.host, dump);
  }

  detaching(left: number, total: number): void {
    this.sink.detaching(this.host, left, total);
  }

  private takeDropped(): number {
    const n = this.droppedEvents;
    this.droppedEvents = 0;
    return n;
  }

  /** A probe that keeps time itself closes a period: what the stage gathered since the last one goes on. */
  period(startNs: number, endNs: number): void {
    if (!this.ticksItself) return;
    this.periodStartNs = startNs;
    this.tick(endNs);
  }

  /** Closes the current period of a stage that keeps its own clock (see ticksItself). */
  tick(endNs: number): void {
    if (!this.ticksItself) return;
    const table = this.newTable(this.kinds);
    table.mergeSlots(this.table!, this.plan.machine.aggregate!.slots);
    this.sink.window({ host: this.host, table, startNs: this.periodStartNs, endNs, droppedEvents: this.takeDropped(), uncountedEvents: 0 });
    this.table = this.newTable();
    this.periodStartNs = endNs;
  }

  private newTable(kinds: readonly AggregateKind[] = this.machineKinds): GroupTable {
    return new GroupTable(kinds, this.options.maxGroups === undefined ? {} : { maxGroups: this.options.maxGroups });
  }
}
