import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { QuantilesResult } from '../../agg/aggregate.js';
import { GroupTable } from '../../agg/group-table.js';
import { createAggregate } from '../../agg/registry.js';
import { Agent } from '../../agent/agent.js';
import { EmbeddedCluster } from '../../cluster/embedded.js';
import type { QueryMessage, ResultMessage } from '../../cluster/cluster-stage.js';
import { FayError, UsageError } from '../../errors.js';
import { formatClock } from '../../output/format.js';
import { planStages } from '../../plan/planner.js';
import { compileQuery } from '../../query/compile.js';
import { storedSchemaOf } from '../../store/schema.js';
import { TraceStore } from '../../store/trace-store.js';
import { fixtureRegistry } from '../../testing/catalog-fixture.js';

/**
 * History queries (stored:<log> | …) over a real DuckDB store, through the embedded cluster (its
 * agent scans the store, the machine and cluster stages are the live ones). The store is filled
 * directly with known windows and events, so the expected answers are exact; no kernel is needed.
 */

const S = 1e9;
const T0 = 1_796_600_000 * S; // a multiple of 10 s
const HOST = 'hist-host';
const dir = mkdtempSync(join(tmpdir(), 'fay-history-'));
let store: TraceStore;
after(() => {
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Call i of second s took this long (ns): known, so quantiles can be checked against the exact ones. */
const duration = (s: number, i: number) => 1000 + s * 37 + i * 11;
const COMMS = ['cat', 'ls', 'sh'];
/** Seconds 0–29 are stored, except 12–17 (the agent was down). */
const STORED_SECONDS = Array.from({ length: 30 }, (_, s) => s).filter((s) => s < 12 || s > 17);
const CALLS = 30;

function storedPlan(text: string) {
  return planStages(compileQuery(text, fixtureRegistry()));
}

before(async () => {
  store = await TraceStore.open(dir, HOST);
  const windowsQuery = 'syscall:openat | count(), quantiles(duration, 0.5) by comm';
  const plan = storedPlan(windowsQuery);
  await store.create({ name: 'opens', query: windowsQuery, kind: 'windows', retainMs: undefined, schema: storedSchemaOf(plan) });
  const kinds = plan.cluster.output.kind === 'Aggregate' ? plan.cluster.output.aggregates.map(createAggregate) : [];
  for (const s of STORED_SECONDS) {
    const table = new GroupTable(kinds);
    for (let i = 0; i < CALLS; i++) table.add([COMMS[i % 3]!], [undefined, duration(s, i)], T0 + s * S);
    await store.appendWindow('opens', { host: HOST, startNs: T0 + s * S, endNs: T0 + (s + 1) * S, table });
  }
  const eventsQuery = 'syscall:openat | select comm, pid, ret';
  await store.create({ name: 'calls', query: eventsQuery, kind: 'events', retainMs: undefined, schema: storedSchemaOf(storedPlan(eventsQuery)) });
  const events = [];
  for (let s = 0; s < 20; s++) for (let i = 0; i < 10; i++) events.push({ timeNs: T0 + s * S + i * 1e6, row: { comm: COMMS[i % 3]!, pid: 100 + (i % 2), ret: s * 10 + i } });
  await store.appendEvents('calls', HOST, events);
  // Seconds 3–7 only; a third of the events lack comm and pid, and some have an empty comm.
  await store.create({ name: 'sparse', query: eventsQuery, kind: 'events', retainMs: undefined, schema: storedSchemaOf(storedPlan(eventsQuery)) });
  const sparse = [];
  for (let s = 3; s < 8; s++) for (let i = 0; i < 9; i++) sparse.push({ timeNs: T0 + s * S + i * 1e6, row: i % 3 === 0 ? { ret: i } : { comm: i % 3 === 1 ? 'cat' : '', pid: 7, ret: i } });
  await store.appendEvents('sparse', HOST, sparse);
});

async function ask(text: string, options: { everyMs?: number } = {}): Promise<QueryMessage[]> {
  const cluster = new EmbeddedCluster(new Agent(fixtureRegistry(), HOST), { store: () => Promise.resolve(store) });
  const run = await cluster.start(text, options);
  const out: QueryMessage[] = [];
  for await (const m of run) out.push(m);
  return out;
}

const results = (ms: QueryMessage[]) => ms.filter((m): m is ResultMessage => m.kind === 'result' && m.complete);
const column = (r: ResultMessage, name: string) => r.columns.findIndex((c) => c.name === name || c.name.startsWith(`${name}(`));

describe('history queries: stored:<log> planned like live ones, each agent scanning its store', () => {
  it('re-aggregates 1 s windows into 10 s ones: exact counts, quantiles within the sketch bound, the span nothing was stored for left out', async () => {
    const out = await ask('stored:opens | count(), quantiles(duration, 0.99) by comm every 10s');
    const windows = results(out).filter((r) => r.rows.length > 0);
    assert.deepEqual(windows.map((w) => (w.startNs - T0) / S), [0, 10, 20]);
    for (const w of windows) {
      const first = (w.startNs - T0) / S;
      const seconds = STORED_SECONDS.filter((s) => s >= first && s < first + 10);
      for (const row of w.rows) {
        const comm = row[column(w, 'comm')] as string;
        const expected = seconds.flatMap((s) => Array.from({ length: CALLS }, (_, i) => i).filter((i) => COMMS[i % 3] === comm).map((i) => duration(s, i))).sort((a, b) => a - b);
        assert.equal(row[column(w, 'count')], expected.length, `${comm} in ${first}s`);
        const q = row[column(w, 'quantiles')] as unknown as QuantilesResult;
        // Within the sketch's relative error of a value whose rank is the 99th percentile's (ranks q(n-1) to qn).
        const v = q.quantiles[0]!.value!;
        const near = expected.slice(Math.floor(0.99 * (expected.length - 1)), Math.ceil(0.99 * expected.length));
        assert.ok(near.some((exact) => Math.abs(v - exact) <= exact * q.relativeError), `p99 ${v} against ${near.join(' or ')} (±${q.relativeError})`);
      }
    }
    // Seconds 12–17 were not stored: the 10–20 s window holds 4 seconds' calls, and says what it misses.
    const middle = windows[1]!;
    assert.equal(middle.rows.reduce((n, r) => n + (r[column(middle, 'count')] as number), 0), 4 * CALLS);
    const end = out.find((m) => m.kind === 'end');
    assert.ok(end && end.kind === 'end');
    assert.equal(end.coverage.gaps, undefined, 'a 10 s window with part of its seconds stored is not a gap of whole windows');
    // It says which part of it is missing.
    const notices = out.filter((m) => m.kind === 'notice').map((m) => (m.kind === 'notice' ? m.message : ''));
    assert.deepEqual(notices, [
      `1 window is only partly stored here (its agent was not running the query then): the window at ${formatClock(T0 + 10 * S)} lacks ${formatClock(T0 + 12 * S)}–${formatClock(T0 + 18 * S)} (6.00s of 10.0s)`,
    ]);
  });

  it('states a span no window covers as missing coverage, not as zeros', async () => {
    const out = await ask('stored:opens | count() every 2s');
    const windows = results(out);
    const starts = windows.map((w) => (w.startNs - T0) / S);
    assert.deepEqual(starts, [0, 2, 4, 6, 8, 10, 18, 20, 22, 24, 26, 28], 'no zero rows for 12–17 s');
    assert.deepEqual(out.filter((m) => m.kind === 'notice'), [], 'whole windows missing are coverage gaps, not notices');
    const end = out.find((m) => m.kind === 'end');
    assert.ok(end && end.kind === 'end');
    assert.deepEqual(end.coverage.gaps?.map((g) => [g.host, (g.startNs - T0) / S, (g.endNs - T0) / S, g.reason]), [[HOST, 12, 18, 'nothing of it is stored for that span: its agent was not running the query then']]);
  });

  it('one answer for the whole span without a period, and a filter on keys and time', async () => {
    const whole = await ask('stored:opens | count()');
    assert.deepEqual(
      whole.filter((m) => m.kind === 'notice').map((m) => (m.kind === 'notice' ? m.message : '')),
      [`the answer lacks ${formatClock(T0 + 12 * S)}–${formatClock(T0 + 18 * S)} (6.00s of 30.0s) of this host's span: its agent was not running the query then`],
    );
    const [total] = results(await ask(`stored:opens | where comm != "sh" and time >= ${(T0 + 20 * S) / S} * 1000000000 | count() by comm`)).slice(-1);
    assert.ok(total);
    assert.deepEqual(
      total.rows.map((r) => [r[column(total, 'comm')], r[column(total, 'count')]]).sort(),
      [['cat', 10 * 10], ['ls', 10 * 10]],
    );
  });

  it('an events log: count by a field every 5 s in the store\'s SQL, avg and a filter', async () => {
    const out = results(await ask('stored:calls | where pid == 100 | count(), avg(ret) by comm every 5s'));
    const windows = out.filter((r) => r.rows.length > 0);
    assert.deepEqual(windows.map((w) => (w.startNs - T0) / S), [0, 5, 10, 15]);
    for (const w of windows) {
      const first = (w.startNs - T0) / S;
      for (const row of w.rows) {
        const comm = row[column(w, 'comm')];
        const rets = [];
        for (let s = first; s < first + 5; s++) for (let i = 0; i < 10; i += 2) if (COMMS[i % 3] === comm) rets.push(s * 10 + i);
        assert.equal(row[column(w, 'count')], rets.length);
        assert.equal(row[column(w, 'avg')], rets.reduce((a, b) => a + b, 0) / rets.length);
      }
    }
  });

  it('an events log aggregated in SQL with no filter: a missing key reads as the machine stage reads it, the span is the events\' own', async () => {
    const byComm = (r: ResultMessage) => r.rows.map((row) => [row[column(r, 'comm')], row[column(r, 'count')]]).sort();
    const windows = results(await ask('stored:sparse | count() by comm every 5s')).filter((r) => r.rows.length > 0);
    assert.deepEqual(windows.map((w) => [(w.startNs - T0) / S, (w.endNs - T0) / S]), [[0, 5], [5, 10]]);
    // Missing and empty comms are one group, as a live query's "" would be.
    assert.deepEqual(windows.map(byComm), [[['', 12], ['cat', 6]], [['', 18], ['cat', 9]]]);
    const [whole] = results(await ask('stored:sparse | count() by pid')).slice(-1);
    assert.ok(whole);
    assert.deepEqual(whole.rows.map((r) => [r[column(whole, 'pid')], r[column(whole, 'count')]]).sort(), [[0, 15], [7, 30]]);
    // (Times of this epoch are whole to 256 ns as doubles: compared as computed, not as differences.)
    assert.deepEqual([whole.startNs, whole.endNs], [T0 + 3 * S, T0 + 7 * S + 8e6 + 1], 'from the first event to just after the last');
  });

  it('an events log: what SQL cannot keep (quantiles) the agent computes from the stored events', async () => {
    const [total] = results(await ask('stored:calls | quantiles(ret, 0.5) by pid')).slice(-1);
    assert.ok(total);
    const p50 = new Map(total.rows.map((r) => [r[column(total, "pid")], (r[column(total, "quantiles")] as unknown as QuantilesResult).quantiles[0]!.value] as const));
    for (const pid of [100, 101]) {
      const rets = [];
      for (let s = 0; s < 20; s++) for (let i = pid - 100; i < 10; i += 2) rets.push(s * 10 + i);
      rets.sort((a, b) => a - b);
      const exact = rets[Math.ceil(0.5 * rets.length) - 1]!;
      assert.ok(Math.abs(p50.get(pid)! - exact) <= exact * 0.02, `pid ${pid}: ${p50.get(pid)} against ${exact}`);
    }
  });

  it('an events log: select its events, in time order, with a filter', async () => {
    const events = (await ask(`stored:calls | where ret >= 195 | select time, comm, ret`)).filter((m) => m.kind === 'events');
    const rows = events.flatMap((m) => (m.kind === 'events' ? m.rows.map((r) => Object.fromEntries(m.columns.map((c, i) => [c, r[i]]))) : []));
    assert.deepEqual(rows.map((r) => r.ret), [195, 196, 197, 198, 199]);
    assert.deepEqual(rows.map((r) => r.time), [1, 2, 3, 4, 5].map((n) => T0 + 19 * S + (4 + n) * 1e6));
  });

  it('a log that is not there lists those that are; an aggregate the log does not keep says which it does', async () => {
    await assert.rejects(ask('stored:opns | count()'), (e: unknown) => e instanceof FayError && /no stored log is named "opns"/.test(e.message) && /did you mean stored:opens/.test(e.describe()));
    await assert.rejects(ask('stored:opens | sum(duration)'), (e: unknown) => e instanceof UsageError && /has no sum\(duration\)/.test(e.message) && /count\(\), quantiles\(duration, 0.5\)/.test(e.describe()));
    await assert.rejects(ask('stored:opens | where duration > 5 | count()'), (e: unknown) => e instanceof UsageError && /keeps aggregates of duration/.test(e.message));
  });
});
