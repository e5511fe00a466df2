import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import type { MachineSink, MachineWindow } from '../agent/machine-stage.js';
import type { Row } from '../plan/evaluate.js';
import type { StagedPlan } from '../plan/planner.js';
import { finalizeRows, type Cell, type ResultColumn } from './rows.js';

/** What a running query emits, in order. */
export type QueryMessage = ResultMessage | EventsMessage | NoticeMessage;

/** Aggregated rows: a closed window, a running snapshot, or the final answer. */
export interface ResultMessage {
  readonly kind: 'result';
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly Cell[])[];
  /** Wall-clock ns since the epoch: what the rows cover. */
  readonly startNs: number;
  readonly endNs: number;
  /** True for a closed window or the final answer; false for a running snapshot that will grow. */
  readonly complete: boolean;
  /** Hosts whose partials are in these rows. */
  readonly hosts: readonly string[];
}

export interface EventsMessage {
  readonly kind: 'events';
  readonly host: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

export interface NoticeMessage {
  readonly kind: 'notice';
  readonly host: string;
  readonly message: string;
}

/**
 * The client's part of a query: merges every machine's partials, finalizes
 * them, applies ranking and limits, and emits results. With `every`, each
 * window is emitted on its own; otherwise one running result grows.
 */
export class ClusterStage implements MachineSink {
  private running: GroupTable | undefined;
  private readonly hosts = new Set<string>();
  private startNs: number | undefined;
  private endNs = 0;
  private eventsLeft: number;

  constructor(
    private readonly plan: StagedPlan,
    private readonly windowed: boolean,
    private readonly emit: (message: QueryMessage) => void,
    /** Called once when an event query has all the events its limit allows. */
    private readonly onLimitReached: () => void,
  ) {
    const limit = plan.cluster.rowOperations.find((op) => op.kind === 'Limit');
    this.eventsLeft = plan.cluster.output.kind === 'Events' && limit ? limit.count : Infinity;
  }

  window(window: MachineWindow): void {
    this.hosts.add(window.host);
    if (this.windowed) {
      this.emitRows(window.table, window.startNs, window.endNs, true, [window.host]);
      return;
    }
    this.running ??= this.emptyTable();
    this.running.merge(window.table);
    this.startNs ??= window.startNs;
    this.endNs = window.endNs;
    this.emitRows(this.running, this.startNs, this.endNs, false, [...this.hosts]);
  }

  events(host: string, rows: readonly Row[]): void {
    if (this.eventsLeft <= 0) return;
    const output = this.plan.cluster.output;
    if (output.kind !== 'Events') return;
    const kept = rows.slice(0, this.eventsLeft);
    this.eventsLeft -= kept.length;
    const columns = output.columns.map((c) => c.name);
    this.emit({ kind: 'events', host, columns, rows: kept.map((r) => columns.map((c) => r[c] ?? null)) });
    if (this.eventsLeft <= 0) this.onLimitReached();
  }

  notice(host: string, message: string): void {
    this.emit({ kind: 'notice', host, message });
  }

  /** The query is over: a running result is emitted once more, as the final answer. */
  finish(endNs: number): void {
    if (this.windowed || this.plan.cluster.output.kind !== 'Aggregate') return;
    this.emitRows(this.running ?? this.emptyTable(), this.startNs ?? endNs, Math.max(this.endNs, this.startNs ?? endNs), true, [...this.hosts]);
  }

  private emitRows(table: GroupTable, startNs: number, endNs: number, complete: boolean, hosts: string[]): void {
    const output = this.plan.cluster.output;
    if (output.kind !== 'Aggregate') return;
    const { columns, rows } = finalizeRows(table, output, this.plan.cluster.rowOperations);
    this.emit({ kind: 'result', columns, rows, startNs, endNs, complete, hosts });
  }

  private emptyTable(): GroupTable {
    const output = this.plan.cluster.output;
    return new GroupTable(output.kind === 'Aggregate' ? output.aggregates.map(createAggregate) : []);
  }
}
