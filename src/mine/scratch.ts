/**
 * Typed arrays kept from one window to the next, handed out zeroed. A window of 500 hosts × 300
 * calls needs a few 1.2 MB matrices; fresh ones cost page faults and zeroing each window, and
 * their garbage a collection now and then (measured: the dense matrix took 1.7–14.6 ms a window
 * fresh). A window's arrays are valid until the next window takes them again.
 */
export class Scratch {
  private readonly buffers = new Map<string, Float64Array>();

  /** `length` zeroes under `name`: the same memory as the last window's `name`, grown when short. */
  take(name: string, length: number): Float64Array {
    let buffer = this.buffers.get(name);
    if (buffer === undefined || buffer.length < length) this.buffers.set(name, (buffer = new Float64Array(Math.max(length, 1024))));
    const view = buffer.subarray(0, length);
    view.fill(0);
    return view;
  }
}

/** One-off arrays, for a caller that keeps none (a test, an example). */
export const FRESH: Pick<Scratch, 'take'> = { take: (_name, length) => new Float64Array(length) };
