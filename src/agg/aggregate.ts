/**
 * Mergeable aggregate states. Each kind has `empty`, `add`, `merge`,
 * `finalize` and a JSON-safe wire form. `merge` is associative and
 * commutative, which is what lets one query run on one process, one host or
 * many. States are mutable plain data: `add` and `merge` update their first
 * argument.
 */
export interface AggregateKind<State = unknown, Result extends AggregateResult = AggregateResult> {
  readonly name: AggregateFunction;
  empty(): State;
  /** Adds one event's value; `timeNs` is the event's time (first/last order by it). */
  add(state: State, value: unknown, timeNs: number): void;
  merge(into: State, from: State): void;
  finalize(state: State): Result;
  encode(state: State): unknown;
  decode(wire: unknown): State;
}

export type AggregateFunction =
  | 'count'
  | 'sum'
  | 'min'
  | 'max'
  | 'avg'
  | 'stddev'
  | 'hist'
  | 'lhist'
  | 'quantiles'
  | 'distinct'
  | 'topk'
  | 'first'
  | 'last'
  | 'sample';

/** A value as aggregates see it outside the probe. */
export type Scalar = number | string | boolean;

export interface HistBucket {
  /** Smallest value of the bucket; null when it has none (values below the range). */
  readonly low: number | null;
  /** Largest value of the bucket; null when it has none (values above the range). */
  readonly high: number | null;
  readonly count: number;
}

export interface HistResult {
  readonly kind: 'hist';
  readonly buckets: readonly HistBucket[];
  readonly total: number;
}

export interface QuantilesResult {
  readonly kind: 'quantiles';
  readonly quantiles: readonly { readonly p: number; readonly value: number | null }[];
  readonly count: number;
  /** Each value is within this relative error of the true quantile. */
  readonly relativeError: number;
}

export interface TopKResult {
  readonly kind: 'topk';
  /** Most frequent first. `count` may overstate by at most `error` (zero while every value fits). */
  readonly items: readonly { readonly value: Scalar; readonly count: number; readonly error: number }[];
  readonly total: number;
}

export interface SampleResult {
  readonly kind: 'sample';
  /** A uniform sample of the events, without replacement. */
  readonly events: readonly Readonly<Record<string, Scalar>>[];
  /** How many events it was drawn from. */
  readonly seen: number;
}

export type AggregateResult = number | string | boolean | null | HistResult | QuantilesResult | TopKResult | SampleResult;

/** What a FayQL call of an aggregate looks like, for the binder and the planner. */
export interface AggregateSignature {
  /** The event value it aggregates: a number, any scalar, or none (count; sample takes whole events). */
  readonly input: 'number' | 'scalar' | 'none';
  /** Constant parameters after the value, e.g. lhist(x, min, max, step). */
  readonly params: { readonly min: number; readonly max: number; readonly example: string };
  readonly description: string;
}

export const SIGNATURES: Readonly<Record<AggregateFunction, AggregateSignature>> = {
  count: { input: 'none', params: { min: 0, max: 0, example: 'count()' }, description: 'how many events' },
  sum: { input: 'number', params: { min: 0, max: 0, example: 'sum(args.count)' }, description: 'sum of the values' },
  min: { input: 'number', params: { min: 0, max: 0, example: 'min(duration)' }, description: 'smallest value' },
  max: { input: 'number', params: { min: 0, max: 0, example: 'max(duration)' }, description: 'largest value' },
  avg: { input: 'number', params: { min: 0, max: 0, example: 'avg(duration)' }, description: 'mean value' },
  stddev: { input: 'number', params: { min: 0, max: 0, example: 'stddev(duration)' }, description: 'standard deviation (population)' },
  hist: { input: 'number', params: { min: 0, max: 0, example: 'hist(ret)' }, description: 'power-of-two histogram' },
  lhist: { input: 'number', params: { min: 3, max: 3, example: 'lhist(ret, 0, 1000, 100)' }, description: 'linear histogram: min, max, step' },
  quantiles: {
    input: 'number',
    params: { min: 1, max: 16, example: 'quantiles(duration, 0.5, 0.99)' },
    description: 'quantiles within 1% relative error (DDSketch)',
  },
  distinct: { input: 'scalar', params: { min: 0, max: 0, example: 'distinct(pid)' }, description: 'how many distinct values (HyperLogLog, ~1.6% error)' },
  topk: { input: 'scalar', params: { min: 1, max: 1, example: 'topk(args.filename, 10)' }, description: 'most frequent values (space-saving)' },
  first: { input: 'scalar', params: { min: 0, max: 0, example: 'first(args.filename)' }, description: 'value of the earliest event' },
  last: { input: 'scalar', params: { min: 0, max: 0, example: 'last(args.filename)' }, description: 'value of the latest event' },
  sample: { input: 'none', params: { min: 1, max: 1, example: 'sample(10)' }, description: 'a uniform sample of whole events' },
};

export function isAggregateFunction(name: string): name is AggregateFunction {
  return Object.hasOwn(SIGNATURES, name);
}

/** Throws a TypeError unless the wire value is a number. */
export function wireNumber(wire: unknown): number {
  if (typeof wire !== 'number' || Number.isNaN(wire)) throw new TypeError(`expected a number, got ${typeof wire}`);
  return wire;
}

/** Throws a TypeError unless the wire value is an array of `length` (when given). */
export function wireArray(wire: unknown, length?: number): unknown[] {
  if (!Array.isArray(wire) || (length !== undefined && wire.length !== length)) {
    throw new TypeError(`expected an array${length === undefined ? '' : ` of ${length}`}`);
  }
  return wire;
}
