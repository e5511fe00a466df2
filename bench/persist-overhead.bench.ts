/**
 * What persisting costs the traced program (issue 20), side by side in one run: a getppid() loop
 * pinned to one CPU while the same live query runs with its windows or events persisted into a
 * trace store (`--persist`) and without. Two queries: `count() by comm every 1s` (a window a
 * second goes to the store) and `select pid, comm` (every event goes to the store). Paired
 * rounds: each measures the untraced loop before and after its traced cases (in random order);
 * medians of added ns per call. Target: no measurable change: persistence on minus off within
 * the gap between two runs of the same query without it in the same round.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { localCluster } from '../src/frontend/local-cluster.js';
import { TraceStore } from '../src/store/trace-store.js';
import { workloadBinary } from '../src/testing/workload.js';

const CALLS = Number(process.env.FAY_BENCH_CALLS ?? 5_000_000);
/** The events query ships every call: fewer of them, so that a round stays short. */
const EVENT_CALLS = Number(process.env.FAY_BENCH_EVENT_CALLS ?? 1_000_000);
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 7);
const LOOP_CPU = String(availableParallelism() - 1);
const COMM = 'fay-bench';
const workload = workloadBinary();
const dir = mkdtempSync(join(tmpdir(), 'fay-persist-bench-'));
const store = await TraceStore.open(dir, 'bench');
const cluster = localCluster('bench', { store: () => Promise.resolve(store) });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** ns per getppid() call, measured by the workload itself around its loop. */
function loop(calls: number): number {
  const result = spawnSync('taskset', ['-c', LOOP_CPU, workload, COMM, 'bench', String(calls)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`the workload failed: ${result.stderr}`);
  return Number(result.stdout.trim().split('\n').pop());
}

let logs = 0;
/** Runs the loop while a query runs, persisted into a fresh log or not; checks the log holds what the live answer saw. */
async function underFay(query: string, calls: number, persist: boolean): Promise<number> {
  const name = `bench-${logs++}`;
  const run = cluster.run(query, persist ? { persist: { name } } : {});
  await run.attached;
  const ns = loop(calls);
  await run.stop();
  let seen = 0;
  for await (const m of run) {
    if (m.kind === 'events') seen += m.rows.filter((r) => r[m.columns.indexOf('comm')] === COMM).length;
  }
  if (persist && query.includes('select')) {
    const stored = (await store.list()).find((l) => l.name === name)?.rows ?? 0;
    if (stored < seen) throw new Error(`the log ${name} holds ${stored} events; the live answer had ${seen} of the workload's alone`);
  }
  return ns;
}

const COUNT = 'syscall:getppid | count() by comm every 1s';
const EVENTS = `syscall:getppid | where comm == "${COMM}" | select pid, comm`;
/** Each query without persistence twice: the gap between those two is what "measurable" is measured against. */
const cases = {
  countOff: () => underFay(COUNT, CALLS, false),
  countOffAgain: () => underFay(COUNT, CALLS, false),
  countOn: () => underFay(COUNT, CALLS, true),
  eventsOff: () => underFay(EVENTS, EVENT_CALLS, false),
  eventsOffAgain: () => underFay(EVENTS, EVENT_CALLS, false),
  eventsOn: () => underFay(EVENTS, EVENT_CALLS, true),
};
type Case = keyof typeof cases;
const added = Object.fromEntries(Object.keys(cases).map((c) => [c, [] as number[]])) as Record<Case, number[]>;
for (let round = 0; round < ROUNDS; round++) {
  const before = loop(CALLS);
  const order = (Object.keys(cases) as Case[]).sort(() => Math.random() - 0.5);
  const times = {} as Record<Case, number>;
  for (const c of order) times[c] = await cases[c]();
  const untraced = (before + loop(CALLS)) / 2;
  for (const c of order) added[c].push(times[c] - untraced);
  process.stderr.write(`round ${round + 1}/${ROUNDS}: ${order.map((c) => `${c} +${added[c].at(-1)!.toFixed(1)}`).join(', ')}\n`);
}
store.close();
rmSync(dir, { recursive: true, force: true });

console.log(`getppid() on CPU ${LOOP_CPU} under a live query, persisted and not; added ns per call, medians of ${ROUNDS} paired rounds`);
const figures: Record<string, number> = {};
for (const [label, query] of [
  [`count() by comm every 1s (${CALLS.toLocaleString('en')} calls)`, 'count'],
  [`select pid, comm (${EVENT_CALLS.toLocaleString('en')} calls)`, 'events'],
] as const) {
  const off = added[`${query}Off`];
  const again = added[`${query}OffAgain`];
  const on = added[`${query}On`];
  // Paired by round, so that a round's drift cancels: on against the mean of the two offs, and the offs against each other.
  const change = median(on.map((x, i) => x - (off[i]! + again[i]!) / 2));
  const noise = median(off.map((x, i) => Math.abs(x - again[i]!)));
  const base = median(off.map((x, i) => (x + again[i]!) / 2));
  Object.assign(figures, { [`${query}_off_ns`]: base, [`${query}_on_ns`]: base + change, [`${query}_on_minus_off_ns`]: change, [`${query}_off_gap_ns`]: noise });
  console.log(
    `${label}: persistence off +${base.toFixed(1)} ns (baseline), on +${(base + change).toFixed(1)} ns (the off baseline plus the paired change), ${((base + change) / base).toFixed(2)}×; ` +
      `on − off ${change.toFixed(1)} ns, two runs without it differ by ${noise.toFixed(1)} ns: ${Math.abs(change) <= noise ? 'not measurable' : 'measurable'} (target: not measurable)`,
  );
}
console.log(JSON.stringify({ bench: 'persist-overhead', calls: CALLS, event_calls: EVENT_CALLS, rounds: ROUNDS, ...figures }));
