import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { FayError } from '../errors.js';
import { planStages } from '../plan/planner.js';
import { compileQuery } from '../query/compile.js';
import { storedSchemaOf } from '../store/schema.js';
import { storeName } from '../store/location.js';
import { TraceStore } from '../store/trace-store.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';
import { connect, type Fay } from './fay.js';

/**
 * FayLINQ over history: fay.stored('name') is a source like the live ones, and a history query
 * ends by itself (awaited without a duration). No agent runs here, so this process reads this
 * machine's store (FAY_STORE_DIR) itself; src/cli/standing.test.ts asks a running agent.
 */

const S = 1e9;
const T0 = 1_796_600_000 * S;
const dir = mkdtempSync(join(tmpdir(), 'fay-linq-stored-'));
process.env.FAY_STORE_DIR = join(dir, 'store');
process.env.FAY_RUN_DIR = join(dir, 'run');
let fay: Fay;

before(async () => {
  const store = await TraceStore.open(process.env.FAY_STORE_DIR!, storeName(hostname()));
  const eventsQuery = 'syscall:openat | select comm, pid, ret';
  await store.create({ name: 'calls', query: eventsQuery, kind: 'events', retainMs: undefined, schema: storedSchemaOf(planStages(compileQuery(eventsQuery, fixtureRegistry()))) });
  // 30 s of events, 6 a second: comms cat, ls, sh in turn; ret negative for every third second.
  const events = [];
  for (let s = 0; s < 30; s++) for (let i = 0; i < 6; i++) events.push({ timeNs: T0 + s * S + i * 1e6, row: { comm: ['cat', 'ls', 'sh'][i % 3]!, pid: 100 + (i % 2), ret: s % 3 === 0 ? -2 : i } });
  await store.appendEvents('calls', hostname(), events);
  const windowsQuery = 'syscall:openat | count() by comm';
  const plan = planStages(compileQuery(windowsQuery, fixtureRegistry()));
  await store.create({ name: 'opens', query: windowsQuery, kind: 'windows', retainMs: undefined, schema: storedSchemaOf(plan) });
  const kinds = plan.cluster.output.kind === 'Aggregate' ? plan.cluster.output.aggregates.map(createAggregate) : [];
  for (let s = 0; s < 20; s++) {
    const table = new GroupTable(kinds);
    for (let i = 0; i < 5; i++) table.add([i < 3 ? 'cat' : 'ls'], [undefined], T0 + s * S);
    await store.appendWindow('opens', { host: hostname(), startNs: T0 + s * S, endNs: T0 + (s + 1) * S, table });
  }
  store.close();
  fay = await connect();
});
after(async () => {
  await fay?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('FayLINQ history queries: fay.stored(name)', () => {
  it('an events log: filter, group and count, awaited with no duration', async () => {
    const rows = await fay
      .stored<{ comm: string; pid: number; ret: number }>('calls')
      .where((e) => e.ret < 0)
      .groupBy((e) => ({ comm: e.comm }))
      .count();
    // 10 seconds of 30 had negative returns, 2 events of each comm a second.
    assert.deepEqual(rows.sort((a, b) => a.comm.localeCompare(b.comm)), [{ comm: 'cat', count: 20 }, { comm: 'ls', count: 20 }, { comm: 'sh', count: 20 }]);
    const events = await fay.stored<{ comm: string; pid: number; ret: number }>('calls').where((e) => e.pid === 101 && e.ret === 5).select((e) => ({ comm: e.comm, time: e.time }))
      .toArray();
    assert.equal(events.length, 20);
    assert.ok(events.every((e) => e.comm === 'sh'));
    assert.deepEqual(events.map((e) => e.time), [...events.map((e) => e.time)].sort((a, b) => a - b), 'in time order');
  });

  it('a windows log re-windowed: each 10 s window as it comes', async () => {
    const windows = [];
    for await (const w of fay.stored<{ comm: string }>('opens').groupBy((e) => ({ comm: e.comm })).count().every('10s')) windows.push(w);
    const full = windows.filter((w) => w.rows.length > 0);
    assert.deepEqual(full.map((w) => w.rows.map((r) => [r.comm, r.count])), [[['cat', 30], ['ls', 20]], [['cat', 30], ['ls', 20]]]);
  });

  it('a log that is not there: the error names those that are', async () => {
    await assert.rejects(async () => await fay.stored('cals').count(), (e: unknown) => e instanceof FayError && /no stored log is named "cals"/.test(e.message) && /stored:calls/.test(e.describe()));
    // A handle that never started is still stopped cleanly.
    const handle = fay.stored('cals').count().start();
    await handle.stop();
    await assert.rejects(handle.ended, /no stored log is named "cals"/);
  });
});
