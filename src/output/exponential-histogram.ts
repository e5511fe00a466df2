import { QUANTILE_RELATIVE_ERROR, sketchBinValue, type SketchState } from '../agg/ddsketch.js';

/**
 * A DDSketch as OTLP's exponential histogram. The two are the same kind of thing, logarithmic
 * buckets, but with different bases: the sketch's is γ = 1.01/0.99 (1% relative accuracy),
 * OTLP's is 2^(2^-scale), and no scale gives γ. So the mapping is not exact: each bin of the
 * sketch goes, with its count, into the OTLP bucket that holds the value the bin stands for.
 * That keeps the order of the values (a bin further up never lands in a bucket further down),
 * so the value of rank r in the histogram lies in the bucket that got the bin holding rank r,
 * and a quantile read from the histogram (a bucket's value taken as 2·b^(i+1)/(b+1), the point
 * of least relative error) is within
 *
 *     (1 + 1%) · (1 + (b − 1)/(b + 1)) − 1
 *
 * of the true one: 1.55% at scale 6 (b = 2^(1/64), buckets 1.09% wide), the scale used unless the
 * values span more than 2^32 (2,048 buckets), when it is lowered until they fit (each step down
 * doubles the buckets' width).
 */

export const PREFERRED_SCALE = 6;
/** At most this many buckets a sign, as the sketch has at most this many bins. */
export const MAX_BUCKETS = 2048;

export interface ExponentialBuckets {
  offset: number;
  bucketCounts: number[];
}

/** OTLP's ExponentialHistogramDataPoint's figures (as the OpenTelemetry JS SDK names them). */
export interface ExponentialHistogramValue {
  count: number;
  sum?: number;
  scale: number;
  zeroCount: number;
  positive: ExponentialBuckets;
  negative: ExponentialBuckets;
}

/** How far a quantile read from the histogram can be from the true one, relatively, at `scale`. */
export function exponentialRelativeError(scale: number): number {
  const base = 2 ** (2 ** -scale);
  return (1 + QUANTILE_RELATIVE_ERROR) * (1 + (base - 1) / (base + 1)) - 1;
}

/** The bucket of a magnitude at `scale`: bucket i holds (b^i, b^(i+1)]. */
function bucketOf(magnitude: number, scale: number): number {
  return Math.ceil(Math.log2(magnitude) * 2 ** scale) - 1;
}

/** The lowest and highest bin of one sign's sketch. */
function binRange(bins: ReadonlyMap<number, number>): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const bin of bins.keys()) {
    low = Math.min(low, bin);
    high = Math.max(high, bin);
  }
  return [low, high];
}

/** The buckets of one sign at `scale`, from the sketch's bins (in its unit, divided by `per`). */
function buckets(bins: ReadonlyMap<number, number>, per: number, scale: number): ExponentialBuckets {
  if (bins.size === 0) return { offset: 0, bucketCounts: [] };
  const bucket = (bin: number) => bucketOf(sketchBinValue(bin) / per, scale);
  // A bin further up never lands in a bucket further down: the lowest and highest bins bound them.
  const [low, high] = binRange(bins).map(bucket) as [number, number];
  const bucketCounts = new Array<number>(high - low + 1).fill(0);
  for (const [bin, n] of bins) bucketCounts[bucket(bin) - low]! += n;
  return { offset: low, bucketCounts };
}

/** The widest span, in factors of 2 (buckets at scale 0), of one sign's bins. */
function octaves(bins: ReadonlyMap<number, number>): number {
  if (bins.size === 0) return 0;
  const [low, high] = binRange(bins);
  return Math.log2(sketchBinValue(high) / sketchBinValue(low));
}

/** The sketch as an exponential histogram of values divided by `per` (1e9: ns as seconds). */
export function exponentialHistogram(sketch: SketchState, per = 1, sum?: number): ExponentialHistogramValue {
  const span = Math.max(octaves(sketch.positive), octaves(sketch.negative));
  let scale = PREFERRED_SCALE;
  while (scale > -10 && Math.ceil(span * 2 ** scale) + 2 > MAX_BUCKETS) scale--;
  return {
    count: sketch.count,
    ...(sum !== undefined && { sum }),
    scale,
    zeroCount: sketch.zeros,
    positive: buckets(sketch.positive, per, scale),
    negative: buckets(sketch.negative, per, scale),
  };
}
