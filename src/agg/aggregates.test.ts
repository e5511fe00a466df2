import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AGGREGATES, type AggregateFunction } from './aggregates.js';
import { GroupTable } from './group-table.js';
import { log2Bucket, log2BucketHigh, log2BucketLow } from './log2.js';

/** A small seeded generator (mulberry32), so that a failure can be replayed from its seed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUNCTIONS = Object.keys(AGGREGATES) as AggregateFunction[];
const kinds = FUNCTIONS.map((f) => AGGREGATES[f]);

describe('mergeable aggregates', () => {
  it('merging the partials of any split equals aggregating the whole stream (also through the wire form)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const events = Array.from({ length: Math.floor(next() * 300) }, () => ({
        key: [`k${Math.floor(next() * 5)}`, Math.floor(next() * 3)],
        value: Math.floor((next() - 0.2) * 2 ** Math.floor(next() * 40)),
      }));
      const whole = new GroupTable(kinds);
      for (const e of events) whole.add(e.key, FUNCTIONS.map(() => e.value));

      const parts = Array.from({ length: 1 + Math.floor(next() * 6) }, () => new GroupTable(kinds));
      for (const e of events) parts[Math.floor(next() * parts.length)]!.add(e.key, FUNCTIONS.map(() => e.value));
      const merged = new GroupTable(kinds);
      for (const part of parts.sort(() => next() - 0.5)) merged.merge(GroupTable.decode(kinds, JSON.parse(JSON.stringify(part.encode()))));

      const sorted = (t: GroupTable) => t.finalize().sort((a, b) => JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)));
      assert.deepEqual(sorted(merged), sorted(whole), `seed ${seed}`);
    }
  });

  it('finalizes empty states to what an empty stream means', () => {
    assert.deepEqual(kinds.map((k) => k.finalize(k.empty())), [0, 0, null, null, null, { kind: 'hist', buckets: [], total: 0 }]);
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
