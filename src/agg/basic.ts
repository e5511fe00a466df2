import { wireArray, wireNumber, type AggregateKind, type Scalar } from './aggregate.js';

export interface CountState { count: number }
export interface SumState { sum: number }
export interface ExtremeState { value: number | null }
export interface AvgState { sum: number; count: number }
/** Welford's running moments; merged with Chan et al.'s parallel formula. */
export interface MomentsState { count: number; mean: number; m2: number }
export interface EdgeState { value: Scalar | null; timeNs: number }

export const count: AggregateKind<CountState, number> = {
  name: 'count',
  empty: () => ({ count: 0 }),
  add: (s) => void s.count++,
  merge: (into, from) => void (into.count += from.count),
  finalize: (s) => s.count,
  encode: (s) => s.count,
  decode: (w) => ({ count: wireNumber(w) }),
};

export const sum: AggregateKind<SumState, number> = {
  name: 'sum',
  empty: () => ({ sum: 0 }),
  add: (s, v) => void (s.sum += v as number),
  merge: (into, from) => void (into.sum += from.sum),
  finalize: (s) => s.sum,
  encode: (s) => s.sum,
  decode: (w) => ({ sum: wireNumber(w) }),
};

function extreme(name: 'min' | 'max', pick: (a: number, b: number) => number): AggregateKind<ExtremeState, number | null> {
  const fold = (s: ExtremeState, v: number | null) => {
    if (v !== null) s.value = s.value === null ? v : pick(s.value, v);
  };
  return {
    name,
    empty: () => ({ value: null }),
    add: (s, v) => fold(s, v as number),
    merge: (into, from) => fold(into, from.value),
    finalize: (s) => s.value,
    encode: (s) => s.value,
    decode: (w) => ({ value: w === null ? null : wireNumber(w) }),
  };
}

export const min = extreme('min', Math.min);
export const max = extreme('max', Math.max);

export const avg: AggregateKind<AvgState, number | null> = {
  name: 'avg',
  empty: () => ({ sum: 0, count: 0 }),
  add: (s, v) => {
    s.sum += v as number;
    s.count++;
  },
  merge: (into, from) => {
    into.sum += from.sum;
    into.count += from.count;
  },
  finalize: (s) => (s.count === 0 ? null : s.sum / s.count),
  encode: (s) => [s.sum, s.count],
  decode: (w) => {
    const [sum, n] = wireArray(w, 2);
    return { sum: wireNumber(sum), count: wireNumber(n) };
  },
};

export const stddev: AggregateKind<MomentsState, number | null> = {
  name: 'stddev',
  empty: () => ({ count: 0, mean: 0, m2: 0 }),
  add: (s, v) => {
    const x = v as number;
    s.count++;
    const delta = x - s.mean;
    s.mean += delta / s.count;
    s.m2 += delta * (x - s.mean);
  },
  merge: (into, from) => {
    if (from.count === 0) return;
    if (into.count === 0) return void Object.assign(into, from);
    const n = into.count + from.count;
    const delta = from.mean - into.mean;
    into.m2 += from.m2 + (delta * delta * into.count * from.count) / n;
    into.mean += (delta * from.count) / n;
    into.count = n;
  },
  finalize: (s) => (s.count === 0 ? null : Math.sqrt(s.m2 / s.count)),
  encode: (s) => [s.count, s.mean, s.m2],
  decode: (w) => {
    const [n, mean, m2] = wireArray(w, 3);
    return { count: wireNumber(n), mean: wireNumber(mean), m2: wireNumber(m2) };
  },
};

function edge(name: 'first' | 'last', wins: (candidate: number, current: number) => boolean): AggregateKind<EdgeState, Scalar | null> {
  const fold = (s: EdgeState, value: Scalar | null, timeNs: number) => {
    // Ties break on the value, so that merge order never matters.
    if (value === null) return;
    if (s.value === null || wins(timeNs, s.timeNs) || (timeNs === s.timeNs && String(value) < String(s.value))) {
      s.value = value;
      s.timeNs = timeNs;
    }
  };
  return {
    name,
    empty: () => ({ value: null, timeNs: 0 }),
    add: (s, v, timeNs) => fold(s, v as Scalar, timeNs),
    merge: (into, from) => fold(into, from.value, from.timeNs),
    finalize: (s) => s.value,
    encode: (s) => [s.value, s.timeNs],
    decode: (w) => {
      const [value, timeNs] = wireArray(w, 2);
      if (value !== null && !['number', 'string', 'boolean'].includes(typeof value)) throw new TypeError('first/last value is a scalar');
      return { value: value as Scalar | null, timeNs: wireNumber(timeNs) };
    },
  };
}

export const first = edge('first', (candidate, current) => candidate < current);
export const last = edge('last', (candidate, current) => candidate > current);
