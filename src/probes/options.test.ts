import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent } from '../agent/agent.js';
import { agentSettings } from '../agent/run-settings.js';
import { PROTOCOL_VERSION, QuerySpec } from '../bus/protocol.js';
import { EmbeddedCluster } from '../cluster/embedded.js';
import { UsageError } from '../errors.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';

const registry = fixtureRegistry();

describe('provider options', () => {
  it('are checked by their own provider: good values pass, a bad one or an unknown key is the query’s mistake', () => {
    registry.checkOptions({ node: { maxEditPauseMs: 100, keepEditsMs: 0 } });
    assert.throws(() => registry.checkOptions({ node: { maxEditPauseMs: -1 } }), (e: unknown) => e instanceof UsageError && /node\.maxEditPauseMs is out of range/.test(e.message));
    assert.throws(() => registry.checkOptions({ node: { keepEditsMs: 2 * 86_400_000 } }), /node\.keepEditsMs is out of range/);
    assert.throws(() => registry.checkOptions({ node: { maxPause: 5 } }), /out of range: Unrecognized key/i);
    assert.throws(() => registry.checkOptions({ node: 'fast' }), /setting node is out of range/);
  });

  it('name a provider that takes them', () => {
    assert.throws(
      () => registry.checkOptions({ python: { x: 1 } }),
      (e: unknown) => e instanceof UsageError && /no provider is called "python"/.test(e.message) && /providers with options: bpf, node/.test(e.hint ?? ''),
    );
    assert.throws(() => registry.checkOptions({ bpf: { backend: 'llvm' } }), /the kernel probes' options are \{ backend: bpftrace \| native \| auto \}/);
    assert.doesNotThrow(() => registry.checkOptions({ bpf: { backend: 'native' } }));
  });

  it('reach the provider they name on an agent, which refuses a bad one before anything runs', () => {
    const cluster = new EmbeddedCluster(new Agent(registry, 'testhost'));
    const plan = cluster.plan(`js:pid=${process.pid}:app.js#handle | count()`);
    const settings = (providerOptions: Record<string, unknown>) => agentSettings(plan, { providerOptions });
    assert.doesNotThrow(() => cluster.agent.compile(plan, settings({ node: { keepEditsMs: 5 } })));
    assert.throws(() => cluster.agent.compile(plan, settings({ node: { keepEditsMs: -5 } })), /node\.keepEditsMs is out of range/);
    // The kernel's provider gets none of the node's options.
    const kernel = cluster.plan('syscall:openat | count()');
    assert.doesNotThrow(() => cluster.agent.compile(kernel, agentSettings(kernel, { providerOptions: { node: { keepEditsMs: -5 } } })));
  });

  it('travel on the bus opaque, bounded in size only', () => {
    const spec = (providers: Record<string, unknown>) => ({
      id: 'q1',
      text: 'syscall:openat | count()',
      client: 'me@here',
      startedNs: 1,
      leaseMs: 3000,
      options: { providers },
    });
    assert.equal(PROTOCOL_VERSION, 8, 'the messages changed with provider options (4), --persist (5), standing queries (6), the store question and stopped standing queries in announcements (7), the merge tree: windows and heartbeats on subjects by shard, merged partials (8): a new protocol version each time');
    assert.equal(QuerySpec.safeParse({ ...spec({}), options: { persist: { name: '../etc' } } }).success, false, 'a log name is checked on the bus too');
    assert.ok(QuerySpec.safeParse({ ...spec({}), options: { persist: { name: 'opens', retainMs: 86_400_000 } } }).success);
    assert.ok(QuerySpec.safeParse({ ...spec({}), standing: { untilNs: 2e18 } }).success);
    assert.equal(QuerySpec.safeParse({ ...spec({}), standing: { untilNs: -1 } }).success, false, 'an until before the epoch is refused');
    assert.ok(QuerySpec.safeParse(spec({ node: { maxEditPauseMs: 100 }, python: { any: ['thing'] } })).success);
    assert.equal(QuerySpec.safeParse(spec({ node: { blob: 'x'.repeat(20_000) } })).success, false);
    assert.equal(QuerySpec.safeParse(spec({ 'Not a name': {} })).success, false);
  });
});
