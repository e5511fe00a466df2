import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { ClusterStage, CLUSTER_STAGE, type NoticeMessage, type QueryMessage, type ResultMessage } from '../cluster/cluster-stage.js';
import { QueryError } from '../errors.js';
import { formatCell } from '../output/format.js';
import { planStages } from '../plan/planner.js';
import { compileQuery } from '../query/compile.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';
import { categorize, countMatrix, median } from './categorize.js';
import { prng } from '../prng.js';
import type { FeaturesCell } from './categorizer.js';

/**
 * The categorize stage at the cluster stage, fed windows of counts by host and probe as the
 * cluster stage merges them: known mixes, so the categories, labels and features are exact.
 */

const S = 1e9;
const T0 = 1_796_600_000 * S;

/** Workload A: reads; B: opens and writes. A few percent of noise per host, fixed. */
function mixOf(workload: 'A' | 'B', host: number): Record<string, number> {
  const wobble = 1 + ((host * 37) % 11) / 200;
  return workload === 'A'
    ? { 'syscall:read': Math.round(9000 * wobble), 'syscall:write': 300, 'syscall:openat': 100, 'syscall:close': 100 }
    : { 'syscall:read': 500, 'syscall:write': Math.round(6000 * wobble), 'syscall:openat': 3500, 'syscall:close': 2500 };
}

function stageFor(query: string): { stage: ClusterStage; out: QueryMessage[]; push: (window: number, hosts: Record<string, 'A' | 'B'>) => void } {
  const plan = planStages(compileQuery(query, fixtureRegistry()));
  const out: QueryMessage[] = [];
  const stage = new ClusterStage(plan, 10 * S, 10_000, (m) => out.push(m), () => undefined);
  const kinds = plan.cluster.output.kind === 'Aggregate' ? plan.cluster.output.aggregates.map(createAggregate) : [];
  const push = (window: number, hosts: Record<string, 'A' | 'B'>) => {
    const table = new GroupTable(kinds);
    Object.entries(hosts).forEach(([host, workload], i) => {
      for (const [probe, n] of Object.entries(mixOf(workload, i))) table.mergeGroup([host, probe], [kinds[0]!.decode(n)]);
    });
    const names = Object.keys(hosts);
    stage.period({ table, startNs: T0 + window * 10 * S, endNs: T0 + (window + 1) * 10 * S, hosts: names, droppedEvents: 0, uncountedEvents: 0 }, { expected: names, reporting: names, late: [], missing: [] });
  };
  return { stage, out, push };
}

const results = (out: QueryMessage[]) => out.filter((m): m is ResultMessage => m.kind === 'result');
const byHost = (r: ResultMessage) => Object.fromEntries(r.rows.map((row) => [row[0] as string, Object.fromEntries(r.columns.map((c, i) => [c.name, row[i]]))]));

describe('categorize: hosts by the mix of their system calls', () => {
  const QUERY = 'syscall:* | count() by host, probe every 10s | categorize host by probe';

  it('puts six hosts running B apart from ten running A, names the calls that set them apart, and keeps the labels', () => {
    const { out, push } = stageFor(QUERY);
    const hosts = (switched: boolean): Record<string, 'A' | 'B'> =>
      Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`h${String(i).padStart(2, '0')}`, i < 6 || (switched && i === 6) ? 'B' : 'A'] as const));
    push(0, hosts(false));
    push(1, hosts(false));
    push(2, hosts(true));
    const [first, second, third] = results(out).map(byHost);
    assert.deepEqual(results(out)[0]!.columns.map((c) => c.name), ['host', 'category', 'size', 'distance', 'outlier', 'features', 'changed']);
    // The larger category is 1; the same labels in the next window; no change flagged.
    for (const window of [first!, second!]) {
      for (let i = 0; i < 16; i++) {
        const h = window[`h${String(i).padStart(2, '0')}`]!;
        assert.deepEqual([h.category, h.size, h.changed], i < 6 ? [2, 6, false] : [1, 10, false], `h${i}`);
      }
    }
    const features = first!.h00!.features as FeaturesCell;
    assert.deepEqual(features.items.map((f) => f.feature), ['syscall:read', 'syscall:write', 'syscall:openat']);
    assert.ok(features.items[0]!.share < features.items[0]!.overall, 'B reads less than all hosts do');
    // B's mix against all 16 hosts': 4% reads against 61%, and so on.
    assert.equal(formatCell(features), 'syscall:read 4% (all 61%), syscall:write 49% (all 20%), syscall:openat 28% (all 11%)');
    // h06 switched from A to B: category 2 now, flagged; the others unchanged.
    assert.deepEqual([third!.h06!.category, third!.h06!.changed], [2, true]);
    assert.deepEqual(Object.entries(third!).filter(([, h]) => h.changed).map(([name]) => name), ['h06']);
    assert.equal(third!.h00!.size, 7);
    // Every figure is a number, never NaN.
    for (const r of results(out)) for (const row of r.rows) for (const cell of [row[2], row[3], row[4]]) assert.ok(typeof cell === 'number' && Number.isFinite(cell));
  });

  it('reads the merged groups as it reads their rows: the same categories with or without a row stage before it', () => {
    const direct = stageFor(QUERY);
    const throughRows = stageFor('syscall:* | count() by host, probe every 10s | where count > 0 | categorize host by probe');
    const hosts = (switched: boolean): Record<string, 'A' | 'B'> =>
      Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`h${String(i).padStart(2, '0')}`, i < 4 || (switched && i === 4) ? 'B' : 'A'] as const));
    for (const [window, switched] of [false, true, true].entries()) {
      direct.push(window, hosts(switched));
      throughRows.push(window, hosts(switched));
    }
    const [a, b] = [results(direct.out), results(throughRows.out)];
    assert.equal(a.length, 3);
    assert.deepEqual(a.map((r) => r.rows), b.map((r) => r.rows));
    assert.equal(new Set(a[2]!.rows.map((row) => row[1])).size, 2, 'two categories');
  });

  it('is deterministic: the same windows give the same categories, labels and figures', () => {
    const run = () => {
      const { out, push } = stageFor(QUERY);
      const hosts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`h${i}`, i % 4 === 0 ? 'B' : 'A'] as const));
      push(0, hosts);
      push(1, hosts);
      return JSON.stringify(results(out).map((r) => r.rows));
    };
    assert.equal(run(), run());
  });

  it('under 8 hosts, still puts the ones that differ apart, and says the categories are weak', () => {
    const { out, push } = stageFor(QUERY);
    push(0, { a: 'A', b: 'A', c: 'A', d: 'A', e: 'B', f: 'B' });
    const rows = byHost(results(out)[0]!);
    assert.deepEqual(Object.fromEntries(Object.entries(rows).map(([h, r]) => [h, r.category])), { a: 1, b: 1, c: 1, d: 1, e: 2, f: 2 });
    assert.ok((rows.e!.outlier as number) > 3.5 && rows.a!.outlier === 0);
    // d switches to B: three and three, still two categories, and d's change is flagged.
    push(1, { a: 'A', b: 'A', c: 'A', d: 'B', e: 'B', f: 'B' });
    const next = byHost(results(out)[1]!);
    assert.deepEqual(Object.fromEntries(Object.entries(next).map(([h, r]) => [h, [r.category, r.changed]])), { a: [1, false], b: [1, false], c: [1, false], d: [2, true], e: [2, false], f: [2, false] });
    const notices = out.filter((m): m is NoticeMessage => m.kind === 'notice');
    assert.equal(notices.length, 1, 'said once');
    assert.equal(notices[0]!.host, CLUSTER_STAGE);
    assert.match(notices[0]!.message, /with fewer than 8 host values \(6 in this window\) the categories are weak/);
  });

  it('says so, without NaN or an empty table, when a window has fewer than two hosts', () => {
    const { out, push } = stageFor(QUERY);
    push(0, { only: 'A' });
    assert.deepEqual(results(out)[0]!.rows, []);
    assert.match(out.find((m): m is NoticeMessage => m.kind === 'notice')!.message, /needs at least two host values with counts in a window; this one has 1/);
  });

  it('finds medians by selection as a sort would', () => {
    const random = prng(3);
    for (let n = 1; n < 60; n++) {
      const values = Float64Array.from({ length: n }, () => Math.floor(random() * 10));
      const sorted = Float64Array.from(values).sort();
      const expected = n % 2 === 1 ? sorted[n >> 1]! : (sorted[(n >> 1) - 1]! + sorted[n >> 1]!) / 2;
      assert.equal(median(values), expected, `${n} values`);
    }
  });

  it('keeps the last window\'s clustered features while each still varies among the 48 that vary most', () => {
    // 30 hosts × 60 calls of random mixes: more features than the 24 clustered.
    const random = prng(11);
    const features = Array.from({ length: 60 }, (_, j) => `syscall:c${String(j).padStart(2, '0')}`);
    const rows = Array.from({ length: 30 }, (_, i) => Float64Array.from(features, (_, j) => Math.round(10 + random() * (j % 3 === 0 ? 5000 : 500) * (1 + (i % 4)))));
    const first = categorize({ features, rows });
    assert.equal(first.state.features.length, 24);
    // The features by how much their shares' square roots vary across hosts, most first (what categorize ranks them by).
    const ranked = (m: readonly Float64Array[]) => {
      const roots = m.map((r) => {
        const total = r.reduce((a, b) => a + b, 0);
        return Array.from(r, (c) => Math.sqrt(c / total));
      });
      const variance = features.map((_, j) => {
        const mean = roots.reduce((a, r) => a + r[j]!, 0) / roots.length;
        return roots.reduce((a, r) => a + r[j]! * r[j]!, 0) / roots.length - mean * mean;
      });
      return features.map((_, j) => j).sort((a, b) => variance[b]! - variance[a]! || a - b);
    };
    const order = ranked(rows);
    assert.deepEqual([...first.state.features].sort(), order.slice(0, 24).map((j) => features[j]!).sort(), 'the 24 that vary most');
    /** The counts with the columns of two features swapped: each host's mix the same, the two features' names traded. */
    const swapped = (a: number, b: number) => rows.map((r) => {
      const copy = Float64Array.from(r);
      [copy[a], copy[b]] = [r[b]!, r[a]!];
      return copy;
    });
    // The 24th and 25th trade places: a fresh choice takes the 25th, the next window keeps the 24th.
    const near = swapped(order[23]!, order[24]!);
    assert.ok(!categorize({ features, rows: near }).state.features.includes(features[order[23]!]!));
    assert.deepEqual(categorize({ features, rows: near }, { previous: first.state }).state.features, first.state.features);
    // The 24th trades with the one that varies least (60th): it is no longer among 48, and the choice is made afresh.
    const far = swapped(order[23]!, order[59]!);
    const fresh = categorize({ features, rows: far });
    assert.notDeepEqual(fresh.state.features, first.state.features);
    assert.deepEqual(categorize({ features, rows: far }, { previous: first.state }).state.features, fresh.state.features);
  });

  it('k=3 asks for three categories', () => {
    const found = categorize(countMatrix(Array.from({ length: 12 }, (_, i) => new Map(Object.entries(mixOf(i % 2 === 0 ? 'A' : 'B', i))))), { k: 3 });
    assert.equal(found.k, 3);
    assert.equal(found.few, false);
  });

  it('refuses a key the aggregate does not have, another key left over, an aggregate that is not a count, and rows stages after it', () => {
    const refused = (query: string, pattern: RegExp) => assert.throws(() => planStages(compileQuery(query, fixtureRegistry())), (e: unknown) => e instanceof QueryError && pattern.test(e.describe()));
    refused('syscall:* | count() by host, probe | categorize hots by probe', /hots is not a key of the aggregate \(its keys: host, probe\)[\s\S]*did you mean host/);
    refused('syscall:* | count() by host, probe, comm | categorize host by probe', /also keyed by comm[\s\S]*categorize host by probe, comm/);
    refused('syscall:* | sum(ret) by host, probe | categorize host by probe', /the aggregate's first value must be count\(\), not sum\(\)/);
    refused('syscall:* | count() by host, probe | categorize host by probe | top 3', /categorize gives the categories: it is the last stage/);
    refused('syscall:* | categorize host by probe', /count first/);
    refused('syscall:* | count() by host, probe | categorize host by probe k=0', /k is the number of categories: 1 to 50/);
  });

  it('prints as FayQL and explains where it runs', () => {
    const plan = planStages(compileQuery('syscall:* | count() by comm, probe every 10s | categorize comm by probe k=3', fixtureRegistry()));
    assert.ok(plan.placements.some((p) => p.stage === 'cluster' && /^categorize comm by probe k=3/.test(p.part)));
  });
});
