import { emptyPeriod, mergeWindow, reportingHosts, type AlignerHooks, type Coverage, type HostWindow, type MergingPeriod } from './period-aligner.js';

/**
 * Lines up the windows of a history query (a scan of each agent's trace store): they come as fast
 * as the stores read, each already on the query's periods (aligned on the epoch), so nothing is
 * late and nothing is waited for; every period closes, in time order, once every host has finished
 * its scan. A host with no stored window for a period is missing from it (it was not running the
 * query then), never a zero.
 */
export class HistoryAligner {
  private readonly periods = new Map<number, MergingPeriod>();

  constructor(
    /** Windowed (every, window): one period per start; else one for the whole span. */
    private readonly windowed: boolean,
    private readonly hooks: Pick<AlignerHooks, 'onPeriod' | 'expected' | 'empty'>,
  ) {}

  begin(): void {}

  hold(): void {}

  add(w: HostWindow): void {
    const at = this.windowed ? w.startNs : 0;
    let period = this.periods.get(at);
    if (period === undefined) {
      period = emptyPeriod(this.hooks.empty(), w.startNs, w.endNs);
      this.periods.set(at, period);
    }
    mergeWindow(period, w);
  }

  /** Every host's scan is over: each period, in time order, with who covered it. */
  finish(): void {
    const { all } = this.hooks.expected();
    for (const at of [...this.periods.keys()].sort((a, b) => a - b)) {
      const period = this.periods.get(at)!;
      this.periods.delete(at);
      const reporting = reportingHosts(period).sort();
      const coverage: Coverage = { expected: [...all], reporting, late: [], missing: all.filter((h) => !period.covered.has(h)) };
      this.hooks.onPeriod(
        { table: period.table, startNs: period.startNs, endNs: period.endNs, hosts: reporting, droppedEvents: period.droppedEvents, uncountedEvents: period.uncountedEvents },
        coverage,
      );
    }
  }
}
