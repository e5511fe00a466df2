import { wireArray, wireNumber, type AggregateKind, type HistBucket, type HistResult } from './aggregate.js';
import { log2Bucket, log2BucketHigh, log2BucketLow } from './log2.js';

/** Bucket index → how many values fell in it. */
export interface HistState { buckets: Map<number, number> }

/** Adds n values to one bucket. */
export function addToBucket(state: HistState, bucket: number, n: number): void {
  if (n !== 0) state.buckets.set(bucket, (state.buckets.get(bucket) ?? 0) + n);
}

/** A histogram over some bucketing of numbers: states merge bucket for bucket. */
function histogram(
  name: 'hist' | 'lhist',
  bucketOf: (value: number) => number,
  bounds: (bucket: number) => { low: number | null; high: number | null },
): AggregateKind<HistState, HistResult> {
  return {
    name,
    empty: () => ({ buckets: new Map() }),
    add: (s, v) => addToBucket(s, bucketOf(v as number), 1),
    merge: (into, from) => {
      for (const [bucket, n] of from.buckets) addToBucket(into, bucket, n);
    },
    finalize: (s) => {
      const indexes = [...s.buckets.keys()].sort((a, b) => a - b);
      const buckets: HistBucket[] = [];
      let total = 0;
      if (indexes.length > 0) {
        // Fill the gaps so that the bars read as one continuous histogram, as bpftrace draws it.
        for (let b = indexes[0]!; b <= indexes[indexes.length - 1]!; b++) {
          const n = s.buckets.get(b) ?? 0;
          total += n;
          buckets.push({ ...bounds(b), count: n });
        }
      }
      return { kind: 'hist', buckets, total };
    },
    encode: (s) => [...s.buckets].flat(),
    decode: (w) => {
      const flat = wireArray(w);
      if (flat.length % 2 !== 0) throw new TypeError('a histogram is [bucket, count, bucket, count, …]');
      const state: HistState = { buckets: new Map() };
      for (let i = 0; i < flat.length; i += 2) addToBucket(state, wireNumber(flat[i]), wireNumber(flat[i + 1]));
      return state;
    },
  };
}

/** Power-of-two buckets, numbered as bpftrace's hist() numbers them (see log2.ts). */
export const hist = histogram('hist', log2Bucket, (b) => ({ low: log2BucketLow(b) ?? null, high: log2BucketHigh(b) }));

/** The linear buckets of lhist(x, min, max, step): -1 below min, 0… for each step, the last at or above max. */
export interface LinearBuckets {
  readonly min: number;
  readonly max: number;
  readonly step: number;
}

export function linearBucketCount(p: LinearBuckets): number {
  return Math.ceil((p.max - p.min) / p.step);
}

export function linearBucket(value: number, p: LinearBuckets): number {
  if (value < p.min) return -1;
  if (value >= p.max) return linearBucketCount(p);
  return Math.floor((value - p.min) / p.step);
}

/** The bucket a bpftrace lhist() entry describes: open below (no min), open above (no max), else by its min. */
export function linearBucketOfEntry(entry: { min?: number; max?: number }, p: LinearBuckets): number {
  if (entry.min === undefined) return -1;
  if (entry.max === undefined) return linearBucketCount(p);
  return linearBucket(entry.min, p);
}

export function lhist(p: LinearBuckets): AggregateKind<HistState, HistResult> {
  const n = linearBucketCount(p);
  return histogram(
    'lhist',
    (v) => linearBucket(v, p),
    (b) => {
      if (b < 0) return { low: null, high: p.min - 1 };
      if (b >= n) return { low: p.max, high: null };
      return { low: p.min + b * p.step, high: Math.min(p.max, p.min + (b + 1) * p.step) - 1 };
    },
  );
}
