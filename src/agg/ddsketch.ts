import { wireArray, wireNumber, type AggregateKind, type QuantilesResult } from './aggregate.js';

/** The relative accuracy of every quantile (1%). */
export const QUANTILE_RELATIVE_ERROR = 0.01;
const GAMMA = (1 + QUANTILE_RELATIVE_ERROR) / (1 - QUANTILE_RELATIVE_ERROR);
const LOG_GAMMA = Math.log(GAMMA);
/** Values closer to zero than this count as zero. */
const MIN_INDEXABLE = 1e-9;
/** Bins per sign; beyond, the lowest bins collapse into one (2048 bins of 1% cover 1 to 6e17). */
const MAX_BINS = 2048;

/**
 * A DDSketch (Masson, Rim, Lee; VLDB 2019): values fall into logarithmic bins
 * so that any quantile is known within 1% relative error, and two sketches
 * merge exactly by adding their bins.
 */
export interface SketchState {
  positive: Map<number, number>;
  negative: Map<number, number>;
  zeros: number;
  count: number;
}

function binOf(magnitude: number): number {
  return Math.ceil(Math.log(magnitude) / LOG_GAMMA);
}

/** The value a bin stands for: within QUANTILE_RELATIVE_ERROR of every value in it. */
export function sketchBinValue(bin: number): number {
  return (2 * GAMMA ** bin) / (GAMMA + 1);
}

function addTo(store: Map<number, number>, bin: number, n: number): void {
  store.set(bin, (store.get(bin) ?? 0) + n);
  if (store.size > MAX_BINS) {
    // Collapse the two lowest bins: precision is kept where the values are largest.
    const [lowest, next] = [...store.keys()].sort((a, b) => a - b);
    store.set(next!, store.get(next!)! + store.get(lowest!)!);
    store.delete(lowest!);
  }
}

export function sketchAdd(s: SketchState, value: number, n = 1): void {
  s.count += n;
  if (Math.abs(value) < MIN_INDEXABLE) s.zeros += n;
  else if (value > 0) addTo(s.positive, binOf(value), n);
  else addTo(s.negative, binOf(-value), n);
}

/** The value at quantile p (0..1): the item of rank floor(p × (count − 1)) in sorted order, within 1%. */
export function sketchQuantile(s: SketchState, p: number): number | null {
  if (s.count === 0) return null;
  const rank = Math.floor(p * (s.count - 1));
  let seen = 0;
  for (const bin of [...s.negative.keys()].sort((a, b) => b - a)) {
    seen += s.negative.get(bin)!;
    if (seen > rank) return -sketchBinValue(bin);
  }
  seen += s.zeros;
  if (seen > rank) return 0;
  for (const bin of [...s.positive.keys()].sort((a, b) => a - b)) {
    seen += s.positive.get(bin)!;
    if (seen > rank) return sketchBinValue(bin);
  }
  return sketchBinValue(Math.max(...s.positive.keys()));
}

function flat(store: Map<number, number>): number[] {
  return [...store].flat();
}

function unflat(wire: unknown): Map<number, number> {
  const items = wireArray(wire);
  if (items.length % 2 !== 0) throw new TypeError('bins are [bin, count, …]');
  const store = new Map<number, number>();
  for (let i = 0; i < items.length; i += 2) store.set(wireNumber(items[i]), wireNumber(items[i + 1]));
  return store;
}

/**
 * The sketch a quantiles result was finalized from, for exporters that carry the distribution
 * (OTLP's exponential histograms), not only its quantiles. Kept beside the result, not in it: a
 * result's JSON stays as small as its quantiles. Read it when the result comes: a query without
 * windows goes on adding to the same sketch.
 */
const sketches = new WeakMap<QuantilesResult, SketchState>();

export function sketchBehind(result: QuantilesResult): SketchState | undefined {
  return sketches.get(result);
}

export function emptySketch(): SketchState {
  return { positive: new Map(), negative: new Map(), zeros: 0, count: 0 };
}

export function sketchMerge(into: SketchState, from: SketchState): void {
  for (const [bin, n] of from.positive) addTo(into.positive, bin, n);
  for (const [bin, n] of from.negative) addTo(into.negative, bin, n);
  into.zeros += from.zeros;
  into.count += from.count;
}

export function quantiles(ps: readonly number[]): AggregateKind<SketchState, QuantilesResult> {
  return {
    name: 'quantiles',
    empty: emptySketch,
    add: (s, v) => sketchAdd(s, v as number),
    merge: sketchMerge,
    finalize: (s) => {
      const result: QuantilesResult = {
        kind: 'quantiles',
        quantiles: ps.map((p) => ({ p, value: sketchQuantile(s, p) })),
        count: s.count,
        relativeError: QUANTILE_RELATIVE_ERROR,
      };
      sketches.set(result, s);
      return result;
    },
    encode: (s) => [s.zeros, flat(s.positive), flat(s.negative)],
    decode: (w) => {
      const [zeros, positive, negative] = wireArray(w, 3);
      const state = { positive: unflat(positive), negative: unflat(negative), zeros: wireNumber(zeros), count: 0 };
      state.count = state.zeros + [...state.positive.values(), ...state.negative.values()].reduce((a, b) => a + b, 0);
      return state;
    },
  };
}
