import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsBus } from '../bus/nats.js';
import { SUBJECTS } from '../bus/protocol.js';
import { TestAgent } from '../testing/cluster.js';
import { NatsServer } from '../testing/nats-server.js';
import { runFay } from '../testing/cli.js';
import { SyntheticAgent } from '../testing/synthetic-agent.js';
import { GroupTable } from '../agg/group-table.js';
import type { QuantilesResult } from '../agg/aggregate.js';
import { QUANTILE_RELATIVE_ERROR } from '../agg/ddsketch.js';
import { createAggregate } from '../agg/registry.js';
import { localRegistry } from '../probes/default-registry.js';
import { ClusterClient } from './cluster-client.js';
import type { EndMessage, QueryMessage, ResultMessage } from './cluster-stage.js';
import { treeOf } from './merge-tree.js';

/**
 * The merge tree on a real nats-server: 30 synthetic agents (real connections speaking the agents'
 * protocol, their windows generated: host i counts (i + 1) × (j + 1) in group j of every window)
 * and 3 `fay aggregator` processes. Every window's count is then known from the hosts it covers,
 * so a result that counted a host twice, or a zero for a host it names, fails.
 */
const HOST_COUNT = 30;
const GROUPS = 5;
const PERIOD_MS = 500;
const HOSTS = Array.from({ length: HOST_COUNT }, (_, i) => `synthetic-${String(i).padStart(2, '0')}`);
const weight = (host: string) => Number(host.slice(-2)) + 1;
const AGGREGATORS = ['agg-0', 'agg-1', 'agg-2'];

/** The counts a window covering `hosts` must have: group j, (j + 1) × their weights' sum. */
function expectedCounts(hosts: readonly string[]): Record<string, number> {
  const total = hosts.reduce((n, h) => n + weight(h), 0);
  return Object.fromEntries(Array.from({ length: GROUPS }, (_, j) => [`proc-${j}`, (j + 1) * total]));
}

function countsOf(result: ResultMessage): Record<string, number> {
  return Object.fromEntries(result.rows.map((r) => [r[0] as string, Number(r[1])]));
}

/** Fails unless a closed window counts exactly what its reporting hosts sent, and names every host it lacks. */
function assertExact(result: ResultMessage): void {
  const coverage = result.coverage!;
  const reporting = [...coverage.reporting].sort();
  assert.deepEqual(countsOf(result), reporting.length === 0 ? {} : expectedCounts(reporting), `window ${result.startNs}: counts of ${reporting.length} hosts`);
  const named = new Set([...coverage.reporting, ...coverage.late, ...coverage.missing]);
  for (const host of HOSTS) assert.ok(named.has(host), `${host} is neither reporting nor named late or missing`);
}

describe('a merge tree between the agents and the client', () => {
  let nats: NatsServer;
  let client: ClusterClient;
  const agents: SyntheticAgent[] = [];
  const aggregators = new Map<string, TestAgent>();

  before(async () => {
    nats = await NatsServer.start();
    for (const host of HOSTS) agents.push(new SyntheticAgent(await NatsBus.connect({ url: nats.url('agent'), name: host }), host, { groups: GROUPS, weight: weight(host), attachSpreadMs: 50 }));
    client = new ClusterClient(await NatsBus.connect({ url: nats.url('client'), name: 'test client' }), localRegistry());
    const known = new Promise<void>((resolve) => {
      const heard = () => {
        if (client.aggregators().length !== AGGREGATORS.length) return;
        client.aggregatorListeners.delete(heard);
        resolve();
      };
      client.aggregatorListeners.add(heard);
    });
    await Promise.all(AGGREGATORS.map(async (name) => aggregators.set(name, await TestAgent.startAggregator(name, nats.url('aggregator')))));
    await known;
  });

  after(async () => {
    for (const a of aggregators.values()) await a.stop();
    for (const a of agents) a.close();
    await Promise.all(agents.map((a) => a.bus.close()));
    await client?.close();
    await nats?.stop();
  });

  /** Reads windows until `enough` of them covered every host, checking each; then stops and reads the end. */
  async function windows(tree: boolean, enough: number, during?: (result: ResultMessage, covered: number) => void): Promise<{ results: ResultMessage[]; end: EndMessage }> {
    const run = client.run('syscall:getppid | count() by comm', { everyMs: PERIOD_MS, hosts: ['synthetic-*'], tree, expectAgents: HOST_COUNT });
    const results: ResultMessage[] = [];
    let end: EndMessage | undefined;
    let covered = 0;
    const bound = setTimeout(() => void run.stop(), 30_000);
    for await (const m of run as AsyncIterable<QueryMessage>) {
      if (m.kind === 'end') end = m;
      if (m.kind !== 'result' || !m.complete || m.coverage === undefined) continue;
      results.push(m);
      if (m.coverage.reporting.length === HOST_COUNT) covered++;
      during?.(m, covered);
      if (covered === enough) void run.stop();
    }
    clearTimeout(bound);
    assert.ok(end, 'the run ended with its end message');
    return { results, end };
  }

  it('gives the same exact counts through three aggregators as straight from the hosts', async () => {
    const direct = await windows(false, 3);
    const merged = await windows(true, 3);
    for (const { results } of [direct, merged]) {
      for (const r of results) assertExact(r);
      assert.ok(results.filter((r) => r.coverage!.reporting.length === HOST_COUNT).length >= 3);
    }
    const whole = expectedCounts(HOSTS);
    assert.deepEqual(countsOf(merged.results.find((r) => r.coverage!.reporting.length === HOST_COUNT)!), whole);
    assert.deepEqual(countsOf(direct.results.find((r) => r.coverage!.reporting.length === HOST_COUNT)!), whole);
    // Each aggregator told the client what it carries.
    assert.deepEqual(client.aggregators().map((a) => a.name), AGGREGATORS);
  });

  it('shows the tree in fay explain --cluster, and each aggregator\'s load in fay ps', async () => {
    const explain = await runFay(['explain', '--cluster', nats.url('client'), 'syscall:getppid | count() by comm']);
    assert.equal(explain.code, 0, explain.stderr);
    const text = explain.lines.join('\n');
    assert.match(text, /30 hosts → 3 aggregators → the client, which merges 3 partials per period/);
    for (const [name, hosts] of treeOf(HOSTS, AGGREGATORS)) assert.match(text, new RegExp(`${name} \\(\\d+ shards, busy \\d+%\\): ${hosts.length} hosts?: `));
    const direct = await runFay(['explain', '--cluster', nats.url('client'), '--no-tree', 'syscall:getppid | count() by comm']);
    assert.match(direct.lines.join('\n'), /none: the client merges the windows of all 30 hosts itself each period \(--no-tree\)/);
    const ps = await runFay(['ps', '--cluster', nats.url('client'), '--json']);
    assert.equal(ps.code, 0, ps.stderr);
    const loads = ps.lines.map((l) => JSON.parse(l) as { aggregator?: string; busy: number; hosts: number }).filter((l) => l.aggregator !== undefined);
    assert.deepEqual(loads.map((l) => l.aggregator).sort(), AGGREGATORS);
    const tree = treeOf(HOSTS, AGGREGATORS);
    for (const l of loads) {
      assert.ok(l.busy >= 0 && l.busy <= 1);
      assert.equal(l.hosts, tree.get(l.aggregator)!.length, `${l.aggregator} hears its hosts`);
    }
  });

  it('lets no agent pose as an aggregator, and no aggregator as an agent', async () => {
    const watcher = await NatsBus.connect({ url: nats.url('client'), name: 'watcher' });
    const agent = await NatsBus.connect({ url: nats.url('agent'), name: 'posing agent' });
    const aggregator = await NatsBus.connect({ url: nats.url('aggregator'), name: 'posing aggregator' });
    try {
      // Each connection ends with one message its user may send: once both came, whatever was let through came before them.
      const marks = [SUBJECTS.host('posing-mark'), SUBJECTS.aggregator('agg-9')];
      const seen: string[] = [];
      let marked!: () => void;
      const arrived = new Promise<void>((resolve) => (marked = resolve));
      for (const subject of ['fay.merged.>', 'fay.aggregators.*', 'fay.windows.>', 'fay.results.>', 'fay.hosts.*', 'fay.beats.*.*']) {
        watcher.subscribe(subject, (_data, _reply, s) => {
          seen.push(s);
          if (marks.every((m) => seen.includes(m))) marked();
        });
      }
      await watcher.flush();
      const forged = Buffer.from('{}');
      // An agent's user may not speak as an aggregator…
      const forgeries = [SUBJECTS.merged('q1', 1, 'agg-7'), SUBJECTS.aggregator('agg-7')];
      for (const subject of forgeries) agent.publish(subject, forged);
      agent.publish(marks[0]!, forged);
      // …nor an aggregator's as an agent.
      const posing = [SUBJECTS.windows('q1', 'posing'), SUBJECTS.results('q1', 'posing'), SUBJECTS.host('posing'), SUBJECTS.beat('posing')];
      for (const subject of posing) aggregator.publish(subject, forged);
      aggregator.publish(marks[1]!, forged);
      await arrived;
      assert.deepEqual(seen.filter((s) => [...forgeries, ...posing].includes(s)), []);
    } finally {
      await Promise.all([watcher.close(), agent.close(), aggregator.close()]);
    }
  });

  it('reports a stalled aggregator\'s hosts as late and counts nothing twice when it wakes', async () => {
    const stalled = aggregators.get('agg-1')!;
    const theirs = new Set(treeOf(HOSTS, AGGREGATORS).get('agg-1'));
    let stoppedAt: number | undefined;
    const uncovered = new Set<string>();
    const seen: string[] = [];
    const { results } = await windows(true, 6, (r, covered) => {
      if (stoppedAt === undefined && covered === 2) {
        stoppedAt = Date.now();
        process.kill(stalled.child.pid!, 'SIGSTOP');
        // Stalled for three periods: longer than three of its heartbeats, so the others take its shards meanwhile.
        setTimeout(() => process.kill(stalled.child.pid!, 'SIGCONT'), 3 * PERIOD_MS).unref();
      }
      if (stoppedAt === undefined) return;
      for (const h of [...r.coverage!.late, ...r.coverage!.missing]) uncovered.add(h);
      seen.push(`${Date.now() - stoppedAt} ms: ${r.coverage!.reporting.length} reporting, late ${r.coverage!.late.join(',')}, missing ${r.coverage!.missing.join(',')}`);
    });
    // Whatever it passed up when it woke (periods the others had already passed up) counted nothing twice.
    for (const r of results) assertExact(r);
    assert.ok(uncovered.size > 0, `its hosts were not covered while it stalled:\n${seen.join('\n')}`);
    for (const h of uncovered) assert.ok(theirs.has(h), `${h} was not the stalled aggregator's:\n${seen.join('\n')}`);
  });

  it('moves a killed aggregator\'s hosts to the others within a lease, naming the windows they missed', async () => {
    const victim = 'agg-2';
    const orphans = new Set(treeOf(HOSTS, AGGREGATORS).get(victim));
    assert.ok(orphans.size > 0 && orphans.size < HOST_COUNT, 'the victim carries some hosts');
    let killedMs: number | undefined;
    let recoveredMs: number | undefined;
    const uncovered = new Set<string>();
    const { results, end } = await windows(true, 6, (r, covered) => {
      if (killedMs === undefined && covered === 2) {
        killedMs = Date.now();
        void aggregators.get(victim)!.kill();
      }
      if (killedMs === undefined) return;
      const reporting = new Set(r.coverage!.reporting);
      for (const h of HOSTS) if (!reporting.has(h)) uncovered.add(h);
      if (process.env.DEBUG_TREE) console.error(new Date(r.startNs / 1e6).toISOString(), covered, r.coverage!.reporting.length, HOSTS.filter((h) => !reporting.has(h)).join(","), "late", r.coverage!.late.length, "missing", r.coverage!.missing.length);
      if (recoveredMs === undefined && reporting.size < HOST_COUNT) recoveredMs = 0;
      if (recoveredMs === 0 && reporting.size === HOST_COUNT) recoveredMs = Date.now();
    });
    for (const r of results) assertExact(r);
    assert.ok(killedMs !== undefined && recoveredMs !== undefined && recoveredMs > 0, 'windows were lost and then covered again');
    // The lease is 3 periods, at least 3 s.
    assert.ok(recoveredMs - killedMs <= 3000, `covered again ${recoveredMs - killedMs} ms after the kill`);
    // Only the victim's hosts lost anything, and the answer's gaps name them.
    assert.ok(uncovered.size > 0);
    for (const h of uncovered) assert.ok(orphans.has(h), `${h} was not the victim's`);
    const gapped = new Set((end.coverage.gaps ?? []).map((g) => g.host));
    for (const h of uncovered) assert.ok(gapped.has(h), `the answer names ${h}'s gap`);
  });

  it('merges through a tree of two levels as exactly as through one', async () => {
    // After the test above, agg-0 and agg-1 are the first level; two aggregators of level 2 merge their partials.
    const deeper = new Promise<void>((resolve) => {
      const heard = () => {
        if (client.treeLevel() !== 2) return;
        client.aggregatorListeners.delete(heard);
        resolve();
      };
      client.aggregatorListeners.add(heard);
    });
    const upper = await Promise.all(['top-0', 'top-1'].map((name) => TestAgent.startAggregator(name, nats.url('aggregator'), { level: 2 })));
    try {
      await deeper;
      const explain = await runFay(['explain', '--cluster', nats.url('client'), 'syscall:getppid | count() by comm']);
      assert.match(explain.lines.join('\n'), /30 hosts → 2 aggregators → 2 aggregators → the client, which merges 2 partials per period/);
      const { results } = await windows(true, 3);
      for (const r of results) assertExact(r);
      assert.ok(results.filter((r) => r.coverage!.reporting.length === HOST_COUNT).length >= 3);
    } finally {
      for (const a of upper) await a.stop();
    }
  });

  it('takes the windows straight from the hosts when no aggregator is left, and says so', async () => {
    let killedMs: number | undefined;
    let coveredAfterMs: number | undefined;
    const notices: string[] = [];
    const run = client.run('syscall:getppid | count() by comm', { everyMs: PERIOD_MS, hosts: ['synthetic-*'], tree: true, expectAgents: HOST_COUNT });
    const bound = setTimeout(() => void run.stop(), 30_000);
    let covered = 0;
    for await (const m of run as AsyncIterable<QueryMessage>) {
      if (m.kind === 'notice') notices.push(m.message);
      if (m.kind !== 'result' || !m.complete || m.coverage === undefined) continue;
      assertExact(m);
      if (m.coverage.reporting.length === HOST_COUNT) covered++;
      if (killedMs === undefined && covered === 2) {
        killedMs = Date.now();
        // Every aggregator left (agg-2 was killed above): gone at once, as in a crash.
        await Promise.all([...aggregators.values()].map((a) => a.kill()));
      } else if (killedMs !== undefined && m.coverage.reporting.length === HOST_COUNT && coveredAfterMs === undefined && m.startNs / 1e6 > killedMs) {
        coveredAfterMs = Date.now();
        void run.stop();
      }
    }
    clearTimeout(bound);
    assert.ok(coveredAfterMs !== undefined && killedMs !== undefined, `covered again after the aggregators went; notices: ${notices.join(' | ')}`);
    assert.ok(coveredAfterMs - killedMs <= 3000, `covered again ${coveredAfterMs - killedMs} ms after they went`);
    assert.ok(notices.some((n) => n.includes('no aggregator of the merge tree is left')), notices.join(' | '));
  });
});

describe('sketches through a merge tree', () => {
  const kinds = [createAggregate({ function: 'count', params: [] }), createAggregate({ function: 'quantiles', params: [0.5, 0.99] })];
  const hosts = HOSTS.slice(0, 12);
  let nats: NatsServer;
  let client: ClusterClient;
  const agents: SyntheticAgent[] = [];
  const aggregators: TestAgent[] = [];

  /** Host i's window: in group j, j + 1 calls that each returned 10 × (i + 1). */
  function tableOf(host: string): unknown {
    const table = new GroupTable(kinds);
    for (let j = 0; j < GROUPS; j++) for (let n = 0; n <= j; n++) table.add([`proc-${j}`], [undefined, 10 * weight(host)], 0);
    return table.encode();
  }

  before(async () => {
    nats = await NatsServer.start();
    for (const host of hosts) agents.push(new SyntheticAgent(await NatsBus.connect({ url: nats.url('agent'), name: host }), host, { groups: GROUPS, table: tableOf(host) }));
    client = new ClusterClient(await NatsBus.connect({ url: nats.url('client'), name: 'test client' }), localRegistry());
    aggregators.push(...(await Promise.all(['q-0', 'q-1'].map((name) => TestAgent.startAggregator(name, nats.url('aggregator'))))));
  });

  after(async () => {
    for (const a of aggregators) await a.stop();
    for (const a of agents) a.close();
    await Promise.all(agents.map((a) => a.bus.close()));
    await client?.close();
    await nats?.stop();
  });

  /** The rows of the first window that covers every host. */
  async function firstCovered(tree: boolean): Promise<ResultMessage> {
    const run = client.run('syscall:getppid | count(), quantiles(ret, 0.5, 0.99) by comm', { everyMs: PERIOD_MS, hosts: ['synthetic-*'], tree, expectAgents: hosts.length });
    const bound = setTimeout(() => void run.stop(), 30_000);
    let found: ResultMessage | undefined;
    for await (const m of run as AsyncIterable<QueryMessage>) {
      if (found === undefined && m.kind === 'result' && m.complete && m.coverage?.reporting.length === hosts.length) {
        found = m;
        void run.stop();
      }
    }
    clearTimeout(bound);
    assert.ok(found, 'a window covered every host');
    return found;
  }

  it('gives the same quantiles through the tree as straight, within the sketch\'s bound of the exact ones', async () => {
    const known = new Promise<void>((resolve) => {
      const heard = () => client.aggregators().length === 2 && resolve();
      client.aggregatorListeners.add(heard);
      heard();
    });
    await known;
    const straight = await firstCovered(false);
    const merged = await firstCovered(true);
    // DDSketch's buckets add: merged in another order, the same sketch, so the same quantiles.
    assert.deepEqual(merged.rows, straight.rows);
    // Against the exact quantiles of every value the hosts counted (the value at rank ⌊p × (n − 1)⌋): within the sketch's 1%.
    for (const row of merged.rows) {
      const group = row[0] as string;
      const j = Number(group.slice('proc-'.length));
      const values = hosts.flatMap((h) => Array.from({ length: j + 1 }, () => 10 * weight(h))).sort((a, b) => a - b);
      const result = row[2] as unknown as QuantilesResult;
      for (const { p, value } of result.quantiles) {
        const exact = values[Math.floor(p * (values.length - 1))]!;
        assert.ok(value !== null && Math.abs(value - exact) <= exact * QUANTILE_RELATIVE_ERROR + 1e-9, `${group} p${p * 100}: ${value} against ${exact}`);
      }
    }
  });
});
