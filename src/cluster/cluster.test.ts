import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NatsBus } from '../bus/nats.js';
import { AgentAnnouncement, PROTOCOL_VERSION, readMessage, SUBJECTS, writeMessage } from '../bus/protocol.js';
import { TestAgent, TestCgroup, TestCluster } from '../testing/cluster.js';
import { kernelSideProcesses, loadedBpfPrograms, newBpfPrograms, parentOf, processesGone } from '../testing/kernel-state.js';
import { NatsServer } from '../testing/nats-server.js';
import { TestNetns } from '../testing/netns.js';
import { startNodeTarget } from '../testing/node-target.js';
import { runFay, startFay } from '../testing/cli.js';
import { collect, rowsOf } from '../testing/query.js';
import { ClusterClient } from './cluster-client.js';
import type { EndMessage, QueryMessage, ResultMessage } from './cluster-stage.js';
import { connect } from '../linq/fay.js';
import type { QueryHandle } from './embedded.js';
import { localRegistry } from '../probes/default-registry.js';

/** Reads a run's messages until one satisfies `test`; fails after timeoutMs (a bound, not a wait). */
async function until<T extends QueryMessage>(reader: AsyncIterator<QueryMessage>, test: (m: QueryMessage) => m is T, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const next = await Promise.race([reader.next(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), deadline - Date.now()).unref())]);
    if (next === 'timeout' || next.done) break;
    if (test(next.value)) return next.value;
  }
  throw new Error('the awaited message did not come');
}

const isResult = (test: (r: ResultMessage) => boolean) => (m: QueryMessage): m is ResultMessage => m.kind === 'result' && test(m);

/** Total of a count() by host result, per host. */
function countsByHost(result: ResultMessage | undefined): Record<string, number> {
  return Object.fromEntries(rowsOf(result).map((r) => [r.host as string, r.count as number]));
}

/** Reads a run to its end, returning its final complete result. */
async function finalOf(run: QueryHandle, reader: AsyncIterator<QueryMessage>): Promise<ResultMessage | undefined> {
  await run.stop();
  let last: ResultMessage | undefined;
  for (let next = await reader.next(); !next.done; next = await reader.next()) if (next.value.kind === 'result' && next.value.complete) last = next.value;
  return last;
}

/** Simulated hosts: an agent each, scoped to a cgroup of its own, so that each sees only its own workload. */
const HOSTS = ['host-a', 'host-b', 'host-c'] as const;

describe('one query across several agents on a real NATS server', () => {
  const cluster = new TestCluster(HOSTS, { hostUsers: ['host-a'] });
  const { cgroups, agents } = cluster;
  let nats: NatsServer;
  let client: ClusterClient;
  let programsBefore: Set<number>;

  before(async () => {
    programsBefore = loadedBpfPrograms();
    ({ nats, client } = await cluster.start());
  });

  after(() => cluster.stop());

  it('counts exactly per host and in total, and says every host is covered', async () => {
    const calls = { 'host-a': 3000, 'host-b': 5000, 'host-c': 7000 };
    const result = await collect(client.run('syscall:getppid | count() by host', { refreshMs: 500 }), () =>
      Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-cl', 'getppid', calls[h]))),
    );
    assert.deepEqual(
      rowsOf(result.final).sort((a, b) => (a.host as string).localeCompare(b.host as string)),
      HOSTS.map((host) => ({ host, count: calls[host] })),
    );
    const final = result.final as ResultMessage;
    assert.deepEqual(final.coverage, { expected: [...HOSTS], reporting: [...HOSTS], late: [], missing: [] });
    assert.deepEqual(newBpfPrograms(programsBefore), [], 'every probe removed at the end');
  });

  it("counts exactly per host on the native backend too, each agent's program scoped to its cgroup", async () => {
    const calls = { 'host-a': 2100, 'host-b': 2200, 'host-c': 2300 };
    const run = client.run('syscall:getppid | count() by host', { refreshMs: 500, providerOptions: { bpf: { backend: 'native' } } });
    const result = await collect(run, () => Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-cl', 'getppid', calls[h]))));
    assert.deepEqual(countsByHost(result.final), calls);
    assert.deepEqual(newBpfPrograms(programsBefore), [], 'every probe removed at the end');
  });

  it('runs only on the hosts its on condition picks, and expects only those', async () => {
    const calls = { 'host-a': 1100, 'host-b': 1200, 'host-c': 1300 };
    const marks = new Map(HOSTS.map((h) => [h, agents.get(h)!.mark()]));
    const run = client.run('syscall:getppid | on host =~ "host-[ab]" | count() by host', { refreshMs: 300 });
    const result = await collect(run, () => Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-cl', 'getppid', calls[h]))));
    assert.deepEqual(countsByHost(result.final), { 'host-a': 1100, 'host-b': 1200 });
    assert.deepEqual((result.final as ResultMessage).coverage, { expected: ['host-a', 'host-b'], reporting: ['host-a', 'host-b'], late: [], missing: [] });
    for (const h of ['host-a', 'host-b'] as const) assert.match(agents.get(h)!.logSince(marks.get(h)!), /running query/);
    // Only this query's id: the end of the test before may still be on its way up host-c's log pipe.
    assert.doesNotMatch(agents.get('host-c')!.logSince(marks.get('host-c')!), new RegExp(run.id), 'host-c never even compiled it');
  });

  it('goes on without an agent killed mid-query, which it marks missing, the others exact', async () => {
    const cgroup = new TestCgroup('host-doomed');
    const doomed = await TestAgent.start('host-doomed', nats.url('agent'), { cgroup: cgroup.path });
    try {
      const run = client.run('syscall:getppid | count() by host', { refreshMs: 300, hosts: ['host-a', 'host-doomed'] });
      const reader = run[Symbol.asyncIterator]();
      await run.attached;
      await Promise.all([cgroups.get('host-a')!.run('fay-cl', 'getppid', 1000), cgroup.run('fay-cl', 'getppid', 2000)]);
      await until(reader, isResult((r) => countsByHost(r)['host-doomed'] === 2000 && countsByHost(r)['host-a'] === 1000));
      const itsProbes = kernelSideProcesses().filter((pid) => parentOf(pid) === doomed.child.pid);
      assert.equal(itsProbes.length, 1, 'its kernel-side process (bpftrace or the native loader) runs');
      await doomed.kill();
      await cgroups.get('host-a')!.run('fay-cl', 'getppid', 500);
      // A period host-a is late for (a busy machine) may come first: the one that has it counts.
      const missing = await until(reader, isResult((r) => r.coverage?.missing.includes('host-doomed') === true && r.coverage.reporting.includes('host-a')));
      assert.deepEqual(missing.coverage?.reporting, ['host-a']);
      const final = await finalOf(run, reader);
      assert.deepEqual(countsByHost(final), { 'host-a': 1500, 'host-doomed': 2000 }, 'what the lost host reported before stays in');
      assert.deepEqual(final?.coverage?.missing, ['host-doomed']);
      // Its probes died with it (bpftrace and the native loader get a death signal from their agent).
      await processesGone(itsProbes, 5000);
    } finally {
      await doomed.kill();
      cgroup.remove();
    }
  });

  it('takes a restarted agent back into a running query, clean', async () => {
    const cgroup = new TestCgroup('host-phoenix');
    let phoenix = await TestAgent.start('host-phoenix', nats.url('agent'), { cgroup: cgroup.path });
    try {
      const run = client.run('syscall:getppid | count() by host', { refreshMs: 300, hosts: ['host-phoenix'] });
      const reader = run[Symbol.asyncIterator]();
      await run.attached;
      await cgroup.run('fay-cl', 'getppid', 1000);
      await until(reader, isResult((r) => countsByHost(r)['host-phoenix'] === 1000));
      const before = kernelSideProcesses().filter((pid) => parentOf(pid) === phoenix.child.pid);
      await phoenix.kill();
      await processesGone(before, 5000);
      phoenix = await TestAgent.start('host-phoenix', nats.url('agent'), { cgroup: cgroup.path });
      // The next renewal reaches the new agent, which starts the query afresh (a new incarnation).
      await phoenix.logged(/running query/);
      await cgroup.run('fay-cl', 'getppid', 500);
      await until(reader, isResult((r) => countsByHost(r)['host-phoenix'] === 1500 && r.coverage?.reporting.includes('host-phoenix') === true));
      const final = await finalOf(run, reader);
      assert.deepEqual(countsByHost(final), { 'host-phoenix': 1500 });
      assert.deepEqual(final?.coverage?.missing, []);
    } finally {
      await phoenix.stop();
      cgroup.remove();
    }
  });

  it('waits for the host a query names when it answers after every agent the client knew', async () => {
    // A host whose hello the client has not heard yet, as just after its agent started: it answers
    // the client's ping only once the three agents the client knew have answered it.
    const late = await NatsBus.connect({ url: nats.url('agent'), name: 'host-late' });
    const watch = await NatsBus.connect({ url: nats.url('client'), name: 'watching hellos' });
    try {
      const known = (await client.discover()).map((a) => a.host);
      assert.ok(HOSTS.every((h) => known.includes(h)), 'the client knows the three alive');
      const answered = new Set<string>();
      // Set as the client pings: a hello from then on answers that ping (the agents started long
      // before). Not when host-late hears the ping, which may come after the others' answers
      // reach this connection: NATS orders messages per connection, not across them.
      let pinged = false;
      const hello = () =>
        late.publish(SUBJECTS.host('host-late'), writeMessage({ v: PROTOCOL_VERSION, kind: 'hello', host: 'host-late', incarnation: 'x', version: 'x', kernel: 'x', providers: [], queries: [], rejected: 0, heartbeatMs: 60_000 }));
      watch.subscribe(SUBJECTS.hosts, (data) => {
        const heard = readMessage(AgentAnnouncement, data);
        if (!pinged || heard.kind !== 'hello' || answered.size === HOSTS.length) return;
        answered.add(heard.host);
        if (HOSTS.every((h) => answered.has(h))) hello();
      });
      await Promise.all([late.flush(), watch.flush()]);
      pinged = true;
      const found = await client.discover(Infinity, (host) => host === 'host-late');
      assert.deepEqual([...answered].sort(), [...HOSTS], 'the others answered first');
      assert.ok(found.some((a) => a.host === 'host-late'), `found ${found.map((a) => a.host).join(', ')}`);
    } finally {
      // Gone again: a later query must not wait for an answer from a host that is no agent.
      late.publish(SUBJECTS.host('host-late'), writeMessage({ v: PROTOCOL_VERSION, kind: 'bye', host: 'host-late', incarnation: 'x', version: 'x', kernel: 'x', providers: [], queries: [], rejected: 0, heartbeatMs: 60_000 }));
      await late.flush();
      await Promise.all([late.close(), watch.close()]);
    }
  });

  it('resumes results after the NATS server restarts mid-query, losing nothing', async () => {
    const run = client.run('syscall:getppid | count() by host', { refreshMs: 300, hosts: ['host-b'] });
    const reader = run[Symbol.asyncIterator]();
    await run.attached;
    await cgroups.get('host-b')!.run('fay-cl', 'getppid', 1000);
    await until(reader, isResult((r) => countsByHost(r)['host-b'] === 1000));
    await nats.kill();
    // The probes stay (the lease outlasts a short outage); the agent holds its windows back meanwhile.
    await cgroups.get('host-b')!.run('fay-cl', 'getppid', 2000);
    await nats.launch();
    await cgroups.get('host-b')!.run('fay-cl', 'getppid', 4000);
    await until(reader, isResult((r) => countsByHost(r)['host-b'] === 7000));
    const final = await finalOf(run, reader);
    assert.deepEqual(countsByHost(final), { 'host-b': 7000 });
  });

  it('keeps what an agent held back through an outage longer than its lease, and reports the span its probes were off', async () => {
    const run = client.run('syscall:getppid | count() by host', { refreshMs: 300, hosts: ['host-c'] });
    const reader = run[Symbol.asyncIterator]();
    const notices: string[] = [];
    const read = async (test: (m: QueryMessage) => boolean) =>
      until(reader, (m): m is QueryMessage => {
        if (m.kind === 'notice') notices.push(m.message);
        return test(m);
      });
    await run.attached;
    await cgroups.get('host-c')!.run('fay-cl', 'getppid', 1000);
    await read(isResult((r) => countsByHost(r)['host-c'] === 1000));
    const mark = agents.get('host-c')!.mark();
    await nats.kill();
    // Counted while the bus is away, before the lease (3 s) runs out: held back by the agent.
    await cgroups.get('host-c')!.run('fay-cl', 'getppid', 2000);
    await agents.get('host-c')!.logged(/ended: its lease ran out/, mark);
    // Its probes are off now: these are not counted by anyone.
    await cgroups.get('host-c')!.run('fay-cl', 'getppid', 500);
    await nats.launch();
    // Back: the renewal brings what was held back, and the query runs there again.
    await agents.get('host-c')!.logged(/running query/, mark);
    await cgroups.get('host-c')!.run('fay-cl', 'getppid', 4000);
    await read(isResult((r) => countsByHost(r)['host-c'] === 7000));
    await run.stop();
    let end: EndMessage | undefined;
    for (let next = await reader.next(); !next.done; next = await reader.next()) if (next.value.kind === 'end') end = next.value;
    assert.ok(end, 'the run ends with its coverage');
    assert.equal(end.complete, false, 'the span its probes were off is missing from the answer');
    const gaps = end.coverage.gaps ?? [];
    assert.deepEqual(gaps.map((g) => g.host), ['host-c']);
    assert.match(gaps[0]!.reason, /lease ran out while it could not hear this client/);
    assert.ok(gaps[0]!.endNs > gaps[0]!.startNs);
    assert.ok(!notices.some((n) => /restarted/.test(n)), `no agent restarted: ${notices.join('; ')}`);
    assert.ok(notices.some((n) => /rejoined the query/.test(n)), notices.join('; '));
  });

  it('removes every probe on every agent within the lease when its client dies', async () => {
    // The test before's kernel-side process may still be exiting (its agent said done): counted from after it.
    const agentsOf = ['host-a', 'host-c'].map((h) => agents.get(h)!.child.pid);
    await processesGone(kernelSideProcesses().filter((pid) => agentsOf.includes(parentOf(pid))));
    const before = loadedBpfPrograms();
    const fay = startFay(['query', '--cluster', nats.url('client'), '--json', '--every', '500ms', '--hosts', 'host-a,host-c', 'syscall:getppid | count() by host']);
    assert.ok(await fay.nextLine(), 'the query runs and reports');
    assert.ok(newBpfPrograms(before).length > 0, 'probes are loaded');
    const agentPids = ['host-a', 'host-c'].map((h) => agents.get(h)!.child.pid);
    const kernelSide = kernelSideProcesses().filter((pid) => agentPids.includes(parentOf(pid)));
    assert.equal(kernelSide.length, 2, 'one kernel-side process per agent');
    const marks = ['host-a', 'host-c'].map((h) => agents.get(h)!.mark());
    fay.child.kill('SIGKILL');
    await fay.exit;
    const killedAt = Date.now();
    // The lease is 3 periods, at least 3 s: a bound, so the wait has one too.
    await processesGone(kernelSide, 3000 + 2000);
    const took = Date.now() - killedAt;
    assert.deepEqual(newBpfPrograms(before), []);
    assert.ok(took < 5000, `removed after ${took} ms`);
    await Promise.all(['host-a', 'host-c'].map((h, i) => agents.get(h)!.logged(/lease ran out/, marks[i])));
  });

  it('takes its probes out of live Node.js processes too when its client dies', async () => {
    const app = await startNodeTarget('app.cjs');
    try {
      writeFileSync(join(cgroups.get('host-a')!.path, 'cgroup.procs'), String(app.pid));
      const fay = startFay(['query', '--cluster', nats.url('client'), '--json', '--every', '500ms', '--hosts', 'host-a', '--keep-edits', '0', 'js:*:./lib.cjs#query | count() by host']);
      assert.ok(await fay.nextLine(), 'the query runs and reports');
      assert.equal(await app.run('query', 5), '8');
      assert.equal((JSON.parse(await app.run('state', 0)) as { querySourceOriginal: boolean }).querySourceOriginal, false, 'instrumented');
      const mark = agents.get('host-a')!.mark();
      fay.child.kill('SIGKILL');
      await fay.exit;
      const killedAt = Date.now();
      await agents.get('host-a')!.logged(/query \S+ ended: its lease ran out/, mark);
      assert.ok(Date.now() - killedAt < 5000);
      assert.deepEqual(JSON.parse(await app.run('state', 0)), { statSyncOriginal: true, parseOriginal: true, querySourceOriginal: true, serverEmitInherited: true });
    } finally {
      await app.stop();
    }
  });

  it('answers FayLINQ over the cluster, exactly per host', async () => {
    const fay = await connect({ cluster: nats.url('client'), expectAgents: HOSTS.length });
    try {
      const calls = { 'host-a': 500, 'host-b': 600, 'host-c': 700 };
      const query = fay.syscalls('getppid').on(['host-a', 'host-b']).groupBy((e) => ({ host: e.host })).count();
      const result = await collect(query.start(), () => Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-cl', 'getppid', calls[h]))));
      assert.deepEqual(countsByHost(result.final), { 'host-a': 500, 'host-b': 600 });
      assert.deepEqual(result.final?.coverage?.expected, ['host-a', 'host-b']);
    } finally {
      await fay.close();
    }
  });

  it('runs shell scripts over the cluster, with host-set variables', async () => {
    const script = ['$ac = hosts "host-a", "host-c"', 'syscall:getppid | on $ac | count() by host', '.hosts'].join('\n');
    const shell = startFay(['shell', '--cluster', nats.url('client'), '--json', '--every', '300ms'], { stdin: script });
    const totals: Record<string, number> = {};
    const add = (line: string) => {
      const message = JSON.parse(line) as { type: string; rows: { host: string; count: number }[] };
      if (message.type !== 'result') return;
      for (const row of message.rows) totals[row.host] = (totals[row.host] ?? 0) + row.count;
    };
    add((await shell.nextLine())!); // the first window: the probes are attached everywhere
    await Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-cl', 'getppid', 800)));
    while ((totals['host-a'] ?? 0) < 800 || (totals['host-c'] ?? 0) < 800) add((await shell.nextLine())!);
    shell.child.kill('SIGINT');
    const { code, lines } = await shell.exit;
    for (const line of lines.filter((l) => l.startsWith('{'))) add(line);
    assert.deepEqual(totals, { 'host-a': 800, 'host-c': 800 });
    // .hosts runs after the query: every agent on the bus.
    assert.deepEqual(lines.filter((l) => !l.startsWith('{')).filter((l) => l.startsWith('host-')).sort(), [...HOSTS]);
    assert.equal(code, 0);
  });

  it('lists running queries and stops one from another client', async () => {
    const run = client.run('syscall:getppid | count() by host', { refreshMs: 300 });
    const reader = run[Symbol.asyncIterator]();
    await run.attached;
    const ps = await runFay(['ps', '--cluster', nats.url('client'), '--json']);
    assert.equal(ps.code, 0, ps.stderr);
    const listed = ps.lines.map((l) => JSON.parse(l) as { id: string; hosts: string[]; text: string });
    const mine = listed.find((q) => q.id === run.id);
    assert.deepEqual(mine?.hosts.sort(), [...HOSTS]);
    assert.equal(mine?.text, 'syscall:getppid | count() by host');
    const stop = await runFay(['stop', '--cluster', nats.url('client'), run.id]);
    assert.equal(stop.code, 0, stop.stderr);
    // Stopped by somebody else: the run ends by itself, with a final result from every host.
    for (let next = await reader.next(); !next.done; next = await reader.next()) {
      // Drain to the end.
    }
    assert.equal(await run.ended, 'stopped');
  });

  it('refuses connections without valid credentials, and messages a role may not send', async () => {
    await assert.rejects(NatsBus.connect({ url: nats.url('client').replace(/:[0-9a-f]+@/, ':wrong@'), name: 'intruder' }), /refused these credentials/);
    await assert.rejects(NatsBus.connect({ url: nats.url('anonymous'), name: 'intruder' }), /needs NATS credentials/);

    const run = client.run('syscall:getppid | count() by host', { refreshMs: 300, hosts: ['host-c'] });
    const reader = run[Symbol.asyncIterator]();
    await run.attached;
    // A client posing as an agent: the server refuses to carry it.
    const impostor = await NatsBus.connect({ url: nats.url('client'), name: 'impostor' });
    const forged = { v: PROTOCOL_VERSION, kind: 'window', id: run.id, host: 'host-c', incarnation: 'x', seq: 0, seqEnd: 0, part: 0, parts: 1, startNs: 0, endNs: 0, droppedEvents: 0, table: { v: 1, arity: 1, keys: ['host-c'], states: [[1_000_000]] } };
    impostor.publish(SUBJECTS.results(run.id, 'host-c'), Buffer.from(JSON.stringify(forged)));
    await impostor.flush();
    // An agent sending garbage: dropped and counted, nothing breaks.
    const broken = await NatsBus.connect({ url: nats.url('agent'), name: 'broken agent' });
    const rejectedBefore = client.rejected;
    broken.publish(SUBJECTS.results(run.id, 'host-c'), Buffer.from('{"v":2,"kind":"window","id":"nonsense'));
    broken.publish(SUBJECTS.results(run.id, 'host-c'), Buffer.from(JSON.stringify({ ...forged, v: 99 })));
    await broken.flush();
    // An agent with a user of its own (host-a's) posing as host-c: the server does not carry it on
    // host-c's subject, and on its own subject the client drops a message naming another host.
    const posing = await NatsBus.connect({ url: nats.hostUrl('host-a'), name: 'host-a posing as host-c' });
    posing.publish(SUBJECTS.results(run.id, 'host-c'), Buffer.from(JSON.stringify(forged)));
    posing.publish(SUBJECTS.host('host-c'), writeMessage({ v: PROTOCOL_VERSION, kind: 'bye', host: 'host-c', incarnation: 'x', version: 'x', kernel: 'x', providers: [], queries: [], rejected: 0, heartbeatMs: 1000 }));
    posing.publish(SUBJECTS.results(run.id, 'host-a'), Buffer.from(JSON.stringify(forged)));
    await posing.flush();
    await cgroups.get('host-c')!.run('fay-cl', 'getppid', 1234);
    await until(reader, isResult((r) => countsByHost(r)['host-c'] === 1234));
    const final = await finalOf(run, reader);
    assert.deepEqual(countsByHost(final), { 'host-c': 1234 }, 'no forged window is in it');
    assert.deepEqual(final?.coverage?.missing, [], 'host-c was never said to be gone');
    assert.equal(client.rejected - rejectedBefore, 3, 'two malformed, one naming another host');
    await impostor.close();
    await broken.close();
    await posing.close();
  });
});

describe('a host cut off from the network', () => {
  let netns: TestNetns;
  let nats: NatsServer;
  let far: TestAgent;
  let near: TestAgent;
  let client: ClusterClient;
  const cgroups = { far: new TestCgroup('far'), near: new TestCgroup('near') };

  before(async () => {
    netns = new TestNetns();
    // The server listens on this side of the namespace's link, where the near agent and the client reach it too.
    nats = await NatsServer.start(netns.hostAddress);
    [far, near] = await Promise.all([
      TestAgent.start('host-far', nats.url('agent'), { cgroup: cgroups.far.path, heartbeat: '1s', prefix: netns.exec }),
      TestAgent.start('host-near', nats.url('agent'), { cgroup: cgroups.near.path }),
    ]);
    client = new ClusterClient(await NatsBus.connect({ url: nats.url('client'), name: 'test client' }), localRegistry());
  });

  after(async () => {
    netns?.restore();
    await client?.close();
    await Promise.all([far?.stop(), near?.stop()]);
    await nats?.stop();
    netns?.remove();
    cgroups.far.remove();
    cgroups.near.remove();
  });

  it('marks it late, then missing, while the other host goes on', async () => {
    const run = client.run('syscall:getppid | count() by host', { refreshMs: 400 });
    const reader = run[Symbol.asyncIterator]();
    await run.attached;
    await Promise.all([cgroups.far.run('fay-cl', 'getppid', 300), cgroups.near.run('fay-cl', 'getppid', 400)]);
    await until(reader, isResult((r) => countsByHost(r)['host-far'] === 300 && countsByHost(r)['host-near'] === 400));
    netns.cut();
    // Heartbeats every second: for up to three seconds it is late (alive, but silent), then missing.
    await until(reader, isResult((r) => r.coverage?.late.includes('host-far') === true && r.coverage.reporting.includes('host-near')));
    await cgroups.near.run('fay-cl', 'getppid', 600);
    const missing = await until(reader, isResult((r) => r.coverage?.missing.includes('host-far') === true));
    assert.deepEqual(missing.coverage?.reporting, ['host-near']);
    const final = await finalOf(run, reader);
    assert.deepEqual(countsByHost(final), { 'host-far': 300, 'host-near': 1000 });
    assert.deepEqual(final?.coverage?.missing, ['host-far']);
  });
});
