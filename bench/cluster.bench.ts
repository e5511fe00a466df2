/**
 * Cluster mode over a real nats-server, two figures side by side with their baselines:
 *
 * 1. Data reduction: `syscall:* | count() by comm, probe` on a syscall-heavy workload for
 *    10 s, bytes on the bus from its host, against every raw event shipped, run at the same time
 *    over the same workload: each event as a raw tracer ships it (its time, pid, tid, process name,
 *    call, return value and six argument words), and the grouping's two fields alone (the floor: a
 *    repetitive workload's identical rows gzip to almost nothing). Bytes per event for each.
 *    Target: ≥ 1000× fewer bytes than the first.
 * 2. Fan-out and the merge tree (issue 25): N synthetic agents (real NATS connections in another
 *    process, each sending a 100-group window a second) for N = 500, 2,000 and 10,000, each
 *    straight to the client and through AGGREGATORS `fay aggregator` processes, in one run: the
 *    first fully covered window after its period, the client's share of a core (its event loop's
 *    use), each aggregator's (its CPU time), and the bytes into the client. Targets at 10,000
 *    through the tree: the first covered window within 2 s of its period, and the client no busier
 *    than at 500 without the tree; at 500, the tree's latency at most 1.2× the direct path's.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NatsBus } from '../src/bus/nats.js';
import { SUBJECTS } from '../src/bus/protocol.js';
import { ClusterClient } from '../src/cluster/cluster-client.js';
import type { QueryMessage } from '../src/cluster/cluster-stage.js';
import type { QueryHandle } from '../src/cluster/embedded.js';
import { localRegistry } from '../src/probes/default-registry.js';
import { TestAgent, TestCgroup } from '../src/testing/cluster.js';
import { NatsServer } from '../src/testing/nats-server.js';

const SECONDS = Number(process.env.FAY_BENCH_CLUSTER_SECONDS ?? 10);
const FANOUT = (process.env.FAY_BENCH_FANOUT ?? '500,2000,10000').split(',').map(Number);
const GROUPS = Number(process.env.FAY_BENCH_GROUPS ?? 100);
const AGGREGATORS = Number(process.env.FAY_BENCH_AGGREGATORS ?? 4);
/**
 * The raw baselines, shipped at the same time over the same events: what a raw tracer (strace,
 * perf trace) ships for each, and the bare minimum of the grouping's two fields, whose runs of
 * identical rows gzip to almost nothing on a workload this repetitive.
 */
const RAW_QUERIES = ['syscall:* | select time, pid, tid, comm, probe, ret, args[0], args[1], args[2], args[3], args[4], args[5]', 'syscall:* | select comm, probe'];
const perEvent = (bytes: number, events: number) => (bytes / Math.max(events, 1)).toFixed(bytes / Math.max(events, 1) < 10 ? 2 : 1);

const nats = await NatsServer.start();
const client = new ClusterClient(await NatsBus.connect({ url: nats.url('client'), name: 'bench client' }), localRegistry());

/** Bytes of every message a query's hosts send it. */
function meter(run: { id: string }): { bytes: number; messages: number } {
  const m = { bytes: 0, messages: 0 };
  client.bus.subscribe(SUBJECTS.resultsOf(run.id), (data) => {
    m.bytes += data.length;
    m.messages++;
  });
  return m;
}

async function drain(run: QueryHandle, on: (m: QueryMessage) => void = () => undefined): Promise<void> {
  for await (const m of run) on(m);
}

// 1. Data reduction.
{
  const cgroup = new TestCgroup('bench');
  const agent = await TestAgent.start('bench-host', nats.url('agent'), { cgroup: cgroup.path });
  const raws = RAW_QUERIES.map((query) => ({ query, run: client.run(query, { hosts: ['bench-host'], limits: { maxEventsPerSecond: 10_000_000 } }), shipped: 0, dropped: 0 }));
  const aggregate = client.run('syscall:* | count() by comm, probe', { hosts: ['bench-host'] });
  const aggregateBytes = meter(aggregate);
  const rawBytes = raws.map((r) => meter(r.run));
  let counted = 0;
  const reading = Promise.all([
    drain(aggregate, (m) => {
      if (m.kind === 'result' && m.complete) counted = m.rows.reduce((n, r) => n + Number(r[2]), 0);
    }),
    ...raws.map((r) =>
      drain(r.run, (m) => {
        if (m.kind === 'events') r.shipped += m.rows.length;
        if (m.kind === 'notice') r.dropped += Number(/dropped (\d+) events?|(\d+) events? .*dropped/.exec(m.message)?.slice(1).find(Boolean) ?? 0);
      }),
    ),
  ]);
  await Promise.all([aggregate.attached, ...raws.map((r) => r.run.attached)]);
  const until = Date.now() + SECONDS * 1000;
  while (Date.now() < until) {
    await cgroup.run('fay-bench-wl', 'getppid', 5000);
    await cgroup.run('fay-bench-wl', 'open', '/etc/hostname', 500);
    await cgroup.run('fay-bench-wl', 'read', 4096, 4096, 65536);
  }
  await Promise.all([aggregate.stop(), ...raws.map((r) => r.run.stop())]);
  await reading;
  await agent.stop();
  cgroup.remove();
  console.log(`data reduction over ${SECONDS} s of a syscall-heavy workload (one host):`);
  console.log(`  events counted by the aggregate query        ${counted.toLocaleString('en')}`);
  console.log(`  count() by comm, probe: ${aggregateBytes.bytes.toLocaleString('en')} bytes on the bus in ${aggregateBytes.messages} messages, ${perEvent(aggregateBytes.bytes, counted)} bytes an event`);
  const figures = raws.map((r, i) => {
    const bytes = rawBytes[i]!;
    const ratio = bytes.bytes / aggregateBytes.bytes;
    // Events the raw query lost where they fired (perf buffer full) would have cost bytes too.
    const fullRatio = (bytes.bytes * (counted / Math.max(r.shipped, 1))) / aggregateBytes.bytes;
    const lost = r.dropped > 0 ? `, ${r.dropped.toLocaleString('en')} dropped where they fired` : '';
    console.log(`  ${r.query.replace('syscall:* | ', '')}: ${bytes.bytes.toLocaleString('en')} bytes in ${bytes.messages} messages, ${perEvent(bytes.bytes, r.shipped)} bytes an event (${r.shipped.toLocaleString('en')} events${lost})`);
    console.log(`    → ${ratio.toFixed(0)}× fewer bytes for the aggregate; ${fullRatio.toFixed(0)}× counting the raw events lost on the way`);
    return { query: r.query, shipped: r.shipped, dropped: r.dropped, raw_bytes: bytes.bytes, raw_bytes_per_event: bytes.bytes / Math.max(r.shipped, 1), ratio, ratio_all_events: fullRatio };
  });
  console.log('  (target ≥ 1000× against events as a raw tracer ships them; all gzipped on the bus where that helps, raw events batched 2,000 to a message)');
  console.log(JSON.stringify({ bench: 'cluster-data-reduction', seconds: SECONDS, events: counted, aggregate_bytes: aggregateBytes.bytes, aggregate_bytes_per_event: aggregateBytes.bytes / Math.max(counted, 1), raw: figures }));
}

// 2. Fan-out, with and without the merge tree.
const AGENTS = fileURLToPath(new URL('./support/synthetic-agents.ts', import.meta.url));
console.log(`fan-out: synthetic agents on real NATS connections, ${GROUPS} groups each per 1 s window; straight to the client, and through ${AGGREGATORS} aggregators (fay aggregator processes)`);

/** CPU seconds a process has used (user and system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface FanOut {
  firstCoveredMs: number | undefined;
  /** Over the fully covered windows: the median time from the end of a window (its last host's flush) to its result here. */
  delayMs: number | undefined;
  /** The client's CPU time over the steady span's wall time (this process runs the client alone). */
  clientBusy: number | undefined;
  /** Its event loop's use over the same span: on a saturated machine, time spent waiting for a core counts as busy. */
  clientLoop: number | undefined;
  aggregatorsBusy: number[];
  /** The NATS server's and the synthetic agents' shares of a core: whether the machine itself keeps up. */
  serverBusy: number | undefined;
  agentsBusy: number | undefined;
  bytesPerSecond: number | undefined;
  messagesPerSecond: number | undefined;
}

async function fanOut(n: number, tree: boolean, agentsPid: number): Promise<FanOut> {
  const aggregators = tree ? await Promise.all(Array.from({ length: AGGREGATORS }, (_, k) => TestAgent.startAggregator(`bench-agg-${k}`, nats.url('aggregator'), { heartbeat: '500ms' }))) : [];
  if (tree) {
    await new Promise<void>((resolve) => {
      const heard = () => {
        if (client.aggregators().length < AGGREGATORS) return;
        client.aggregatorListeners.delete(heard);
        resolve();
      };
      client.aggregatorListeners.add(heard);
      heard();
    });
  }
  const periodMs = 1000;
  const started = performance.now();
  const run = client.run('syscall:getppid | count() by comm', { refreshMs: periodMs, hosts: ['synthetic-*'], expectAgents: n, tree, answerTimeoutMs: 120_000 });
  const delays: number[] = [];
  const result: FanOut = { firstCoveredMs: undefined, delayMs: undefined, clientBusy: undefined, clientLoop: undefined, aggregatorsBusy: [], serverBusy: undefined, agentsBusy: undefined, bytesPerSecond: undefined, messagesPerSecond: undefined };
  // The machine's own load over the first 5 s of the query: enough to see whether the server and the agents keep up.
  const machineFrom = { atMs: performance.now(), server: cpuSeconds(nats.pid!), agents: cpuSeconds(agentsPid) };
  const machine = setTimeout(() => {
    const seconds = (performance.now() - machineFrom.atMs) / 1000;
    result.serverBusy = (cpuSeconds(nats.pid!) - machineFrom.server) / seconds;
    result.agentsBusy = (cpuSeconds(agentsPid) - machineFrom.agents) / seconds;
  }, 5000);
  let windows = 0;
  let steady: { elu: ReturnType<typeof performance.eventLoopUtilization>; own: NodeJS.CpuUsage; atMs: number; cpu: number[]; stats: ReturnType<NatsBus['stats']> } | undefined;
  const bus = client.bus as NatsBus;
  const reading = drain(run, (m) => {
    if (m.kind !== 'result' || m.coverage?.reporting.length !== n) return;
    result.firstCoveredMs ??= performance.now() - started - periodMs;
    delays.push(Date.now() - m.endNs / 1e6);
    windows++;
    // Steady state: from the 2nd fully covered window to the 6th.
    if (windows === 2) steady = { elu: performance.eventLoopUtilization(), own: process.cpuUsage(), atMs: performance.now(), cpu: aggregators.map((a) => cpuSeconds(a.child.pid!)), stats: bus.stats() };
    if (windows === 6 && steady) {
      const seconds = (performance.now() - steady.atMs) / 1000;
      const stats = bus.stats();
      const own = process.cpuUsage(steady.own);
      result.clientBusy = (own.user + own.system) / 1e6 / seconds;
      result.clientLoop = performance.eventLoopUtilization(steady.elu).utilization;
      result.aggregatorsBusy = aggregators.map((a, k) => (cpuSeconds(a.child.pid!) - steady!.cpu[k]!) / seconds);
      result.bytesPerSecond = (stats.inBytes - steady.stats.inBytes) / seconds;
      result.messagesPerSecond = (stats.inMessages - steady.stats.inMessages) / seconds;
      void run.stop();
    }
  });
  const deadline = setTimeout(() => void run.stop(), 40_000);
  await reading;
  clearTimeout(deadline);
  clearTimeout(machine);
  if (delays.length > 0) result.delayMs = [...delays].sort((a, b) => a - b)[Math.floor(delays.length / 2)];
  for (const a of aggregators) await a.stop();
  return result;
}

const share = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const ms = (x: number | undefined) => (x === undefined ? 'never (40 s)' : `${x.toFixed(0)} ms`);
const figures: Record<string, FanOut> = {};
for (const n of FANOUT) {
  const child = spawn(process.execPath, ['--import', 'tsx', AGENTS, nats.url('agent'), String(n), String(GROUPS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => createInterface({ input: child.stdout }).on('line', (l) => l === 'ready' && resolve()));
  for (const tree of [false, true]) {
    const f = (figures[`${n}${tree ? ' tree' : ''}`] = await fanOut(n, tree, child.pid!));
    console.log(
      `  N=${String(n).padStart(5)} ${tree ? `through ${AGGREGATORS} aggregators` : 'straight to the client'}: first fully covered window ${ms(f.firstCoveredMs)} after its period, covered windows ${ms(f.delayMs)} after their end (median);` +
        ` client busy ${share(f.clientBusy)}; ${f.bytesPerSecond === undefined ? '-' : Math.round(f.bytesPerSecond).toLocaleString('en')} bytes/s into the client in ${f.messagesPerSecond === undefined ? '-' : Math.round(f.messagesPerSecond).toLocaleString('en')} messages/s` +
        (tree ? `; aggregators busy ${f.aggregatorsBusy.map(share).join(', ')}` : '') +
        `; the NATS server ${share(f.serverBusy)}, the agents' process ${share(f.agentsBusy)} (2 cores in all)`,
    );
    console.log(JSON.stringify({ bench: 'cluster-fanout', agents: n, tree, aggregators: tree ? AGGREGATORS : 0, groups: GROUPS, after_period_ms: f.firstCoveredMs ?? null, delay_ms: f.delayMs ?? null, client_busy: f.clientBusy ?? null, client_event_loop: f.clientLoop ?? null, aggregators_busy: f.aggregatorsBusy, server_busy: f.serverBusy ?? null, agents_busy: f.agentsBusy ?? null, client_bytes_per_s: f.bytesPerSecond ?? null, client_messages_per_s: f.messagesPerSecond ?? null }));
  }
  child.stdin.end();
  await new Promise((resolve) => child.on('exit', resolve));
}
const base = figures[String(FANOUT[0])];
const largest = FANOUT[FANOUT.length - 1]!;
const top = figures[`${largest} tree`];
const small = figures[`${FANOUT[0]} tree`];
if (base && top && small) {
  console.log(
    `merge tree: at N=${largest} the first covered window ${ms(top.firstCoveredMs)} after its period (target < 2000 ms), client busy ${share(top.clientBusy)} against ${share(base.clientBusy)} at N=${FANOUT[0]} straight (target: no more);` +
      ` at N=${FANOUT[0]} the tree's latency ${small.firstCoveredMs !== undefined && base.firstCoveredMs !== undefined ? `${(small.firstCoveredMs / base.firstCoveredMs).toFixed(2)}×` : '-'} the direct path's for the first covered window, ${small.delayMs !== undefined && base.delayMs !== undefined ? `${(small.delayMs / base.delayMs).toFixed(2)}×` : '-'} for every covered window's delay (target ≤ 1.2×)`,
  );
}

await client.close();
await nats.stop();
