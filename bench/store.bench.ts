/**
 * The trace store (issue 20), side by side in one run: events persisted per second through Fay's
 * store (TraceStore.appendEvents: a row's JSON, its host and time, through DuckDB's appender) against
 * DuckDB's appender alone writing the same rows into a table of the same shape; and the bytes on
 * disk per stored event and per stored window (a window of 100 groups, count, sum and quantiles
 * states), each file checkpointed. ROUNDS rounds of EVENTS events in batches of BATCH; medians.
 * Target: Fay at least 0.5× the appender alone.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { GroupTable } from '../src/agg/group-table.js';
import { createAggregate } from '../src/agg/registry.js';
import { TraceStore } from '../src/store/trace-store.js';

const EVENTS = Number(process.env.FAY_BENCH_STORE_EVENTS ?? 500_000);
const BATCH = 2000;
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 5);
const WINDOWS = 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'fay-store-bench-'));
const T0 = 1_796_600_000e9;

const rows = Array.from({ length: EVENTS }, (_, i) => ({ timeNs: T0 + i * 1000, row: { comm: `proc-${i % 50}`, pid: 1000 + (i % 977), path: `/srv/data/file-${i % 5000}.json`, ret: i % 7 === 0 ? -2 : 3 } }));

async function throughFay(round: number): Promise<number> {
  const store = await TraceStore.open(dir, `fay-${round}`);
  await store.create({ name: 'opens', query: 'syscall:openat | select comm, pid, args.path, ret', kind: 'events', retainMs: undefined });
  const started = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) await store.appendEvents('opens', 'host-0', rows.slice(i, i + BATCH));
  const seconds = (performance.now() - started) / 1000;
  store.close();
  return EVENTS / seconds;
}

async function appenderAlone(round: number): Promise<number> {
  const instance = await DuckDBInstance.create(join(dir, `plain-${round}.duckdb`));
  const db = await instance.connect();
  await db.run('CREATE TABLE events (name VARCHAR, host VARCHAR, time_ns BIGINT, row VARCHAR)');
  const started = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) {
    const appender = await db.createAppender('events');
    for (const { timeNs, row } of rows.slice(i, i + BATCH)) {
      appender.appendVarchar('opens');
      appender.appendVarchar('host-0');
      appender.appendBigInt(BigInt(timeNs));
      appender.appendVarchar(JSON.stringify(row));
      appender.endRow();
    }
    appender.flushSync();
    appender.closeSync();
  }
  const seconds = (performance.now() - started) / 1000;
  db.closeSync();
  instance.closeSync();
  return EVENTS / seconds;
}

/** Bytes on disk of a store holding only `fill`'s rows, checkpointed, less an empty one's. */
async function bytesOf(name: string, fill: (store: TraceStore) => Promise<void>): Promise<number> {
  const empty = await TraceStore.open(dir, `${name}-empty`);
  empty.close();
  const store = await TraceStore.open(dir, name);
  await fill(store);
  store.close();
  const size = (agent: string) => statSync(join(dir, `${agent}.duckdb`)).size;
  return size(name) - size(`${name}-empty`);
}

const fay: number[] = [];
const plain: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const order = Math.random() < 0.5 ? ['fay', 'plain'] : ['plain', 'fay'];
  for (const c of order) (c === 'fay' ? fay : plain).push(c === 'fay' ? await throughFay(round) : await appenderAlone(round));
  process.stderr.write(`round ${round + 1}/${ROUNDS}: Fay ${fay.at(-1)!.toFixed(0)}/s, appender alone ${plain.at(-1)!.toFixed(0)}/s\n`);
}
const ratio = median(fay.map((f, i) => f / plain[i]!));

const eventBytes = (await bytesOf('events', async (store) => {
  await store.create({ name: 'opens', query: 'q', kind: 'events', retainMs: undefined });
  for (let i = 0; i < rows.length; i += BATCH) await store.appendEvents('opens', 'host-0', rows.slice(i, i + BATCH));
})) / EVENTS;
const kinds = [createAggregate({ function: 'count', params: [] }), createAggregate({ function: 'sum', params: [] }), createAggregate({ function: 'quantiles', params: [0.5, 0.99] })];
const windowBytes = (await bytesOf('windows', async (store) => {
  await store.create({ name: 'calls', query: 'q', kind: 'windows', retainMs: undefined });
  for (let w = 0; w < WINDOWS; w++) {
    const table = new GroupTable(kinds);
    for (let g = 0; g < 100; g++) for (let i = 0; i < 20; i++) table.add([`proc-${g}`], [undefined, i * 1000 + g, 1000 + ((i * 7919 + w) % 100_000)], T0);
    await store.appendWindow('calls', { host: 'host-0', startNs: T0 + w * 1e9, endNs: T0 + (w + 1) * 1e9, table });
  }
})) / WINDOWS;
rmSync(dir, { recursive: true, force: true });

console.log(`events persisted, ${EVENTS} a round in batches of ${BATCH}, medians of ${ROUNDS} rounds`);
console.log(`DuckDB's appender alone, the same rows       ${median(plain).toFixed(0)} events/s  baseline`);
console.log(`through Fay's trace store                    ${median(fay).toFixed(0)} events/s  ${ratio.toFixed(2)}× the appender alone (target ≥ 0.5×)`);
console.log(`on disk: ${eventBytes.toFixed(1)} bytes a stored event (4 fields as JSON); ${(windowBytes / 1024).toFixed(1)} KiB a stored window of 100 groups with count, sum and quantiles states (${(windowBytes / 100).toFixed(0)} bytes a group)`);
console.log(JSON.stringify({ bench: 'store', events: EVENTS, rounds: ROUNDS, fay_events_per_s: median(fay), appender_events_per_s: median(plain), ratio, bytes_per_event: eventBytes, bytes_per_window: windowBytes }));
