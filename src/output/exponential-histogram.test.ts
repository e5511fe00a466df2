import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QuantilesResult } from '../agg/aggregate.js';
import { quantiles } from '../agg/ddsketch.js';
import { prng } from '../prng.js';
import { AnswerMetrics } from './answer-metrics.js';
import { exponentialHistogram, exponentialRelativeError, PREFERRED_SCALE, type ExponentialHistogramValue } from './exponential-histogram.js';

/**
 * A quantile read from an OTLP exponential histogram as a consumer would: the bucket holding the
 * value of rank floor(p·(count − 1)), counted from the most negative bucket up, taken at its
 * point of least relative error. Written here from OTLP's definition of the buckets (bucket i of
 * scale s holds (b^i, b^(i+1)], b = 2^(2^-s)), not from the code under test.
 */
function histogramQuantile(h: ExponentialHistogramValue, p: number): number {
  const base = 2 ** (2 ** -h.scale);
  const at = (i: number) => (2 * base ** (i + 1)) / (base + 1);
  const rank = Math.floor(p * (h.count - 1));
  let seen = 0;
  for (let k = h.negative.bucketCounts.length - 1; k >= 0; k--) {
    seen += h.negative.bucketCounts[k]!;
    if (seen > rank) return -at(h.negative.offset + k);
  }
  seen += h.zeroCount;
  if (seen > rank) return 0;
  for (let k = 0; k < h.positive.bucketCounts.length; k++) {
    seen += h.positive.bucketCounts[k]!;
    if (seen > rank) return at(h.positive.offset + k);
  }
  throw new Error(`rank ${rank} beyond the histogram's ${seen} values`);
}

const PS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1];

/** Every quantile of PS read from the histogram of `values` (as `per` divides them) is within the stated bound of the exact one. */
function assertWithinBound(values: number[], per: number): ExponentialHistogramValue {
  const kind = quantiles(PS);
  const sketch = kind.empty();
  for (const v of values) kind.add(sketch, v, 0);
  const h = exponentialHistogram(sketch, per);
  assert.equal(h.count, values.length);
  assert.equal(h.zeroCount + [...h.positive.bucketCounts, ...h.negative.bucketCounts].reduce((a, b) => a + b, 0), values.length, 'every value in a bucket');
  const sorted = [...values].sort((a, b) => a - b);
  const bound = exponentialRelativeError(h.scale);
  for (const p of PS) {
    const exact = sorted[Math.floor(p * (values.length - 1))]! / per;
    const read = histogramQuantile(h, p);
    const error = exact === 0 ? Math.abs(read) : Math.abs(read - exact) / Math.abs(exact);
    assert.ok(error <= bound + 1e-12, `p${p}: read ${read}, exact ${exact}, relative error ${error} over the bound ${bound} (scale ${h.scale})`);
  }
  return h;
}

describe('a DDSketch as an OTLP exponential histogram', () => {
  it('states its bound: 1% of the sketch and half a bucket of scale 6', () => {
    assert.ok(Math.abs(exponentialRelativeError(6) - 0.01547) < 1e-4, String(exponentialRelativeError(6)));
    assert.ok(exponentialRelativeError(5) > exponentialRelativeError(6));
  });

  it('keeps every quantile within the bound, durations in ns read as seconds', () => {
    const random = prng(20261207);
    // Log-normal latencies around 200 µs, with a tail into seconds.
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const durations = Array.from({ length: 50_000 }, () => Math.round(Math.exp(Math.log(200_000) + 1.8 * normal())));
    const h = assertWithinBound(durations, 1e9);
    assert.equal(h.scale, PREFERRED_SCALE);
    assert.equal(h.negative.bucketCounts.length, 0);
  });

  it('keeps the bound over negative values, zeros and few values', () => {
    const random = prng(7);
    const mixed = Array.from({ length: 5_000 }, (_, i) => (i % 10 === 0 ? 0 : (random() < 0.3 ? -1 : 1) * Math.floor(1 + random() * 1e6)));
    assertWithinBound(mixed, 1);
    assertWithinBound([42], 1);
    assertWithinBound([3, 3, 3, 1_000_000_007], 1);
  });

  it('lowers its scale for values that span more than 2^32, and keeps the bound of that scale', () => {
    const random = prng(99);
    // 2^40: over scale 6's 2,048 buckets, within the sketch's 2,048 bins (beyond them it collapses its lowest, losing its own bound there).
    const wide = Array.from({ length: 20_000 }, () => 2 ** (random() * 40));
    const h = assertWithinBound(wide, 1);
    assert.ok(h.scale < PREFERRED_SCALE, `scale ${h.scale}`);
    assert.ok(h.positive.bucketCounts.length <= 2048, `${h.positive.bucketCounts.length} buckets`);
  });

  it('gives an answer the run’s sketch: windows merged, each window’s values counted once', () => {
    const kind = quantiles([0.5]);
    const metrics = new AnswerMetrics('fay', () => undefined, true);
    const window = (startNs: number, values: number[]): void => {
      const s = kind.empty();
      for (const v of values) kind.add(s, v, 0);
      const cell: QuantilesResult = kind.finalize(s);
      metrics.take({
        kind: 'result',
        startNs,
        endNs: startNs + 1e9,
        complete: true,
        columns: [{ name: 'quantiles(duration, 0.5)', role: 'aggregate', function: 'quantiles', unit: 'ns' }],
        rows: [[cell]],
        hosts: ['h'],
        foldedGroups: 0,
        droppedEvents: 0,
        uncountedEvents: 0,
      });
    };
    window(0, [1000, 2000, 3000]);
    window(1e9, [4000, 5000]);
    const series = [...metrics.metrics.get('fay_quantiles_duration_0_5_seconds')!.series.values()][0]!;
    assert.equal(series.sketch?.count, 5);
    const h = exponentialHistogram(series.sketch, 1e9);
    const median = histogramQuantile(h, 0.5);
    assert.ok(Math.abs(median - 3e-6) / 3e-6 <= exponentialRelativeError(h.scale), String(median));
  });
});
