/**
 * The wall clock in terms of the monotonic clock bpf_ktime_get_ns() reads (bpftrace's nsecs, Node's
 * hrtime: both CLOCK_MONOTONIC). Windows and dumps are stamped on the wall clock, because the client
 * lines up every host's windows on its own Date.now(). The offset is what Date.now() says, to the
 * microsecond: taken at the edge of one of its milliseconds, and taken again when the wall clock
 * stepped (NTP, a virtual machine resumed), so that a step between the start of an agent and a query
 * does not shift that query's windows off the client's periods.
 */
export class WallClock {
  private offsetNs: number | undefined;

  constructor(
    private readonly wallMs: () => number = Date.now,
    private readonly monotonicNs: () => number = () => Number(process.hrtime.bigint()),
  ) {}

  /** Wall-clock ns less monotonic ns, now. */
  offset(): number {
    const mono = this.monotonicNs();
    const wall = this.wallMs() * 1e6;
    const known = this.offsetNs;
    if (known !== undefined) {
      // Date.now() is the wall clock floored to the ms: within a ms (and a half for the reads between) is no step.
      const drift = mono + known - wall;
      if (drift >= -5e5 && drift <= 1.5e6) return known;
    }
    return (this.offsetNs = this.calibrate());
  }

  /**
   * At the moment Date.now() turns to its next millisecond, the wall clock is that millisecond
   * exactly: the turn is found between two reads of the monotonic clock, and taken only when
   * nothing (a preemption) came between them, else at the next turn.
   */
  private calibrate(): number {
    for (let attempt = 0; attempt < 5; attempt++) {
      const start = this.wallMs();
      let last = this.monotonicNs();
      // At most a millisecond of spinning an attempt.
      for (let i = 0; i < 100_000; i++) {
        const now = this.wallMs();
        const mono = this.monotonicNs();
        if (now !== start) {
          if (mono - last < 50_000) return now * 1e6 - (last + mono) / 2;
          break;
        }
        last = mono;
      }
    }
    // A clock that would not turn cleanly: its ms, to within one.
    return this.wallMs() * 1e6 + 5e5 - this.monotonicNs();
  }
}

/** This process's wall clock (one calibration shared by its queries). */
export const wallClock = new WallClock();
