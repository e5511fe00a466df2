import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import type { RecordingDump } from '../probes/provider.js';
import type { Row } from '../plan/evaluate.js';
import type { StagedPlan } from '../plan/planner.js';
import { Categorizer } from '../mine/categorizer.js';
import { finalizeRows, type Cell, type ResultColumn, type ResultRows } from './rows.js';
import type { Coverage, CoverageGap } from './period-aligner.js';
import type { StopReason } from './query-handle.js';
import { Windower, type Emission, type Period } from './windows.js';

/** What a running query emits, in order; `end` comes last. */
export type QueryMessage = ResultMessage | EventsMessage | NoticeMessage | DumpMessage | EndMessage;

/**
 * The query is over: why, and what its answer covers in all. `complete` is false when a host the
 * query ran on failed, was lost or cut off, or ended early: `coverage` names it and the spans it
 * missed, with why.
 */
export interface EndMessage {
  readonly kind: 'end';
  readonly reason: StopReason;
  readonly coverage: Coverage;
  readonly complete: boolean;
}

/** A flight recorder's events from one host: the last N up to its trigger (or up to the end). */
export interface DumpMessage {
  readonly kind: 'dump';
  readonly host: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  /** Wall-clock ns of the event that triggered it; undefined for the dump at the end. */
  readonly triggerNs: number | undefined;
}

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
  /** Groups beyond the cap, folded into the (other) row (0: none). */
  readonly foldedGroups: number;
  /** Events dropped where they fired, over the cap of events per second (0: none). */
  readonly droppedEvents: number;
  /** Events the probes could not count: a kernel map was full (0: none). */
  readonly uncountedEvents: number;
  /** Set when the query samples events: the probability each was kept with. */
  readonly sampleRate?: number;
  /** In cluster mode: which hosts these rows cover and which they do not. */
  readonly coverage?: Coverage;
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

/** The `host` of a notice the cluster stage itself gives (categorize's). */
export const CLUSTER_STAGE = '(cluster)';

/**
 * The client's part of a query: merges every machine's partials, finalizes
 * them, applies ranking and limits, and emits results: one per period,
 * covering what the query's window says (see Windower).
 */
export class ClusterStage {
  private readonly windows: Windower;
  private eventsLeft: number;
  /** The categorize stage, with its memory of the last window's categories. */
  private readonly categorizer: Categorizer | undefined;
  /** Categorize is the only row stage: it can read the merged groups themselves. */
  private readonly categorizesGroups: boolean;

  constructor(
    private readonly plan: StagedPlan,
    /** How long one period is at run time (the query's, or the refresh period). */
    periodNs: number,
    /** Groups a result keeps before folding the rest into (other). */
    private readonly maxGroups: number,
    private readonly emit: (message: QueryMessage) => void,
    /** Called once when an event query has all the events its limit allows. */
    private readonly onLimitReached: () => void,
    /** The spans hosts did not cover within a result's span, and why. */
    private readonly gapsWithin: (startNs: number, endNs: number) => CoverageGap[] = () => [],
  ) {
    const categorize = plan.cluster.rowOperations.find((op) => op.kind === 'Categorize');
    this.categorizer = categorize && new Categorizer(categorize);
    this.categorizesGroups = plan.cluster.rowOperations.every((op) => op.kind === 'Categorize');
    const limit = plan.cluster.rowOperations.find((op) => op.kind === 'Limit');
    this.eventsLeft = plan.cluster.output.kind === 'Events' && limit ? limit.count : Infinity;
    const { coverNs } = plan.cluster.windowing;
    this.windows = new Windower(() => this.emptyTable(), coverNs === undefined ? undefined : Math.max(1, Math.round(coverNs / periodNs)));
  }

  /** One period of many hosts, lined up and merged (cluster mode), with who is in it. */
  period(period: Period, coverage: Coverage): void {
    this.emitRows(this.windows.push(period), coverage);
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

  dump(host: string, dump: RecordingDump): void {
    const output = this.plan.cluster.output;
    if (output.kind !== 'Record') return;
    const columns = output.columns.map((c) => c.name);
    this.emit({ kind: 'dump', host, columns, rows: dump.rows.map((r) => columns.map((c) => r[c] ?? null)), triggerNs: dump.triggerNs });
  }

  /** The last message: why the query ended, and what its answer covers. */
  end(reason: StopReason, coverage: Coverage): void {
    const complete = coverage.missing.length === 0 && (coverage.gaps ?? []).length === 0;
    this.emit({ kind: 'end', reason, coverage, complete });
  }

  /** The query is over: a running result is emitted once more, as the final answer. */
  finish(endNs: number, coverage?: Coverage): void {
    const emission = this.windows.finish(endNs);
    if (emission) this.emitRows(emission, coverage);
  }

  private emitRows(emission: Emission, coverage?: Coverage): void {
    const output = this.plan.cluster.output;
    if (output.kind !== 'Aggregate') return;
    let result: ResultRows;
    if (this.categorizer && this.categorizesGroups) {
      // Categorize is the only row stage: it reads the merged groups, with no rows made for them first.
      const categorized = this.categorizer.categorizeTable(emission.table, output, emission.complete, this.plan.cluster.sampleRate);
      result = categorized.rows;
      for (const message of categorized.notices) this.emit({ kind: 'notice', host: CLUSTER_STAGE, message });
    } else {
      result = finalizeRows(emission.table, output, this.plan.cluster.rowOperations, this.plan.cluster.sampleRate, this.plan.cluster.namedGroups);
      if (this.categorizer) {
        const categorized = this.categorizer.categorize(result, emission.complete);
        result = categorized.rows;
        for (const message of categorized.notices) this.emit({ kind: 'notice', host: CLUSTER_STAGE, message });
      }
    }
    const { columns, rows } = result;
    this.emit({
      kind: 'result',
      columns,
      rows,
      startNs: emission.startNs,
      endNs: emission.endNs,
      complete: emission.complete,
      hosts: emission.hosts,
      foldedGroups: emission.table.foldedGroups,
      droppedEvents: emission.droppedEvents,
      uncountedEvents: emission.uncountedEvents,
      ...(this.plan.cluster.sampleRate !== undefined && { sampleRate: this.plan.cluster.sampleRate }),
      ...(coverage !== undefined && { coverage: this.withGaps(coverage, emission.startNs, emission.endNs) }),
    });
  }

  /** A result's coverage with the gaps in its span (a final coverage has them all already). */
  private withGaps(coverage: Coverage, startNs: number, endNs: number): Coverage {
    if (coverage.gaps !== undefined) return coverage;
    const gaps = this.gapsWithin(startNs, endNs);
    return gaps.length === 0 ? coverage : { ...coverage, gaps };
  }

  private emptyTable(): GroupTable {
    const output = this.plan.cluster.output;
    return new GroupTable(output.kind === 'Aggregate' ? output.aggregates.map(createAggregate) : [], { maxGroups: this.maxGroups });
  }
}
