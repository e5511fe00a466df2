import { GroupTable } from '../agg/group-table.js';

/** One period's merged states, from the hosts that reported it. */
export interface Period {
  readonly table: GroupTable;
  /** Wall-clock ns since the epoch. */
  readonly startNs: number;
  readonly endNs: number;
  readonly hosts: readonly string[];
  /** Events dropped over the events-per-second cap in this period. */
  readonly droppedEvents: number;
  /** Events the probes could not count in this period (a kernel map was full). */
  readonly uncountedEvents: number;
}

/**
 * What to emit after a period: the states a result covers and the span they
 * cover. A running result's table is the live one: read it before the next push.
 */
export interface Emission extends Period {
  /** A closed window or the final answer; false for a running result that will grow. */
  readonly complete: boolean;
}

/**
 * Turns a stream of periods into results. Without a window, one running
 * result grows (and is complete only when finished). With one, each result
 * merges the last `periods` periods: 1 for tumbling windows, more for sliding
 * windows and `last`; older periods drop out of the ring.
 */
export class Windower {
  private running: GroupTable | undefined;
  private runningDropped = 0;
  private runningUncounted = 0;
  private runningStartNs: number | undefined;
  private lastEndNs: number | undefined;
  private readonly hosts = new Set<string>();
  private readonly ring: Period[] = [];

  constructor(
    private readonly empty: () => GroupTable,
    /** How many periods a result covers; undefined for one running result. */
    private readonly periods: number | undefined,
  ) {}

  push(period: Period): Emission {
    for (const h of period.hosts) this.hosts.add(h);
    if (this.periods === undefined) {
      this.running ??= this.empty();
      this.running.merge(period.table);
      this.runningDropped += period.droppedEvents;
      this.runningUncounted += period.uncountedEvents;
      this.runningStartNs ??= period.startNs;
      this.lastEndNs = period.endNs;
      return this.runningEmission(period.endNs, false);
    }
    this.ring.push(period);
    while (this.ring.length > this.periods) this.ring.shift();
    if (this.ring.length === 1) return { ...period, complete: true };
    const table = this.empty();
    for (const p of this.ring) table.merge(p.table);
    const hosts = [...new Set(this.ring.flatMap((p) => p.hosts))];
    const droppedEvents = this.ring.reduce((n, p) => n + p.droppedEvents, 0);
    const uncountedEvents = this.ring.reduce((n, p) => n + p.uncountedEvents, 0);
    return { table, startNs: this.ring[0]!.startNs, endNs: period.endNs, hosts, droppedEvents, uncountedEvents, complete: true };
  }

  private runningEmission(endNs: number, complete: boolean): Emission {
    return {
      table: this.running ?? this.empty(),
      startNs: this.runningStartNs ?? endNs,
      endNs,
      hosts: [...this.hosts],
      droppedEvents: this.runningDropped,
      uncountedEvents: this.runningUncounted,
      complete,
    };
  }

  /** The final answer of a running result (windows were each emitted complete already). */
  finish(endNs: number): Emission | undefined {
    if (this.periods !== undefined) return undefined;
    return this.runningEmission(this.lastEndNs ?? endNs, true);
  }
}
