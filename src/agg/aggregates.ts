import { log2Bucket, log2BucketHigh, log2BucketLow } from './log2.js';

/**
 * Mergeable aggregate states. Each kind has `empty`, `add`, `merge`, `finalize`
 * and a JSON-safe wire form. `merge` is associative and commutative, which is
 * what lets one query run on one process, one host or many.
 * States are mutable plain data: `add` and `merge` update their first argument.
 */
export interface AggregateKind<State, Result> {
  readonly name: AggregateFunction;
  /** How many arguments the FayQL call takes. */
  readonly arity: 0 | 1;
  empty(): State;
  add(state: State, value: number): void;
  merge(into: State, from: State): void;
  finalize(state: State): Result;
  encode(state: State): unknown;
  decode(wire: unknown): State;
}

export type AggregateFunction = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'hist';

export interface CountState { count: number }
export interface SumState { sum: number }
export interface ExtremeState { value: number | null }
export interface AvgState { sum: number; count: number }
/** Bucket index (see log2.ts) → how many values fell in it. */
export interface HistState { buckets: Map<number, number> }

export interface HistBucket {
  /** Smallest value of the bucket; null for the bucket of negative values. */
  readonly low: number | null;
  readonly high: number;
  readonly count: number;
}

export interface HistResult {
  readonly kind: 'hist';
  readonly buckets: readonly HistBucket[];
  readonly total: number;
}

export type AggregateResult = number | null | HistResult;

function num(wire: unknown): number {
  if (typeof wire !== 'number' || Number.isNaN(wire)) throw new TypeError(`expected a number, got ${typeof wire}`);
  return wire;
}

export const count: AggregateKind<CountState, number> = {
  name: 'count',
  arity: 0,
  empty: () => ({ count: 0 }),
  add: (s) => void s.count++,
  merge: (into, from) => void (into.count += from.count),
  finalize: (s) => s.count,
  encode: (s) => s.count,
  decode: (w) => ({ count: num(w) }),
};

export const sum: AggregateKind<SumState, number> = {
  name: 'sum',
  arity: 1,
  empty: () => ({ sum: 0 }),
  add: (s, v) => void (s.sum += v),
  merge: (into, from) => void (into.sum += from.sum),
  finalize: (s) => s.sum,
  encode: (s) => s.sum,
  decode: (w) => ({ sum: num(w) }),
};

function extreme(name: 'min' | 'max', pick: (a: number, b: number) => number): AggregateKind<ExtremeState, number | null> {
  return {
    name,
    arity: 1,
    empty: () => ({ value: null }),
    add: (s, v) => void (s.value = s.value === null ? v : pick(s.value, v)),
    merge: (into, from) => {
      if (from.value !== null) into.value = into.value === null ? from.value : pick(into.value, from.value);
    },
    finalize: (s) => s.value,
    encode: (s) => s.value,
    decode: (w) => ({ value: w === null ? null : num(w) }),
  };
}

export const min = extreme('min', Math.min);
export const max = extreme('max', Math.max);

export const avg: AggregateKind<AvgState, number | null> = {
  name: 'avg',
  arity: 1,
  empty: () => ({ sum: 0, count: 0 }),
  add: (s, v) => {
    s.sum += v;
    s.count++;
  },
  merge: (into, from) => {
    into.sum += from.sum;
    into.count += from.count;
  },
  finalize: (s) => (s.count === 0 ? null : s.sum / s.count),
  encode: (s) => [s.sum, s.count],
  decode: (w) => {
    if (!Array.isArray(w) || w.length !== 2) throw new TypeError('avg state is [sum, count]');
    return { sum: num(w[0]), count: num(w[1]) };
  },
};

export const hist: AggregateKind<HistState, HistResult> = {
  name: 'hist',
  arity: 1,
  empty: () => ({ buckets: new Map() }),
  add: (s, v) => addToBucket(s, log2Bucket(v), 1),
  merge: (into, from) => {
    for (const [bucket, n] of from.buckets) addToBucket(into, bucket, n);
  },
  finalize: (s) => {
    const indexes = [...s.buckets.keys()].sort((a, b) => a - b);
    const buckets: HistBucket[] = [];
    let total = 0;
    if (indexes.length > 0) {
      // Fill the gaps so that the bars read as one continuous histogram, as bpftrace draws it.
      const first = indexes[0]!;
      const last = indexes[indexes.length - 1]!;
      for (let b = first; b <= last; b++) {
        const n = s.buckets.get(b) ?? 0;
        total += n;
        buckets.push({ low: log2BucketLow(b) ?? null, high: log2BucketHigh(b), count: n });
      }
    }
    return { kind: 'hist', buckets, total };
  },
  encode: (s) => [...s.buckets],
  decode: (w) => {
    if (!Array.isArray(w)) throw new TypeError('hist state is [[bucket, count], …]');
    const state: HistState = { buckets: new Map() };
    for (const entry of w) {
      if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError('hist entry is [bucket, count]');
      addToBucket(state, num(entry[0]), num(entry[1]));
    }
    return state;
  },
};

/** Adds n values to one bucket of a histogram state. */
export function addToBucket(state: HistState, bucket: number, n: number): void {
  if (n !== 0) state.buckets.set(bucket, (state.buckets.get(bucket) ?? 0) + n);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAggregateKind = AggregateKind<any, AggregateResult>;

/** Every aggregate FayQL knows, by name. */
export const AGGREGATES: Readonly<Record<AggregateFunction, AnyAggregateKind>> = { count, sum, min, max, avg, hist };

export function isAggregateFunction(name: string): name is AggregateFunction {
  return Object.hasOwn(AGGREGATES, name);
}
