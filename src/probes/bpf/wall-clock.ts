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

  /** At the moment Date.now() turns to its next millisecond, the wall clock is that millisecond exactly. */
  private calibrate(): number {
    const start = this.wallMs();
    // At most a millisecond of spinning; a clock that does not move within 10 000 reads gives its ms.
    for (let i = 0; i < 10_000; i++) {
      const mono = this.monotonicNs();
      const now = this.wallMs();
      if (now !== start) return now * 1e6 - mono;
    }
    return start * 1e6 + 5e5 - this.monotonicNs();
  }
}

/** This process's wall clock (one calibration shared by its queries). */
export const wallClock = new WallClock();
