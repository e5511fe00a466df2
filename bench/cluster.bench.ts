/**
 * Cluster mode over a real nats-server, two figures side by side with their baselines:
 *
 * 1. Data reduction: `syscall:* | count() by comm, probe` on a syscall-heavy workload for
 *    10 s, bytes on the bus from its host, against every raw event shipped, run at the same time
 *    over the same workload: each event as a raw tracer ships it (its time, pid, tid, process name,
 *    call, return value and six argument words), and the grouping's two fields alone (the floor: a
 *    repetitive workload's identical rows gzip to almost nothing). Bytes per event for each.
 *    Target: ≥ 1000× fewer bytes than the first.
 * 2. Fan-out: N synthetic agents (real NATS connections in another process, generating
 *    1,000-group windows each second) for N = 10, 100, 500: time from starting the query to
 *    the first window covering every host, and whether the client's merge keeps up (groups
 *    arriving per second against its event-loop use). Targets at N = 500: first covered window
 *    under 1 s after the flush period; merge keeps up with 500 × 1,000 groups per second.
 */
import { spawn } from 'node:child_process';
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
const FANOUT = (process.env.FAY_BENCH_FANOUT ?? '10,100,500').split(',').map(Number);
const GROUPS = Number(process.env.FAY_BENCH_GROUPS ?? 1000);
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

// 2. Fan-out.
const AGENTS = fileURLToPath(new URL('./support/synthetic-agents.ts', import.meta.url));
console.log(`fan-out: synthetic agents, ${GROUPS} groups each per 1 s window`);
for (const n of FANOUT) {
  const child = spawn(process.execPath, ['--import', 'tsx', AGENTS, nats.url('agent'), String(n), String(GROUPS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => createInterface({ input: child.stdout }).on('line', (l) => l === 'ready' && resolve()));
  const periodMs = 1000;
  const started = performance.now();
  const run = client.run('syscall:getppid | count() by comm', { refreshMs: periodMs, hosts: ['synthetic-*'] });
  let firstCovered: number | undefined;
  let windows = 0;
  let elu: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  let measured: { seconds: number; utilization: number; groups: number } | undefined;
  let steadyStart = 0;
  const reading = drain(run, (m) => {
    if (m.kind !== 'result' || m.coverage?.reporting.length !== n) return;
    firstCovered ??= performance.now() - started;
    windows++;
    // Steady state: from the 2nd fully covered window to the 6th.
    if (windows === 2) {
      elu = performance.eventLoopUtilization();
      steadyStart = performance.now();
    }
    if (windows === 6 && elu) {
      const used = performance.eventLoopUtilization(elu);
      measured = { seconds: (performance.now() - steadyStart) / 1000, utilization: used.utilization, groups: 4 * n * GROUPS };
      void run.stop();
    }
  });
  const deadline = setTimeout(() => void run.stop(), 30_000);
  await reading;
  clearTimeout(deadline);
  child.stdin.end();
  await new Promise((resolve) => child.on('exit', resolve));
  const arriving = measured ? measured.groups / measured.seconds : 0;
  const capacity = measured ? arriving / Math.max(measured.utilization, 1e-6) : 0;
  console.log(
    `  N=${String(n).padStart(3)}: first fully covered window ${firstCovered === undefined ? 'never' : `${firstCovered.toFixed(0)} ms after start, ${(firstCovered - periodMs).toFixed(0)} ms after the flush period`}` +
      ` (target < 1000); merge: ${Math.round(arriving).toLocaleString('en')} groups/s arriving, client busy ${((measured?.utilization ?? 0) * 100).toFixed(1)}%` +
      ` → capacity ${Math.round(capacity).toLocaleString('en')} groups/s (${(capacity / (n * GROUPS)).toFixed(1)}× what ${n} × ${GROUPS}/s needs)`,
  );
  console.log(JSON.stringify({ bench: 'cluster-fanout', agents: n, first_covered_ms: firstCovered, after_period_ms: firstCovered === undefined ? null : firstCovered - periodMs, arriving_groups_per_s: arriving, client_utilization: measured?.utilization, capacity_groups_per_s: capacity }));
}

await client.close();
await nats.stop();
