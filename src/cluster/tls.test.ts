import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsBus } from '../bus/nats.js';
import { EnvironmentError } from '../errors.js';
import { runFay } from '../testing/cli.js';
import { TestAgent, TestCgroup } from '../testing/cluster.js';
import { NatsServer } from '../testing/nats-server.js';
import { collect, rowsOf } from '../testing/query.js';
import { ClusterClient } from './cluster-client.js';
import { localRegistry } from '../probes/default-registry.js';

describe('a cluster over TLS', () => {
  let nats: NatsServer;
  let cgroup: TestCgroup;
  let agent: TestAgent;

  before(async () => {
    nats = await NatsServer.start('127.0.0.1', { tls: true });
    cgroup = new TestCgroup('host-tls');
    agent = await TestAgent.start('host-tls', nats.url('agent'), { cgroup: cgroup.path, args: ['--tls-ca', nats.caFile!] });
  });

  after(async () => {
    await agent?.stop();
    await nats?.stop();
    cgroup?.remove();
  });

  it('runs a query with the server verified against the given CA, counts exact', async () => {
    const client = new ClusterClient(await NatsBus.connect({ url: nats.url('client'), name: 'tls client', tlsCaFile: nats.caFile! }), localRegistry());
    try {
      const result = await collect(client.run('syscall:getppid | count() by host', { refreshMs: 300 }), () => cgroup.run('fay-tls', 'getppid', 1500));
      assert.deepEqual(rowsOf(result.final), [{ host: 'host-tls', count: 1500 }]);
    } finally {
      await client.close();
    }
    const ps = await runFay(['ps', '--cluster', nats.url('client'), '--tls-ca', nats.caFile!, '--json']);
    assert.equal(ps.code, 0, ps.stderr);
  });

  it('refuses a server it cannot verify, and a client that will not speak TLS', async () => {
    // No CA: the server's certificate is signed by nobody this client trusts.
    await assert.rejects(NatsBus.connect({ url: nats.url('client'), name: 'trusting nobody' }, 2000), (error: unknown) => error instanceof EnvironmentError && /cannot reach NATS/.test(error.message));
    const refused = await runFay(['ps', '--cluster', nats.url('client')]);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /^fay: cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: .+/m);
  });
});
