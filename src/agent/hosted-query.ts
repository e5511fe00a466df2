import type { AggregateKind } from '../agg/aggregate.js';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import type { Bus } from '../bus/bus.js';
import { inParts, windowPart } from '../bus/parts.js';
import { BUS_BOUNDS, SUBJECTS, writeMessage, type AgentMessage, type QuerySpec } from '../bus/protocol.js';
import type { Row } from '../plan/evaluate.js';
import type { Value } from '../plan/expr.js';
import type { StagedPlan } from '../plan/planner.js';
import { StoppedBeforeAttaching, type RecordingDump } from '../probes/provider.js';
import type { CompiledQuery, RunningQuery } from './agent.js';
import type { MachineSink, MachineWindow } from './machine-stage.js';
import type { LogWriter } from '../store/log-writer.js';

/** Event rows per message, at most; fewer go out after EVENT_BATCH_MS. */
const ROWS_PER_MESSAGE = 2000;
const EVENT_BATCH_MS = 50;
/** Event rows kept while the bus is away; beyond, they are dropped and counted. */
const MAX_BUFFERED_ROWS = 20_000;
/** How often a host says how far it got removing its probes. */
const DETACH_REPORT_MS = 1000;

export interface HostedQueryHooks {
  onAttached(): void;
  onRefused(error: unknown): void;
  /** `final`: it must not be started again by renewals still on their way (stopped by its client, or failed). */
  onEnded(why: string, final: boolean): void;
  reasonOf(error: unknown): string;
  refusal(error: unknown): Pick<Extract<AgentMessage, { kind: 'status' }>, 'reason' | 'hint' | 'exitCode'>;
  /** Where the query's windows and events are persisted too, if it asked (--persist). */
  readonly persist?: LogWriter;
  /** A standing query's notices, which no client waits for: the agent logs them. */
  onStandingNotice?(message: string): void;
  /** Each window of the machine stage, as it closes (the agent's metrics endpoint). */
  onWindow?(window: MachineWindow): void;
}

type From = Pick<AgentMessage, 'v' | 'id' | 'host' | 'incarnation'>;

type WireCell = string | number | boolean | null;

/** A value as the bus carries it: a string cut to what a receiver accepts (BUS_BOUNDS.maxCellChars). */
function wireCell(value: Value | undefined): WireCell {
  if (value === undefined) return null;
  return typeof value === 'string' && value.length > BUS_BOUNDS.maxCellChars ? `${value.slice(0, BUS_BOUNDS.maxCellChars - 1)}…` : value;
}

/** A window not yet sent: while the bus is away, later windows merge into it (one per query, bounded). */
interface PendingWindow {
  table: GroupTable;
  seq: number;
  seqEnd: number;
  startNs: number;
  endNs: number;
  droppedEvents: number;
  uncountedEvents: number;
}

/**
 * One query on one agent: runs its stages, publishes what they produce on
 * the query's subject, and holds it back boundedly while the bus is away
 * (windows coalesce, events up to a cap). Ends when stopped or when its lease
 * is not renewed in time.
 */
export class HostedQuery implements MachineSink {
  private running: RunningQuery | undefined;
  private seq = 0;
  private pending: PendingWindow | undefined;
  private buffered: { kind: 'events' | 'dump' | 'notice'; message: AgentMessage; rows: number }[] = [];
  private bufferedRows = 0;
  private droppedRows = 0;
  private lease: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private endReason = 'its probes finished';
  private expired = false;
  /** Stopped because a client asked. */
  private stoppedByClient = false;
  /** When it last said how far it got removing its probes (see detaching). */
  private detachReportedMs: number | undefined;
  /**
   * Whether the client can hear this query's messages. After the bus was lost, not until a
   * renewal comes: the agent may be back before its client is, and NATS drops messages that
   * nobody is subscribed to.
   */
  private reachable = true;
  private readonly kinds: readonly AggregateKind[];
  /** Event rows not sent yet: batched, so that a message carries many. */
  private batch: { columns: string[]; rows: WireCell[][] } | undefined;
  private batchTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: QuerySpec,
    private readonly plan: StagedPlan,
    private readonly compiled: CompiledQuery,
    private readonly bus: Bus,
    private readonly from: From,
    private readonly hooks: HostedQueryHooks,
  ) {
    const output = plan.cluster.output;
    this.kinds = output.kind === 'Aggregate' ? output.aggregates.map(createAggregate) : [];
  }

  private publish(message: AgentMessage): void {
    this.publishBytes(message, undefined);
  }

  /** Publishes a message, as `bytes` when it is already encoded. */
  private publishBytes(message: AgentMessage, bytes: Uint8Array | undefined): void {
    // A standing query has no client following it: what it produces goes to the store; only
    // whether it attached (fay query --persist waits for that) and its end go on the bus.
    if (this.spec.standing !== undefined && message.kind !== 'status' && message.kind !== 'done') {
      if (message.kind === 'notice') this.hooks.onStandingNotice?.(message.message);
      return;
    }
    const data = bytes ?? writeMessage(message, !this.bus.local);
    // Windows, the bulk, go on a subject of their own, by shard: to the client, or to the aggregator
    // that owns the shard in a merge tree, which also hears there whether the host runs the query.
    if (message.kind === 'window' || (this.spec.tree !== undefined && (message.kind === 'status' || message.kind === 'done'))) this.bus.publish(SUBJECTS.windows(this.spec.id, this.from.host), data);
    if (message.kind !== 'window') this.bus.publish(SUBJECTS.results(this.spec.id, this.from.host), data);
  }

  start(): void {
    this.renew();
    const running = (this.running = this.compiled.start(this));
    running.attached.then(
      () => {
        this.publish({ ...this.from, kind: 'status', state: 'accepted' });
        this.hooks.onAttached();
      },
      (error: unknown) => {
        // Stopped first: it ends for the reason it was stopped, and says so in its done.
        if (error instanceof StoppedBeforeAttaching) return;
        this.endReason = `it could not attach: ${this.hooks.reasonOf(error)}`;
        this.publish({ ...this.from, kind: 'status', state: 'refused', ...this.hooks.refusal(error) });
        this.hooks.onRefused(error);
      },
    );
    running.finished.then(
      () => this.finish(undefined),
      (error: unknown) => this.finish(this.hooks.reasonOf(error)),
    );
  }

  private finish(error: string | undefined): void {
    if (this.lease) clearTimeout(this.lease);
    this.sendBatch();
    // What it persisted is written before it says done: a history query after the answer finds it all.
    const persisted = this.hooks.persist?.drained();
    if (persisted) void persisted.then(() => this.ended(error));
    else this.ended(error);
  }

  private ended(error: string | undefined): void {
    const done: AgentMessage = { ...this.from, kind: 'done', windows: this.seq, ...(error !== undefined && { error }), ...(this.expired && { lapsed: true }), ...(this.stoppedByClient && { stopped: true }) };
    if (this.expired && !this.reachable) {
      // The lease ran out while the client could not be heard: what is held back waits for it (its
      // next renewal rejoins the query and takes it), rather than going out to nobody.
      this.send('notice', done, 0);
    } else {
      // The last word goes out whether or not the client was heard lately: there is no later.
      this.reachable = true;
      this.resume();
      this.publish(done);
    }
    this.hooks.onEnded(error ?? this.endReason, !this.expired);
  }

  /** Whether it ended with words held back for a client it has not heard since (see finish). */
  get holdsBack(): boolean {
    return this.pending !== undefined || this.buffered.length > 0;
  }

  /** Its client is heard again (it renewed the lease): what was held back goes out, oldest first. */
  deliverHeldBack(): void {
    this.reachable = true;
    this.resume();
  }

  /** The bus is gone: hold everything back until the client is heard again (a standing query has none to wait for). */
  pause(): void {
    if (this.spec.standing === undefined) this.reachable = false;
  }

  /** The client renewed the lease (so it is there to hear what was held back). */
  renew(): void {
    if (!this.reachable) {
      this.reachable = true;
      this.resume();
    }
    if (this.lease) clearTimeout(this.lease);
    // A standing query holds no lease: it runs until a stop, or its --until.
    if (this.spec.standing !== undefined) return;
    this.lease = setTimeout(() => {
      this.expired = true;
      void this.stop(`its lease ran out (no renewal for ${this.spec.leaseMs} ms: the client is gone or cut off)`);
    }, this.spec.leaseMs);
    this.lease.unref();
  }

  /** Detaches every probe; the last window and `done` follow. */
  stop(why: string, fromClient = false): Promise<void> {
    this.endReason = why;
    this.stoppedByClient ||= fromClient;
    if (fromClient && !this.reachable) {
      this.reachable = true;
      this.resume();
    }
    this.stopping ??= (async () => {
      if (this.lease) clearTimeout(this.lease);
      await this.running?.stop();
    })();
    return this.stopping;
  }

  /** Sends what was held back, oldest first, if the client can hear it. */
  resume(): void {
    if (!this.bus.connected || !this.reachable) return;
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      this.sendWindow(p);
    }
    for (const b of this.buffered) this.publish(b.message);
    this.buffered = [];
    this.bufferedRows = 0;
    if (this.droppedRows > 0) {
      this.publish({ ...this.from, kind: 'notice', message: `${this.droppedRows} events were dropped on this host while the bus was away` });
      this.droppedRows = 0;
    }
  }

  window(window: MachineWindow): void {
    this.hooks.persist?.window(this.from.host, window);
    this.hooks.onWindow?.(window);
    const seq = this.seq++;
    // A standing query's windows go to its log only: nobody follows them on the bus.
    if (this.spec.standing !== undefined) return;
    const next: PendingWindow = {
      table: window.table,
      seq,
      seqEnd: seq,
      startNs: window.startNs,
      endNs: window.endNs,
      droppedEvents: window.droppedEvents,
      uncountedEvents: window.uncountedEvents,
    };
    if (this.bus.connected && this.reachable && this.pending === undefined) {
      this.sendWindow(next);
      return;
    }
    if (this.pending === undefined) {
      // A copy: the machine stage's table is not this query's to keep.
      this.pending = { ...next, table: GroupTable.decode(this.kinds, window.table.encode()) };
    } else {
      this.pending.table.merge(window.table);
      this.pending.seqEnd = seq;
      this.pending.endNs = window.endNs;
      this.pending.droppedEvents += window.droppedEvents;
      this.pending.uncountedEvents += window.uncountedEvents;
    }
    this.resume();
  }

  /** One window, in as many parts as it takes to keep each message under the size target. */
  private sendWindow(w: PendingWindow): void {
    const message = (part: number, parts: number, table: unknown): AgentMessage => ({
      ...this.from,
      kind: 'window',
      seq: w.seq,
      seqEnd: w.seqEnd,
      ...windowPart(part, parts, w),
      table,
    });
    for (const p of inParts(w.table, message, (m) => writeMessage(m, !this.bus.local))) this.publishBytes(p.message, p.bytes);
  }

  private send(kind: 'events' | 'dump' | 'notice', message: AgentMessage, rows: number): void {
    if (this.bus.connected && this.reachable && this.buffered.length === 0) {
      this.publish(message);
      return;
    }
    if (this.bufferedRows + rows > MAX_BUFFERED_ROWS) {
      this.droppedRows += rows;
      return;
    }
    this.buffered.push({ kind, message, rows });
    this.bufferedRows += rows;
    this.resume();
  }

  events(_host: string, rows: readonly Row[]): void {
    const output = this.plan.cluster.output;
    if (output.kind !== 'Events') return;
    this.hooks.persist?.events(this.from.host, rows);
    if (this.spec.standing !== undefined) return;
    const columns = output.columns.map((c) => c.name);
    for (const r of rows) {
      // A batch sent when full: the next row starts another (a probe may hand over thousands at once).
      this.batch ??= { columns, rows: [] };
      this.batch.rows.push(columns.map((c) => wireCell(r[c])));
      if (this.batch.rows.length >= ROWS_PER_MESSAGE) this.sendBatch();
    }
    if (this.batch && this.batch.rows.length > 0 && this.batchTimer === undefined) {
      this.batchTimer = setTimeout(() => this.sendBatch(), EVENT_BATCH_MS);
    }
  }

  private sendBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const batch = this.batch;
    this.batch = undefined;
    if (batch && batch.rows.length > 0) this.send('events', { ...this.from, kind: 'events', columns: batch.columns, rows: batch.rows, dropped: 0 }, batch.rows.length);
  }

  notice(_host: string, message: string): void {
    // In order: events before the notice that follows them (e.g. a count of dropped ones).
    this.sendBatch();
    this.send('notice', { ...this.from, kind: 'notice', message: message.slice(0, 8192) }, 0);
  }

  /** Once removing its probes takes a while, said every DETACH_REPORT_MS: how many are still in. */
  detaching(_host: string, left: number, total: number): void {
    const now = Date.now();
    this.detachReportedMs ??= now;
    if (now - this.detachReportedMs < DETACH_REPORT_MS) return;
    this.detachReportedMs = now;
    this.send('notice', { ...this.from, kind: 'detaching', left, total }, 0);
  }

  dump(_host: string, dump: RecordingDump): void {
    const output = this.plan.cluster.output;
    if (output.kind !== 'Record') return;
    const columns = output.columns.map((c) => c.name);
    const rows = dump.rows.map((r) => columns.map((c) => wireCell(r[c])));
    this.send('dump', { ...this.from, kind: 'dump', columns, rows, triggerNs: dump.triggerNs ?? null }, rows.length);
  }
}
