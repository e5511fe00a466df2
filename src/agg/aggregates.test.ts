import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AggregateKind, QuantilesResult, SampleResult, TopKResult } from './aggregate.js';
import { QUANTILE_RELATIVE_ERROR } from './ddsketch.js';
import { GroupTable, OTHER } from './group-table.js';
import { DISTINCT_STANDARD_ERROR } from './hyperloglog.js';
import { log2Bucket, log2BucketHigh, log2BucketLow } from './log2.js';
import { createAggregate, type AggregateCall } from './registry.js';
import { effectiveMaxGroups } from '../plan/limits.js';

interface Event {
  readonly key: readonly (string | number)[];
  readonly value: number;
  readonly timeNs: number;
}

const events = fc.array(
  fc.record({
    key: fc.tuple(fc.constantFrom('node', 'bash', 'a,b'), fc.integer({ min: 0, max: 3 })),
    value: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 2 ** 40 })),
    // Distinct times, so that first/last have one right answer whatever the split.
    timeNs: fc.nat(),
  }),
  { maxLength: 400 },
).map((list) => list.map((e, i) => ({ ...e, timeNs: e.timeNs * 1000 + i })));

/** Splits a stream into 1..6 parts at random, each event to one part. */
const splits = fc.tuple(events, fc.infiniteStream(fc.nat({ max: 5 })), fc.integer({ min: 1, max: 6 }));

function aggregate(calls: readonly AggregateCall[], list: readonly Event[], assign?: (i: number) => number, parts = 1): GroupTable[] {
  const kinds = calls.map(createAggregate);
  const tables = Array.from({ length: parts }, () => new GroupTable(kinds));
  list.forEach((e, i) => tables[assign ? assign(i) % parts : 0]!.add(e.key, calls.map(() => e.value), e.timeNs));
  return tables;
}

/** Merges tables through the wire form (encode → JSON → decode), in reverse order. */
function mergeThroughWire(calls: readonly AggregateCall[], tables: readonly GroupTable[]): GroupTable {
  const kinds = calls.map(createAggregate);
  const merged = new GroupTable(kinds);
  for (const t of [...tables].reverse()) merged.merge(GroupTable.decode(kinds, JSON.parse(JSON.stringify(t.encode()))));
  return merged;
}

function byKey(table: GroupTable) {
  return table.finalize().sort((a, b) => JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)));
}

const EXACT: AggregateCall[] = [
  { function: 'count', params: [] },
  { function: 'sum', params: [] },
  { function: 'min', params: [] },
  { function: 'max', params: [] },
  { function: 'avg', params: [] },
  { function: 'hist', params: [] },
  { function: 'lhist', params: [-500, 500, 100] },
  { function: 'first', params: [] },
  { function: 'last', params: [] },
  { function: 'topk', params: [100] },
  { function: 'distinct', params: [] },
];

describe('mergeable aggregates', () => {
  it('merging the partials of any split, through the wire form, equals aggregating the whole stream', () => {
    fc.assert(
      fc.property(splits, ([list, assignments, parts]) => {
        const picks = [...assignments.take(list.length)];
        const [whole] = aggregate(EXACT, list);
        const merged = mergeThroughWire(EXACT, aggregate(EXACT, list, (i) => picks[i]!, parts));
        // Exact: count sum min max avg hist lhist first last, topk while k covers every value,
        // distinct while there are fewer than 256 values.
        assert.deepEqual(byKey(merged), byKey(whole!));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps stddev within floating-point rounding of the whole stream’s', () => {
    const calls: AggregateCall[] = [{ function: 'stddev', params: [] }];
    fc.assert(
      fc.property(splits, ([list, assignments, parts]) => {
        const picks = [...assignments.take(list.length)];
        const whole = byKey(aggregate(calls, list)[0]!);
        const merged = byKey(mergeThroughWire(calls, aggregate(calls, list, (i) => picks[i]!, parts)));
        whole.forEach((g, i) => {
          const [a, b] = [g.values[0] as number, merged[i]!.values[0] as number];
          assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a)), `${a} vs ${b}`);
        });
      }),
    );
  });

  it('gives every quantile within 1% of the exact one, however the stream was split', () => {
    const ps = [0, 0.25, 0.5, 0.9, 0.99, 1];
    const calls: AggregateCall[] = [{ function: 'quantiles', params: ps }];
    fc.assert(
      fc.property(splits, ([list, assignments, parts]) => {
        const picks = [...assignments.take(list.length)];
        const merged = mergeThroughWire(calls, aggregate(calls, list, (i) => picks[i]!, parts));
        for (const group of merged.finalize()) {
          const values = list.filter((e) => JSON.stringify(e.key) === JSON.stringify(group.key)).map((e) => e.value).sort((a, b) => a - b);
          for (const { p, value } of (group.values[0] as QuantilesResult).quantiles) {
            const exact = values[Math.floor(p * (values.length - 1))]!;
            assert.ok(Math.abs(value! - exact) <= QUANTILE_RELATIVE_ERROR * Math.abs(exact) + 1e-9, `p${p}: ${value} vs ${exact}`);
          }
        }
      }),
    );
  });

  it('counts distinct values within 5 standard errors once estimated, exactly before', () => {
    for (const n of [10, 255, 1000, 20000, 200000]) {
      const parts = aggregate([{ function: 'distinct', params: [] }], Array.from({ length: n * 2 }, (_, i) => ({ key: [], value: i % n, timeNs: i })), (i) => i % 3, 3);
      const estimate = mergeThroughWire([{ function: 'distinct', params: [] }], parts).finalize()[0]!.values[0] as number;
      if (n <= 255) assert.equal(estimate, n);
      else assert.ok(Math.abs(estimate - n) <= 5 * DISTINCT_STANDARD_ERROR * n, `distinct of ${n}: ${estimate}`);
    }
  });

  it('finds the most frequent values with space-saving, and says how far a count may be off', () => {
    const stream = Array.from({ length: 20000 }, (_, i) => ({ key: [], value: i % 7 === 0 ? 1 : i % 11 === 0 ? 2 : 1000 + (i % 5000), timeNs: i }));
    const calls: AggregateCall[] = [{ function: 'topk', params: [2] }];
    const result = mergeThroughWire(calls, aggregate(calls, stream, (i) => i % 4, 4)).finalize()[0]!.values[0] as TopKResult;
    const truth = new Map<number, number>();
    for (const e of stream) truth.set(e.value, (truth.get(e.value) ?? 0) + 1);
    assert.deepEqual(result.items.map((i) => i.value), [1, 2]);
    for (const item of result.items) {
      const exact = truth.get(item.value as number)!;
      assert.ok(item.count >= exact && item.count - item.error <= exact, JSON.stringify(item));
    }
  });

  it('samples whole events uniformly, and a merged sample is one a single reservoir could keep', () => {
    const calls: AggregateCall[] = [{ function: 'sample', params: [5] }];
    const stream = Array.from({ length: 1000 }, (_, i) => ({ key: [], value: i, timeNs: i }));
    const kinds = calls.map(createAggregate);
    const parts = Array.from({ length: 3 }, () => new GroupTable(kinds));
    stream.forEach((e, i) => parts[i % 3]!.add(e.key, [{ n: e.value }], e.timeNs));
    const result = mergeThroughWire(calls, parts).finalize()[0]!.values[0] as SampleResult;
    assert.equal(result.seen, 1000);
    assert.equal(result.events.length, 5);
    assert.equal(new Set(result.events.map((e) => e.n)).size, 5, 'without replacement');
    // Uniformity: over many draws every decile is picked about equally often.
    const deciles = new Array<number>(10).fill(0);
    for (let round = 0; round < 400; round++) {
      const kind = createAggregate(calls[0]!) as AggregateKind<unknown, SampleResult>;
      const state = kind.empty();
      for (const e of stream) kind.add(state, { n: e.value }, e.timeNs);
      for (const e of kind.finalize(state).events) deciles[Math.floor((e.n as number) / 100)]!++;
    }
    for (const d of deciles) assert.ok(d > 120 && d < 280, `deciles ${deciles.join(' ')}`);
  });

  it('folds groups beyond the cap into (other) and counts them, across merges', () => {
    const kinds = [createAggregate({ function: 'count', params: [] })];
    const a = new GroupTable(kinds, { maxGroups: 3 });
    for (let i = 0; i < 10; i++) a.add([`k${i}`], [undefined], 0);
    assert.equal(a.size, 4, 'three groups and (other)');
    assert.deepEqual(byKey(a).map((g) => [g.key[0], g.values[0]]), [[OTHER, 7], ['k0', 1], ['k1', 1], ['k2', 1]]);
    assert.equal(a.foldedGroups, 7);
    const b = GroupTable.decode(kinds, JSON.parse(JSON.stringify(a.encode())), { maxGroups: 3 });
    b.merge(a);
    assert.equal(b.foldedGroups, 7, 'the same folded groups are not counted twice');
    assert.equal(byKey(b).find((g) => g.key[0] === OTHER)!.values[0], 14);
    assert.equal(byKey(b).find((g) => g.key[0] === 'k0')!.values[0], 2);
  });

  it('turns a memory cap into a group cap from what the states of each group can take', () => {
    const spec = (fn: AggregateCall['function'], params: number[] = []) => ({ name: fn, function: fn, argument: undefined, params });
    const limits = { maxGroups: 1_000_000, maxEventsPerSecond: 1, maxMemoryBytes: 64 * 1024 * 1024 };
    assert.equal(effectiveMaxGroups([spec('count')], limits), Math.floor(limits.maxMemoryBytes / 160));
    assert.equal(effectiveMaxGroups([spec('quantiles', [0.5])], limits), Math.floor(limits.maxMemoryBytes / (128 + 65536)));
    assert.equal(effectiveMaxGroups([spec('count')], { ...limits, maxGroups: 10 }), 10);
  });

  it('refuses malformed or foreign wire forms with a TypeError', () => {
    const kinds = [createAggregate({ function: 'count', params: [] })];
    for (const wire of [null, 5, { v: 2, arity: 0, keys: [], states: [[]] }, { v: 1, arity: 1, keys: ['a'], states: [['x']] }, { v: 1, arity: 1, keys: [{}], states: [[1]] }]) {
      assert.throws(() => GroupTable.decode(kinds, wire), TypeError, JSON.stringify(wire));
    }
  });

  it('finalizes empty states to what an empty stream means', () => {
    const kinds = EXACT.map(createAggregate);
    assert.deepEqual(kinds.map((k) => k.finalize(k.empty())), [
      0, 0, null, null, null,
      { kind: 'hist', buckets: [], total: 0 },
      { kind: 'hist', buckets: [], total: 0 },
      null, null,
      { kind: 'topk', items: [], total: 0 },
      0,
    ]);
  });

  it('buckets values exactly as bpftrace hist() does', () => {
    const cases: [number, number][] = [[-5, -1], [0, 0], [1, 1], [2, 2], [3, 2], [4, 3], [1023, 10], [1024, 11], [2 ** 40, 41], [2 ** 40 - 1, 40]];
    for (const [value, bucket] of cases) assert.equal(log2Bucket(value), bucket, String(value));
    for (let b = 0; b < 50; b++) {
      assert.equal(log2Bucket(log2BucketLow(b)!), b);
      assert.equal(log2Bucket(log2BucketHigh(b)), b);
    }
  });
});
