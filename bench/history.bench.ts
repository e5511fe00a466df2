/**
 * A history query (issue 20), side by side in one run: `stored:opens | count() by comm every 1m`
 * over EVENTS stored events (a day of them, 50 commands) through Fay (the embedded cluster: the
 * agent plans the scan, DuckDB aggregates it, the machine and cluster stages line the windows up
 * and finalize them) against the same SQL typed into DuckDB directly on the same file. ROUNDS
 * rounds, alternating which goes first; medians. Target: Fay at most 1.5× the SQL alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Agent } from '../src/agent/agent.js';
import { EmbeddedCluster } from '../src/cluster/embedded.js';
import { localRegistry } from '../src/probes/default-registry.js';
import { storedSchemaOf } from '../src/store/schema.js';
import { TraceStore } from '../src/store/trace-store.js';
import { planStages } from '../src/plan/planner.js';
import { compileQuery } from '../src/query/compile.js';

const EVENTS = Number(process.env.FAY_BENCH_HISTORY_EVENTS ?? 10_000_000);
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 5);
const BATCH = 10_000;
const HOST = 'bench-host';
const DAY_NS = 86_400e9;
const T0 = Math.floor(1_796_600_000e9 / DAY_NS) * DAY_NS;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'fay-history-bench-'));

const QUERY = 'syscall:openat | select comm, pid, ret';
const HISTORY = 'stored:opens | count() by comm every 1m';
const SQL = `SELECT (time_ns // 60000000000) * 60000000000 AS minute, row->>'$.comm' AS comm, count(*) FROM events WHERE name = 'opens' GROUP BY ALL ORDER BY 1`;

process.stderr.write(`storing ${EVENTS} events…\n`);
{
  const store = await TraceStore.open(dir, HOST);
  await store.create({ name: 'opens', query: QUERY, kind: 'events', retainMs: undefined, schema: storedSchemaOf(planStages(compileQuery(QUERY, localRegistry()))) });
  for (let i = 0; i < EVENTS; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, EVENTS - i) }, (_, j) => {
      const n = i + j;
      return { timeNs: T0 + Math.floor((n * DAY_NS) / EVENTS), row: { comm: `proc-${n % 50}`, pid: 1000 + (n % 977), ret: n % 7 === 0 ? -2 : 3 } };
    });
    await store.appendEvents('opens', HOST, batch);
  }
  store.close();
}

/** Through Fay: planned, scanned, lined up and finalized, every result read. Returns seconds and the rows counted. */
async function throughFay(): Promise<{ seconds: number; total: number }> {
  const store = await TraceStore.open(dir, HOST);
  const started = performance.now();
  const cluster = new EmbeddedCluster(new Agent(localRegistry(), HOST), { store: () => Promise.resolve(store) });
  let total = 0;
  for await (const m of await cluster.start(HISTORY)) if (m.kind === 'result' && m.complete) for (const r of m.rows) total += r[1] as number;
  const seconds = (performance.now() - started) / 1000;
  store.close();
  return { seconds, total };
}

/** The same SQL typed into DuckDB directly, every row read. */
async function sqlAlone(): Promise<{ seconds: number; total: number }> {
  const instance = await DuckDBInstance.create(join(dir, `${HOST}.duckdb`));
  const db = await instance.connect();
  const started = performance.now();
  // Read as columns: DuckDB's quickest way to hand a result to JavaScript.
  const counts = (await db.runAndReadAll(SQL)).getColumns()[2]!;
  const seconds = (performance.now() - started) / 1000;
  db.closeSync();
  instance.closeSync();
  return { seconds, total: counts.reduce<number>((n, c) => n + Number(c), 0) };
}

const fay: number[] = [];
const plain: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? ['fay', 'sql'] : ['sql', 'fay'];
  for (const c of order) {
    const { seconds, total } = c === 'fay' ? await throughFay() : await sqlAlone();
    if (total !== EVENTS) throw new Error(`${c} counted ${total} events of ${EVENTS}`);
    (c === 'fay' ? fay : plain).push(seconds);
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS}: Fay ${fay.at(-1)!.toFixed(3)} s, SQL alone ${plain.at(-1)!.toFixed(3)} s\n`);
}
rmSync(dir, { recursive: true, force: true });
const ratio = median(fay.map((f, i) => f / plain[i]!));
console.log(`history query, count by key every 1m over ${EVENTS} stored events (a day, 50 keys: 72,000 groups), medians of ${ROUNDS} rounds`);
console.log(`the same SQL typed into DuckDB directly   ${median(plain).toFixed(3)} s  baseline`);
console.log(`through Fay (${HISTORY})   ${median(fay).toFixed(3)} s  ${ratio.toFixed(2)}× the SQL alone (target ≤ 1.5×)`);
console.log(JSON.stringify({ bench: 'history', events: EVENTS, rounds: ROUNDS, fay_s: median(fay), sql_s: median(plain), ratio }));
