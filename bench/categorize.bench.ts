/**
 * The categorize stage (issue 21), side by side in one run: one window of `count() by host, probe`
 * from HOSTS hosts × CALLS system calls (synthetic counts: five behaviours, each host a noisy copy
 * of one, its groups in an order of its own), through the real cluster stage.
 *
 *  - The merge (baseline): each host's window message as it comes off the bus (gzipped, as over
 *    NATS) read and checked, its table decoded and merged into the period, with the functions
 *    ClusterRun and the period aligner use (receiveFromHost, GroupTable.decode, mergeWindow).
 *  - Categorising: the merged period handed to the ClusterStage of the categorize query, until it
 *    has emitted the window's categories (vectors, k chosen among 2–8, k-means++, features).
 *  - For reference: the same period handed to the ClusterStage of the plain counting query, until
 *    it has emitted its HOSTS × CALLS rows.
 *
 * ROUNDS windows after WARMUP; medians. The garbage of each phase is collected (and swept: V8
 * sweeps on another thread after a forced collection, and a phase timed meanwhile ran 10–20 ms
 * instead of 7–11) before the next is timed (run with --expose-gc), so that none is charged
 * another's (FAY_BENCH_GC=0: not collected, each phase then pays for the collections it happens
 * to trigger). Target: categorising under
 * 10% of the window's merge time, and under 100 ms.
 */
import { GroupTable } from '../src/agg/group-table.js';
import { createAggregate } from '../src/agg/registry.js';
import { AgentMessage, PROTOCOL_VERSION, receiveFromHost, SUBJECTS, writeMessage } from '../src/bus/protocol.js';
import { ClusterStage, type QueryMessage } from '../src/cluster/cluster-stage.js';
import { emptyPeriod, mergeWindow, type MergingPeriod } from '../src/cluster/period-aligner.js';
import { prng } from '../src/prng.js';
import { planStages } from '../src/plan/planner.js';
import { compileQuery } from '../src/query/compile.js';
import { fixtureRegistry } from '../src/testing/catalog-fixture.js';

const HOSTS = Number(process.env.FAY_BENCH_HOSTS ?? 500);
const CALLS = Number(process.env.FAY_BENCH_CALLS_KINDS ?? 300);
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 9);
const WARMUP = 5;
const BEHAVIOURS = 5;
const S = 1e9;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** After a forced collection V8 sweeps on another thread: time no phase while it still does (it doubled the categorize figure's spread). */
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SETTLE_MS = 100;
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) throw new Error('run with node --expose-gc (npm run bench does)');

const planOf = (query: string) => planStages(compileQuery(query, fixtureRegistry()));
const categorizing = planOf('syscall:* | count() by host, probe every 10s | categorize host by probe');
const counting = planOf('syscall:* | count() by host, probe every 10s');
if (categorizing.cluster.output.kind !== 'Aggregate') throw new Error('an aggregate plan');
const kinds = categorizing.cluster.output.aggregates.map(createAggregate);

/** Each behaviour: a few calls it makes a lot of, the rest a little. */
const random = prng(7);
const calls = Array.from({ length: CALLS }, (_, i) => `syscall:call_${String(i).padStart(3, '0')}`);
const behaviours = Array.from({ length: BEHAVIOURS }, () => calls.map(() => (random() < 0.05 ? 1000 + random() * 20_000 : random() * 50)));
const hostName = (h: number) => `host-${String(h).padStart(4, '0')}`;

/**
 * One window's messages as the hosts send them: gzipped protocol messages, each table a noisy copy
 * of the host's behaviour, its groups in an order of its own (as the native backend reads them from
 * a kernel hash map, whose order follows a hash seeded at random per map; bpftrace's follow the counts).
 */
function windowMessages(window: number): Uint8Array[] {
  const noise = prng(100 + window);
  return Array.from({ length: HOSTS }, (_, h) => {
    const table = new GroupTable(kinds);
    const behaviour = behaviours[h % BEHAVIOURS]!;
    const order = calls.map((_, c) => c);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(noise() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const c of order) {
      const n = Math.round(behaviour[c]! * (0.8 + 0.4 * noise()));
      if (n > 0) table.mergeGroup([hostName(h), calls[c]!], [kinds[0]!.decode(n)]);
    }
    return writeMessage({
      v: PROTOCOL_VERSION, id: 'bench', host: hostName(h), incarnation: 'a.1', kind: 'window',
      seq: window, seqEnd: window, part: 0, parts: 1, startNs: window * 10 * S, endNs: (window + 1) * 10 * S, droppedEvents: 0, uncountedEvents: 0,
      table: table.encode(),
    });
  });
}

/** The period the hosts' messages make, as ClusterRun and the aligner make it. */
function merge(messages: readonly Uint8Array[]): MergingPeriod {
  const period: MergingPeriod = emptyPeriod(new GroupTable(kinds, { maxGroups: HOSTS * CALLS }), Infinity, 0);
  messages.forEach((data, h) => {
    const message = receiveFromHost(AgentMessage, data, SUBJECTS.windows('bench', hostName(h)), () => undefined);
    if (message?.kind !== 'window') throw new Error('a window message');
    mergeWindow(period, { ...message, source: message.host, hosts: [message.host], table: GroupTable.decode(kinds, message.table, { maxGroups: HOSTS * CALLS }) });
  });
  return period;
}

/** A function's result and how long it took (ms), the garbage before it collected and swept. */
async function timed<T>(run: () => T): Promise<{ value: T; ms: number }> {
  if (process.env.FAY_BENCH_GC !== '0') {
    collect!();
    await settle(SETTLE_MS);
  }
  const started = performance.now();
  const value = run();
  return { value, ms: performance.now() - started };
}

/** Hands a period to a cluster stage; the time until it has emitted the window's result. */
function emit(stage: ClusterStage, period: MergingPeriod, hosts: string[]): number {
  const started = performance.now();
  stage.period({ ...period, hosts }, { expected: hosts, reporting: hosts, late: [], missing: [] });
  return performance.now() - started;
}

const timings = { merge: [] as number[], categorize: [] as number[], rows: [] as number[] };
const out: QueryMessage[] = [];
const categorize = new ClusterStage(categorizing, 10 * S, HOSTS * CALLS, (m) => out.push(m), () => undefined);
const plain = new ClusterStage(counting, 10 * S, HOSTS * CALLS, () => undefined, () => undefined);
const hosts = Array.from({ length: HOSTS }, (_, h) => hostName(h));
let categories = 0;
for (let round = -WARMUP; round < ROUNDS; round++) {
  const messages = windowMessages(round + WARMUP);
  const merged = await timed(() => merge(messages));
  out.length = 0;
  const categorised = await timed(() => emit(categorize, merged.value, hosts));
  const result = out.find((m) => m.kind === 'result');
  if (result?.kind !== 'result' || result.rows.length !== HOSTS) throw new Error(`categorize gave ${result?.kind === 'result' ? result.rows.length : 'no'} rows`);
  categories = new Set(result.rows.map((r) => r[1])).size;
  const rows = await timed(() => emit(plain, merged.value, hosts));
  if (round < 0) continue; // warm-up windows
  timings.merge.push(merged.ms);
  timings.categorize.push(categorised.ms);
  timings.rows.push(rows.ms);
  process.stderr.write(`window ${round + 1}/${ROUNDS}: merge ${merged.ms.toFixed(1)} ms, categorize ${categorised.ms.toFixed(1)} ms (${categories} categories), rows ${rows.ms.toFixed(1)} ms\n`);
}
const ratio = median(timings.categorize.map((c, i) => c / timings.merge[i]!));
const pct = (r: number) => `${(r * 100).toFixed(1)}%`;
console.log(`one window of count() by host, probe: ${HOSTS} hosts × ${CALLS} calls (${(HOSTS * CALLS).toLocaleString('en')} groups), ${BEHAVIOURS} behaviours; medians of ${ROUNDS} windows after ${WARMUP}`);
console.log(`merging the window (read every host's message, decode, merge)   ${median(timings.merge).toFixed(1)} ms  baseline`);
console.log(`categorize host by probe at the cluster stage (${categories} categories)   ${median(timings.categorize).toFixed(1)} ms  ${pct(ratio)} of the merge (target < 10%, and < 100 ms)`);
console.log(`for reference: the counting query's ${(HOSTS * CALLS).toLocaleString('en')} rows at the cluster stage   ${median(timings.rows).toFixed(1)} ms`);
console.log(JSON.stringify({ bench: 'categorize', hosts: HOSTS, calls: CALLS, rounds: ROUNDS, merge_ms: median(timings.merge), categorize_ms: median(timings.categorize), rows_ms: median(timings.rows), ratio, categories }));
