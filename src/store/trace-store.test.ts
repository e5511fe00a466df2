import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import type { HistResult, QuantilesResult } from '../agg/aggregate.js';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { TraceStore } from './trace-store.js';

const dir = mkdtempSync(join(tmpdir(), 'fay-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const kinds = [createAggregate({ function: 'count', params: [] }), createAggregate({ function: 'sum', params: [] }), createAggregate({ function: 'hist', params: [] }), createAggregate({ function: 'quantiles', params: [0.5, 0.99] })];
const S = 1e9;
const T0 = 1_796_600_000 * S;

/** A workload's durations, known: host h's call i in second s took (h + 1) * 1000 + s * 10 + i ns. */
function duration(h: number, s: number, i: number): number {
  return (h + 1) * 1000 + s * 10 + i;
}

/** One host's 1 s windows: `calls` calls a second, keyed by comm. */
function windowsOf(h: number, seconds: number, calls: number) {
  return Array.from({ length: seconds }, (_, s) => {
    const table = new GroupTable(kinds);
    for (let i = 0; i < calls; i++) {
      const d = duration(h, s, i);
      table.add([i % 2 === 0 ? 'even' : 'odd'], [undefined, d, d, d], T0 + s * S);
    }
    return { host: `host-${h}`, startNs: T0 + s * S, endNs: T0 + (s + 1) * S, table };
  });
}

describe('the trace store: windows with mergeable states in an embedded DuckDB file', () => {
  it('re-aggregates stored 1 s windows into 10 s ones, exactly for counts, sums and histograms, within the bound for quantiles', async () => {
    const store = await TraceStore.open(dir, 'agent-a');
    try {
      await store.create({ name: 'calls', query: 'syscall:getppid | count(), sum(duration), hist(duration), quantiles(duration, 0.5, 0.99) by comm every 1s', kind: 'windows', retainMs: undefined });
      for (let h = 0; h < 3; h++) for (const w of windowsOf(h, 20, 50)) await store.appendWindow('calls', w);
      const tens = await store.windows('calls', kinds, { everyNs: 10 * S });
      assert.deepEqual(tens.map((w) => [w.host, (w.startNs - T0) / S, (w.endNs - T0) / S]), [0, 1, 2].flatMap((h) => [[`host-${h}`, 0, 10], [`host-${h}`, 10, 20]]));
      const merged = new GroupTable(kinds);
      for (const w of tens) merged.merge(w.table);
      const rows = merged.finalize().sort((a, b) => String(a.key[0]).localeCompare(String(b.key[0])));
      const all = [0, 1, 2].flatMap((h) => Array.from({ length: 20 }, (_, s) => Array.from({ length: 50 }, (_, i) => ({ d: duration(h, s, i), even: i % 2 === 0 }))).flat());
      for (const [row, even] of [[rows[0]!, true], [rows[1]!, false]] as const) {
        const mine = all.filter((x) => x.even === even).map((x) => x.d).sort((a, b) => a - b);
        assert.equal(row.values[0], mine.length, 'count');
        assert.equal(row.values[1], mine.reduce((a, b) => a + b, 0), 'sum');
        assert.equal((row.values[2] as HistResult).buckets.reduce((n, b) => n + b.count, 0), mine.length, 'every value in a bucket');
        const q = row.values[3] as QuantilesResult;
        for (const { p, value } of q.quantiles) {
          const exact = mine[Math.min(mine.length - 1, Math.floor(p * mine.length))]!;
          assert.ok(Math.abs(value! - exact) <= exact * q.relativeError + 1, `p${p}: ${value} against ${exact}`);
        }
      }
    } finally {
      store.close();
    }
  });

  it('keeps what it stored across a close, and says what it holds', async () => {
    const store = await TraceStore.open(dir, 'agent-a');
    try {
      const [log] = await store.list();
      assert.equal(log!.name, 'calls');
      assert.equal(log!.rows, 3 * 20 * 2, 'a row per host, second and group');
      assert.deepEqual([log!.firstNs, log!.lastNs], [T0, T0 + 20 * S]);
    } finally {
      store.close();
    }
  });

  it('keeps a window with no group as a span the host covered, apart from one it did not deliver', async () => {
    const store = await TraceStore.open(dir, 'agent-c');
    try {
      await store.create({ name: 'quiet', query: 'q', kind: 'windows', retainMs: undefined });
      const [first, , third] = windowsOf(0, 3, 2);
      await store.appendWindow('quiet', first!);
      await store.appendWindow('quiet', { host: 'host-0', startNs: T0 + S, endNs: T0 + 2 * S, table: new GroupTable(kinds) });
      await store.appendWindow('quiet', third!);
      const read = await store.windows('quiet', kinds);
      assert.deepEqual(read.map((w) => [(w.startNs - T0) / S, w.table.size]), [[0, 2], [1, 0], [2, 2]]);
    } finally {
      store.close();
    }
  });

  it('drops what its retention no longer keeps, log by log', async () => {
    const store = await TraceStore.open(dir, 'agent-b');
    try {
      await store.create({ name: 'short', query: 'q1', kind: 'windows', retainMs: 5000 });
      await store.create({ name: 'kept', query: 'q2', kind: 'windows', retainMs: undefined });
      for (const w of windowsOf(0, 10, 2)) {
        await store.appendWindow('short', w);
        await store.appendWindow('kept', w);
      }
      // At T0 + 12 s, windows that ended before T0 + 7 s go: seconds 0 to 5 (ending at 1 … 6 s).
      assert.equal(await store.enforceRetention(T0 + 12 * S), 6 * 2);
      const left = await store.windows('short', kinds);
      assert.deepEqual(left.map((w) => (w.startNs - T0) / S), [6, 7, 8, 9]);
      assert.equal((await store.windows('kept', kinds)).length, 10);
    } finally {
      store.close();
    }
  });

  it('exports a log as zstd Parquet by host and day, which DuckDB reads back to the same totals', async () => {
    const store = await TraceStore.open(dir, 'agent-a');
    const out = join(dir, 'export');
    try {
      await store.exportParquet('calls', out);
    } finally {
      store.close();
    }
    const reader = await DuckDBInstance.create(':memory:');
    const db = await reader.connect();
    const result = await db.runAndReadAll(
      `SELECT host, count(*), sum(CAST(json_extract(states, '$[0]') AS BIGINT)) FROM read_parquet('${out}/*/*/*.parquet', hive_partitioning = true) GROUP BY host ORDER BY host`,
    );
    assert.deepEqual(
      result.getRows().map((r) => [String(r[0]), Number(r[1]), Number(r[2])]),
      [0, 1, 2].map((h) => [`host-${h}`, 40, 20 * 50]),
    );
    db.closeSync();
    reader.closeSync();
  });

  it('refuses bad names, a name reused for another query, a log that is not there (listing those that are), and a file that is not a store', async () => {
    const store = await TraceStore.open(dir, 'agent-a');
    try {
      await assert.rejects(store.create({ name: '1bad name', query: 'q', kind: 'events', retainMs: undefined }), UsageError);
      await assert.rejects(store.create({ name: 'calls', query: 'another', kind: 'windows', retainMs: undefined }), /already holds another query/);
      await assert.rejects(store.windows('nope', kinds), (e: unknown) => e instanceof UsageError && /no stored log is named nope/.test(e.message) && /calls/.test(e.hint ?? ''));
      await store.create({ name: 'opens', query: 'syscall:openat | select comm', kind: 'events', retainMs: undefined });
      await store.appendEvents('opens', 'host-0', [{ timeNs: T0, row: { comm: 'a' } }, { timeNs: T0 + 1, row: { comm: 'b' } }]);
      assert.equal((await store.list()).find((l) => l.name === 'opens')!.rows, 2);
      // Not while a standing query kept here writes it: its agent would write it again.
      await store.stand({ id: 'q1', spec: JSON.stringify({ id: 'q1', options: { persist: { name: 'opens' } } }), createdNs: T0, untilNs: undefined });
      await assert.rejects(store.remove('opens'), (e: unknown) => e instanceof UsageError && /the standing query q1 writes opens/.test(e.message) && /fay stop q1 first/.test(e.hint ?? ''));
      await store.unstand('q1');
      await store.remove('opens');
      assert.equal((await store.list()).some((l) => l.name === 'opens'), false);
    } finally {
      store.close();
    }
    writeFileSync(join(dir, 'broken.duckdb'), 'not a database');
    await assert.rejects(TraceStore.open(dir, 'broken'), (e: unknown) => e instanceof EnvironmentError && /cannot open the trace store/.test(e.message));
  });
  it('opens cleanly after its writer was killed with SIGKILL, with every window written before the kill', async () => {
    const writer = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../testing/store-writer.ts', import.meta.url)), dir, 'killed'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let written = 0;
    const lines = createInterface({ input: writer.stdout });
    const closed = new Promise((resolve) => lines.on('close', resolve));
    await new Promise<void>((resolve) => {
      lines.on('line', (line) => {
        written = Number(line);
        if (written === 200) resolve();
      });
    });
    writer.kill('SIGKILL');
    // Every line it printed before it died is read (a window it said it wrote).
    await closed;
    const store = await TraceStore.open(dir, 'killed');
    try {
      const windows = await store.windows('ticks', [kinds[0]!]);
      // Every window it said it wrote is there, whole (10 groups of 1), and at most the one being written when it died more.
      assert.ok(windows.length >= written && windows.length <= written + 1, `${windows.length} windows after ${written} were written`);
      assert.ok(windows.every((w) => w.table.size === 10 && w.table.finalize().every((g) => g.values[0] === 1)), 'no window torn');
    } finally {
      store.close();
    }
  });
  it('holds the store under a byte bound: the oldest rows of every log go first', async () => {
    const store = await TraceStore.open(dir, 'bytes');
    try {
      await store.create({ name: 'big', query: 'q-big', kind: 'events', retainMs: undefined });
      const payload = 'x'.repeat(200);
      for (let batch = 0; batch < 60; batch++) {
        await store.appendEvents('big', 'h', Array.from({ length: 5000 }, (_, i) => ({ timeNs: T0 + (batch * 5000 + i) * 1e6, row: { payload, i: batch * 5000 + i } })));
      }
      const before = await store.usedBytes();
      const bound = Math.floor(before / 3);
      const removed = await store.enforceBytes(bound);
      assert.ok((await store.usedBytes()) <= bound, `${await store.usedBytes()} B used, bound ${bound} B`);
      assert.ok(removed > 0 && removed < 300_000);
      // What stays is the newest: the oldest rows went first.
      const [summary] = await store.list();
      assert.equal(summary!.rows, 300_000 - removed);
      assert.equal(summary!.lastNs, T0 + 299_999 * 1e6);
      assert.equal(summary!.firstNs, T0 + removed * 1e6);
    } finally {
      store.close();
    }
  });
});
