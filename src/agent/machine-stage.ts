import { AGGREGATES } from '../agg/aggregates.js';
import { GroupTable } from '../agg/group-table.js';
import { compileExpr, type Evaluator, type Row } from '../plan/evaluate.js';
import type { StagedPlan } from '../plan/planner.js';
import type { ProbePartial, ProbeSink } from '../probes/provider.js';

/** One machine's aggregate states for one period. */
export interface MachineWindow {
  readonly host: string;
  readonly table: GroupTable;
  /** Wall-clock ns since the epoch. */
  readonly startNs: number;
  readonly endNs: number;
}

/** Where a machine stage delivers what it produces. */
export interface MachineSink {
  window(window: MachineWindow): void;
  events(host: string, rows: readonly Row[]): void;
  notice(host: string, message: string): void;
}

/**
 * The agent's part of a query on one machine: finishes what the probe could
 * not (filters, aggregation of shipped events, projection) and hands on
 * per-period partials. Partials the probe aggregated pass straight through.
 */
export class MachineStage implements ProbeSink {
  private readonly filter: Evaluator | undefined;
  private readonly keys: Evaluator[] = [];
  private readonly args: Evaluator[] = [];
  private readonly columns: { name: string; value: Evaluator }[] | undefined;
  private table: GroupTable | undefined;
  private periodStartNs: number;

  constructor(
    private readonly plan: StagedPlan,
    private readonly host: string,
    private readonly sink: MachineSink,
    startNs: number,
  ) {
    const { machine } = plan;
    this.filter = machine.filter && compileExpr(machine.filter);
    if (machine.aggregate) {
      this.keys = machine.aggregate.keys.map((k) => compileExpr(k.expr));
      this.args = machine.aggregate.aggregates.map((a) => (a.argument ? compileExpr(a.argument) : () => 0));
      this.table = this.newTable();
    }
    this.columns = machine.columns?.map((c) => ({ name: c.name, value: compileExpr(c.expr) }));
    this.periodStartNs = startNs;
  }

  /** Whether this stage aggregates shipped events itself, and so must be ticked every period. */
  get aggregatesEvents(): boolean {
    return this.table !== undefined;
  }

  partial(partial: ProbePartial): void {
    this.sink.window({ host: this.host, table: partial.table, startNs: partial.startNs, endNs: partial.endNs });
  }

  events(rows: readonly Row[]): void {
    const passed = this.filter ? rows.filter((r) => this.filter!(r)) : rows;
    if (passed.length === 0) return;
    if (this.table) {
      for (const row of passed) {
        this.table.add(
          this.keys.map((k) => k(row)),
          this.args.map((a) => a(row) as number),
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

  /** Closes the current period of a stage that aggregates shipped events. */
  tick(endNs: number): void {
    if (!this.table) return;
    this.sink.window({ host: this.host, table: this.table, startNs: this.periodStartNs, endNs });
    this.table = this.newTable();
    this.periodStartNs = endNs;
  }

  private newTable(): GroupTable {
    return new GroupTable(this.plan.machine.aggregate!.aggregates.map((a) => AGGREGATES[a.function]));
  }
}
