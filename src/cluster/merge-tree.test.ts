import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { MergedMessage, PROTOCOL_VERSION, receiveFromAggregator, shardOf, SHARDS, SUBJECTS, writeMessage } from '../bus/protocol.js';
import { ownerOf, SHARD_TOKENS, shardsOf, treeOf } from './merge-tree.js';
import { emptyPeriod, mergeWindow, PeriodAligner, type HostWindow } from './period-aligner.js';
import type { Period } from './windows.js';

const HOSTS = Array.from({ length: 2000 }, (_, i) => `web-${i}.example.com`);
const kinds = [createAggregate({ function: 'count', params: [] })];

describe('the merge tree: hosts to aggregators', () => {
  it('puts every host in one of 256 shards, spread evenly', () => {
    const counts = new Map<string, number>();
    for (const h of HOSTS) counts.set(shardOf(h), (counts.get(shardOf(h)) ?? 0) + 1);
    assert.equal(SHARD_TOKENS.length, SHARDS);
    for (const shard of counts.keys()) assert.ok(SHARD_TOKENS.includes(shard));
    // 2,000 hosts over 256 shards: ~7.8 each; none empty-handed by much, none over 3×.
    assert.ok(Math.max(...counts.values()) <= 24, `the fullest shard has ${Math.max(...counts.values())}`);
    assert.ok(counts.size >= 240, `${counts.size} shards used`);
  });

  it('gives each shard to exactly one aggregator, and each aggregator a fair share', () => {
    const aggregators = ['agg-a', 'agg-b', 'agg-c', 'agg-d'];
    const shares = aggregators.map((a) => shardsOf(a, aggregators));
    assert.equal(shares.flat().length, SHARDS);
    assert.equal(new Set(shares.flat()).size, SHARDS);
    for (const share of shares) assert.ok(share.length > SHARDS / 4 / 2 && share.length < (SHARDS / 4) * 1.5, `a share of ${share.length} shards`);
    const tree = treeOf(HOSTS, aggregators);
    assert.equal([...tree.values()].flat().length, HOSTS.length);
    assert.equal(tree.get(undefined), undefined);
  });

  it('moves only the shards of an aggregator that goes, and only to one that comes', () => {
    const before = ['agg-a', 'agg-b', 'agg-c'];
    const without = ['agg-a', 'agg-c'];
    const withNew = [...before, 'agg-d'];
    for (const shard of SHARD_TOKENS) {
      const owner = ownerOf(shard, before)!;
      if (owner !== 'agg-b') assert.equal(ownerOf(shard, without), owner, `shard ${shard} stays with ${owner}`);
      const next = ownerOf(shard, withNew)!;
      assert.ok(next === owner || next === 'agg-d', `shard ${shard} moved from ${owner} to ${next}`);
    }
    assert.equal(ownerOf('00', []), undefined);
  });
});

/** A window of `hosts` (a host's own, or an aggregator's) counting `n` in group "g". */
function windowOf(source: string, hosts: string[], seq: number, n: number, endNs = (seq + 1) * 1e9): HostWindow {
  const table = new GroupTable(kinds);
  for (let i = 0; i < n; i++) table.add(['g'], [undefined], 0);
  return { source, incarnation: 'x', hosts, seq, seqEnd: seq, part: 0, parts: 1, startNs: endNs - 1e9, endNs, droppedEvents: 0, uncountedEvents: 0, table };
}

const countOf = (table: GroupTable) => Number(table.finalize()[0]?.values[0] ?? 0);

describe('merging aggregators\' partials into periods', () => {
  it('takes a partial only on the subject of the aggregator it names', () => {
    const message: MergedMessage = { v: PROTOCOL_VERSION, id: 'q1', aggregator: 'agg-1', incarnation: 'x', kind: 'final', hosts: 0 };
    let rejected = 0;
    assert.equal(receiveFromAggregator(MergedMessage, writeMessage(message), SUBJECTS.merged('q1', 1, 'agg-1'), () => rejected++)?.aggregator, 'agg-1');
    assert.equal(receiveFromAggregator(MergedMessage, writeMessage(message), SUBJECTS.merged('q1', 1, 'agg-0'), () => rejected++), undefined);
    assert.equal(rejected, 1);
  });

  it('counts a host once when two aggregators pass up its window (the tree was changing)', () => {
    const period = emptyPeriod(new GroupTable(kinds));
    assert.equal(mergeWindow(period, windowOf('aggregator a', ['h1', 'h2'], 0, 3)), true);
    // b took h2's shard before a gave it up, and passes up h2 (and h3) too: left out whole.
    assert.equal(mergeWindow(period, windowOf('aggregator b', ['h2', 'h3'], 0, 5)), false);
    assert.equal(mergeWindow(period, windowOf('aggregator c', ['h4'], 0, 7)), true);
    assert.equal(countOf(period.table), 10);
    assert.deepEqual([...period.covered].sort(), ['h1', 'h2', 'h4']);
  });

  it('closes a period once every live host is in, through whichever aggregator', () => {
    const closed: { period: Period; reporting: readonly string[]; late: readonly string[] }[] = [];
    const aligner = new PeriodAligner(1000, 60_000, false, {
      onPeriod: (period, coverage) => closed.push({ period, reporting: [...coverage.reporting].sort(), late: coverage.late }),
      onLate: () => assert.fail('nothing is late'),
      expected: () => ({ all: ['h1', 'h2', 'h3'], alive: new Set(['h1', 'h2', 'h3']) }),
      empty: () => new GroupTable(kinds),
    });
    aligner.begin();
    aligner.add(windowOf('aggregator a', ['h1', 'h2'], 0, 2));
    assert.equal(closed.length, 0, 'h3 is not in yet');
    aligner.add(windowOf('aggregator b', ['h3'], 4, 1, 1e9));
    assert.equal(closed.length, 1);
    assert.deepEqual(closed[0]!.reporting, ['h1', 'h2', 'h3']);
    assert.equal(countOf(closed[0]!.period.table), 3);
    // Each aggregator's next period lines up with the first by its own number.
    aligner.add(windowOf('aggregator b', ['h3'], 5, 1, 2e9));
    aligner.add(windowOf('aggregator a', ['h1', 'h2'], 1, 2, 2e9));
    assert.equal(closed.length, 2);
    assert.equal(countOf(closed[1]!.period.table), 3);
    aligner.finish();
  });
});
