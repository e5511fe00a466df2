import type { GroupTable } from '../agg/group-table.js';
import type { Period } from './windows.js';

/** Which hosts a result covers, and which it does not. */
export interface Coverage {
  /** Hosts the query runs on (accepted it), joiners included. */
  readonly expected: readonly string[];
  /** Hosts whose partials are in the result. */
  readonly reporting: readonly string[];
  /** Hosts still alive that had not delivered their partial when the period closed. */
  readonly late: readonly string[];
  /** Hosts gone: no heartbeat, stopped, or never answered. */
  readonly missing: readonly string[];
  /** Spans of the result that a host expected in it did not cover, and why (a failure, a cut-off, …). */
  readonly gaps?: readonly CoverageGap[];
}

/** A span of a query (wall-clock ns) that a host did not cover, and why. */
export interface CoverageGap {
  readonly host: string;
  readonly startNs: number;
  readonly endNs: number;
  readonly reason: string;
}

/** One host's window, already decoded, or an aggregator's merge of its hosts' windows: what the aligner needs of it. */
export interface HostWindow {
  /** Who sent it: the host, or the aggregator that merged it. */
  readonly source: string;
  readonly incarnation: string;
  /** The hosts whose windows it holds: the host's own name, or those an aggregator merged. */
  readonly hosts: readonly string[];
  readonly seq: number;
  readonly seqEnd: number;
  readonly part: number;
  readonly parts: number;
  readonly startNs: number;
  readonly endNs: number;
  readonly droppedEvents: number;
  readonly uncountedEvents: number;
  readonly table: GroupTable;
}

/** A period being filled: the windows merged into it so far, and how many parts of each came. */
export interface MergingPeriod {
  table: GroupTable;
  startNs: number;
  endNs: number;
  droppedEvents: number;
  uncountedEvents: number;
  /** source → parts received of its window for this period, and the hosts it holds. */
  readonly parts: Map<string, { received: number; parts: number; hosts: readonly string[] }>;
  /** Hosts some source's window for this period holds (complete or not): a host is counted once. */
  readonly claimed: Set<string>;
  /** Hosts whose window for this period is wholly in. */
  readonly covered: Set<string>;
}

/** An empty period. */
export function emptyPeriod(table: GroupTable, startNs = Infinity, endNs = -Infinity): MergingPeriod {
  return { table, startNs, endNs, droppedEvents: 0, uncountedEvents: 0, parts: new Map(), claimed: new Set(), covered: new Set() };
}

/**
 * Merges a window (or part of one) into a period. A source's first part whose hosts another source
 * already brought (two aggregators that both took a shard while the tree changed) is left out:
 * false. Nothing is counted twice; the host stays covered by the first.
 */
export function mergeWindow(period: MergingPeriod, w: HostWindow): boolean {
  let got = period.parts.get(w.source);
  if (got === undefined) {
    if (w.hosts.some((h) => period.claimed.has(h))) return false;
    for (const h of w.hosts) period.claimed.add(h);
    got = { received: 0, parts: w.parts, hosts: w.hosts };
    period.parts.set(w.source, got);
  }
  period.table.merge(w.table);
  period.startNs = Math.min(period.startNs, w.startNs);
  period.endNs = Math.max(period.endNs, w.endNs);
  period.droppedEvents += w.droppedEvents;
  period.uncountedEvents += w.uncountedEvents;
  got.received++;
  if (got.received === got.parts) for (const h of got.hosts) period.covered.add(h);
  return true;
}

/** The hosts whose every part of their window for a period came. */
export function reportingHosts(period: MergingPeriod): string[] {
  return [...period.covered];
}

interface OpenPeriod extends MergingPeriod {
  readonly index: number;
  /** When its first part arrived (ms), which starts the grace time, and its latest. */
  firstArrivalMs: number | undefined;
  lastArrivalMs: number;
}

/** Parts still arriving this recently keep a period open past its grace (up to a period more). */
const QUIET_MS = 50;

export interface AlignerHooks {
  /** A period closed: its merged table and who is in it. */
  onPeriod(period: Period, coverage: Coverage): void;
  /** A window that came after its period closed (for windows; a running result takes it in the next period). */
  onLate(w: HostWindow): void;
  /** A window whose hosts another source had already brought to its period: left out, not counted twice. */
  onDuplicate?(w: HostWindow): void;
  /** Hosts expected right now and, of them, which are alive. */
  expected(): { all: readonly string[]; alive: ReadonlySet<string> };
  /** Whether a period has everything it waits for, when that is not every live host's window (an aggregator of aggregators: every live one's partial). */
  complete?(period: MergingPeriod): boolean;
  empty(): GroupTable;
}

/**
 * Lines up the windows of many hosts into the query's periods. Agents flush
 * on their own clocks, each from when it attached; the first window of all
 * sets period 0, and a host's n-th window belongs to period k0 + n, where k0
 * is where its first window ended relative to that one (a host that attached
 * a period later starts a period later, and was late before). A period closes
 * as soon as every live expected host has delivered it, or `graceMs` after its
 * first part arrived (or a period after the previous one closed, when nothing
 * comes at all); periods close in order, once `begin()` was called.
 */
export class PeriodAligner {
  private readonly open = new Map<number, OpenPeriod>();
  /** source → its incarnation and the period of its window seq 0. */
  private readonly offsets = new Map<string, { incarnation: string; base: number }>();
  private nextToClose = 0;
  private lastCloseMs = Date.now();
  private timer: NodeJS.Timeout | undefined;
  /** Where the first window of all ended: the end of period 0. */
  private refEndNs: number | undefined;
  private started = false;
  /** Set once the query is stopping: from then on periods close only when complete, or at finish(). */
  private heldAtNs: number | undefined;

  constructor(
    private readonly periodMs: number,
    private readonly graceMs: number,
    /** A running result (no window) takes late windows into the next period instead of reporting them. */
    private readonly running: boolean,
    private readonly hooks: AlignerHooks,
    /**
     * No period closes before the first window of all came (an aggregator, which cannot know when its
     * hosts attached: an empty first period closed too early would make their first windows late).
     */
    private readonly fromFirstWindow = false,
  ) {}

  /**
   * The query is stopping at `stopNs`: a period now closes only once every live host delivered it
   * (the rest close at finish()), and a window period that starts after the stop is no part of the
   * answer (a running result still takes what came in it: it is the time since the last refresh).
   */
  hold(stopNs: number): void {
    this.heldAtNs = stopNs;
    this.closeReady();
  }

  /** Periods start closing from now (call it once every host has answered, so that slow attaches are not late). */
  begin(): void {
    this.started = true;
    this.lastCloseMs = Date.now();
    this.closeReady();
  }

  private periodOf(w: HostWindow): number {
    const periodNs = this.periodMs * 1e6;
    let offset = this.offsets.get(w.source);
    if (offset === undefined || offset.incarnation !== w.incarnation) {
      this.refEndNs ??= w.endNs - (w.seqEnd - w.seq) * periodNs;
      const endIndex = Math.round((w.endNs - this.refEndNs) / periodNs);
      offset = { incarnation: w.incarnation, base: endIndex - w.seqEnd };
      this.offsets.set(w.source, offset);
    }
    return offset.base + w.seqEnd;
  }

  /** Takes one host's window (or part of one). */
  add(w: HostWindow): void {
    let index = this.periodOf(w);
    if (index < this.nextToClose) {
      if (!this.running) {
        this.hooks.onLate(w);
        return;
      }
      index = this.nextToClose;
    }
    const period = this.periodAt(index);
    if (!mergeWindow(period, w)) {
      this.hooks.onDuplicate?.(w);
      return;
    }
    period.firstArrivalMs ??= Date.now();
    period.lastArrivalMs = Date.now();
    this.closeReady();
  }

  private periodAt(index: number): OpenPeriod {
    let period = this.open.get(index);
    if (period === undefined) {
      period = { ...emptyPeriod(this.hooks.empty()), index, firstArrivalMs: undefined, lastArrivalMs: 0 };
      this.open.set(index, period);
    }
    return period;
  }

  /** Every live host's window is in (asked at each window: fewer covered hosts than live ones answers at once). */
  private complete(period: OpenPeriod, alive: ReadonlySet<string>): boolean {
    if (this.hooks.complete) return this.hooks.complete(period);
    if (period.covered.size < alive.size) return false;
    for (const host of alive) if (!period.covered.has(host)) return false;
    return true;
  }

  /** Closes every period that is due, in order; arms a timer for the next deadline. */
  closeReady(now = Date.now()): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.started || (this.fromFirstWindow && this.refEndNs === undefined)) return;
    while (true) {
      const period = this.open.get(this.nextToClose);
      const { alive } = this.hooks.expected();
      let deadline = (period?.firstArrivalMs ?? this.lastCloseMs + this.periodMs) + this.graceMs;
      // Still arriving (a busy client reads hundreds of windows one after another): wait until they stop.
      if (period?.firstArrivalMs !== undefined) {
        deadline = Math.max(deadline, Math.min(period.lastArrivalMs + QUIET_MS, period.firstArrivalMs + this.graceMs + this.periodMs));
      }
      if (period !== undefined && this.complete(period, alive)) {
        this.close(period);
        continue;
      }
      if (this.heldAtNs !== undefined) return;
      if (now >= deadline) {
        this.close(period ?? this.periodAt(this.nextToClose));
        continue;
      }
      this.timer = setTimeout(() => this.closeReady(), deadline - now);
      this.timer.unref();
      return;
    }
  }

  private close(period: OpenPeriod): void {
    this.open.delete(period.index);
    this.nextToClose = period.index + 1;
    this.lastCloseMs = Date.now();
    if (!this.running && this.heldAtNs !== undefined && period.startNs >= this.heldAtNs) return;
    const { all, alive } = this.hooks.expected();
    const reporting = reportingHosts(period);
    const coverage: Coverage = {
      expected: [...all],
      reporting,
      late: all.filter((h) => alive.has(h) && !period.covered.has(h)),
      missing: all.filter((h) => !alive.has(h) && !period.covered.has(h)),
    };
    const nowNs = Date.now() * 1e6;
    this.hooks.onPeriod(
      {
        table: period.table,
        startNs: Number.isFinite(period.startNs) ? period.startNs : nowNs - this.periodMs * 1e6,
        endNs: Number.isFinite(period.endNs) ? period.endNs : nowNs,
        hosts: reporting,
        droppedEvents: period.droppedEvents,
        uncountedEvents: period.uncountedEvents,
      },
      coverage,
    );
  }

  /** The query is over: closes whatever is open, in order, without waiting. */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const indexes = [...this.open.keys()].sort((a, b) => a - b);
    for (const index of indexes) if (index >= this.nextToClose) this.close(this.open.get(index)!);
  }
}
