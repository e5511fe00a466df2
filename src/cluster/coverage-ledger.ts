import type { CoverageGap } from './period-aligner.js';

/** What the ledger knows of one host. */
interface HostRecord {
  /** Where its latest window ended (wall-clock ns); undefined before its first. */
  lastEndNs: number | undefined;
  /** A span it stopped covering at `startNs`, for `reason`, not yet closed by a later window. */
  open: { startNs: number; reason: string } | undefined;
}

/**
 * Which spans of a query each host did not cover, and why. A host's windows follow one another
 * without a break (each starts where the one before ended, a held-back window covering several),
 * so a break is found where it is: between the end of one window and the start of the next, or
 * from a host's last window to the end of the query. A reason comes with each: what the host said
 * (its probes failed, its lease ran out), or what the client saw (no heartbeat, its own time off
 * the bus, windows that came after their period had closed).
 */
export class CoverageLedger {
  private readonly hosts = new Map<string, HostRecord>();
  private readonly closed: CoverageGap[] = [];

  constructor(
    /** A break shorter than this is rounding, not a gap (half a period). */
    private readonly toleranceNs: number,
    /** Why a host's windows broke off when nobody said why (e.g. the client's own time off the bus). */
    private readonly unexplained: (host: string, startNs: number, endNs: number) => string,
  ) {}

  private record(host: string): HostRecord {
    let record = this.hosts.get(host);
    if (record === undefined) this.hosts.set(host, (record = { lastEndNs: undefined, open: undefined }));
    return record;
  }

  /**
   * A window of a host arrived (in the order they come: a held-back one may end before the latest).
   * A break the host explained (its probes failed, its lease ran out) is a gap however short: its
   * probes were off, and a restart takes milliseconds (Fay's native probes attach in ~5 ms). An
   * unexplained break shorter than the tolerance is rounding.
   */
  window(host: string, startNs: number, endNs: number): void {
    const record = this.record(host);
    const from = record.open?.startNs ?? record.lastEndNs;
    if (from !== undefined && startNs - from > (record.open !== undefined ? 0 : this.toleranceNs)) {
      this.closed.push({ host, startNs: from, endNs: startNs, reason: record.open?.reason ?? this.unexplained(host, from, startNs) });
    }
    record.open = undefined;
    record.lastEndNs = Math.max(record.lastEndNs ?? endNs, endNs);
  }

  /** The host stopped covering the query (failed, lapsed, gone): from its last window's end, or `atNs`. */
  interrupted(host: string, reason: string, atNs: number): void {
    const record = this.record(host);
    if (record.open) return;
    record.open = { startNs: record.lastEndNs ?? atNs, reason };
  }

  /** A host that was interrupted is there again (it answers, it heartbeats): its gap closes with its next window. */
  isInterrupted(host: string): boolean {
    return this.hosts.get(host)?.open !== undefined;
  }

  /** A window that was left out (it came after its period closed): the span it covers is a gap. */
  leftOut(host: string, startNs: number, endNs: number, reason: string): void {
    this.closed.push({ host, startNs, endNs, reason });
  }

  /** Every gap up to `endNs`: those closed, and those still open, as if they ended then. */
  gaps(endNs: number): CoverageGap[] {
    const open = [...this.hosts].flatMap(([host, r]) => (r.open && r.open.startNs < endNs ? [{ host, startNs: r.open.startNs, endNs, reason: r.open.reason }] : []));
    return [...this.closed, ...open].sort((a, b) => a.startNs - b.startNs || a.host.localeCompare(b.host));
  }

  /** The gaps that overlap a span (a result's). */
  gapsWithin(startNs: number, endNs: number): CoverageGap[] {
    return this.gaps(endNs).filter((g) => g.endNs > startNs && g.startNs < endNs);
  }
}
