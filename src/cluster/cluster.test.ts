import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsBus } from '../bus/nats.js';
import { TestAgent, TestCgroup } from '../testing/cluster.js';
import { bpftraceProcesses, loadedBpfPrograms, newBpfPrograms, processesGone } from '../testing/kernel-state.js';
import { NatsServer } from '../testing/nats-server.js';
import { collect, rowsOf } from '../testing/query.js';
import { ClusterClient } from './cluster-client.js';
import type { ResultMessage } from './cluster-stage.js';
import { localRegistry } from './embedded.js';

/** Simulated hosts: an agent each, scoped to a cgroup of its own, so that each sees only its own workload. */
const HOSTS = ['host-a', 'host-b', 'host-c'] as const;

describe('one query across several agents on a real NATS server', () => {
  let nats: NatsServer;
  const cgroups = new Map<string, TestCgroup>();
  const agents = new Map<string, TestAgent>();
  let client: ClusterClient;
  let programsBefore: Set<number>;

  before(async () => {
    programsBefore = loadedBpfPrograms();
    nats = await NatsServer.start();
    for (const host of HOSTS) cgroups.set(host, new TestCgroup(host));
    await Promise.all(
      HOSTS.map(async (host) => agents.set(host, await TestAgent.start(host, nats.url('agent'), { cgroup: cgroups.get(host)!.path }))),
    );
    client = new ClusterClient(await NatsBus.connect({ url: nats.url('client'), name: 'test client' }), localRegistry());
  });

  after(async () => {
    await client?.close();
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await nats?.stop();
    for (const c of cgroups.values()) c.remove();
  });

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
});
