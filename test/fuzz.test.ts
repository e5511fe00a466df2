import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { NatsBus } from '../src/bus/nats.js';
import { AgentAnnouncement, AgentMessage, BUS_BOUNDS, PROTOCOL_VERSION, readMessage, SUBJECTS, writeMessage } from '../src/bus/protocol.js';
import { encodeMessage } from '../src/bus/codec.js';
import { runFay } from '../src/testing/cli.js';
import { TestAgent } from '../src/testing/cluster.js';
import { prng } from '../src/prng.js';
import { fuzzInput, fuzzInputs, type FuzzInput } from '../src/testing/fuzz.js';
import type { FuzzOutcome } from '../src/testing/fuzz-worker.js';
import { NatsServer } from '../src/testing/nats-server.js';

/** The seed of this run's corpus: random, said in the test's name; FAY_FUZZ_SEED replays one. */
const SEED = Number(process.env.FAY_FUZZ_SEED ?? randomInt(2 ** 31));
/** Inputs per run through the front end, the planner and the code generators. */
const INPUTS = 20_000;
const MAX_MS = 1000;
const MAX_HEAP_MB = 200;

/** An input as a failure shows it: its kind and its first characters. */
function shown(input: FuzzInput): string {
  const text = input.text.length > 160 ? `${input.text.slice(0, 160)}… (${input.text.length} chars)` : input.text;
  return `[${input.kind}] ${JSON.stringify(text)}`;
}

describe(`no query brings down a client or an agent (fuzz seed ${SEED}: FAY_FUZZ_SEED=${SEED} replays it)`, () => {
  /** Input i of this run, as a failure shows it. */
  const input = (i: number) => shown(fuzzInput(SEED, i));

  it(`plans or refuses ${INPUTS} generated queries with a user error, each within ${MAX_MS} ms and ${MAX_HEAP_MB} MB`, async () => {
    const outcomes: FuzzOutcome[] = [];
    let current = -1;
    // tsx's loader, registered in the worker itself: a worker does not inherit the test's.
    const script = new URL('../src/testing/fuzz-worker.ts', import.meta.url).href;
    const worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(script)}); })`, {
      eval: true,
      workerData: { seed: SEED, count: INPUTS },
      resourceLimits: { maxOldGenerationSizeMb: MAX_HEAP_MB, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
    });
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { starting: number } | FuzzOutcome) => {
        if ('starting' in m) current = m.starting;
        else outcomes.push(m);
      });
      worker.on('error', (error) => reject(new Error(`the fuzz worker died on input ${current} ${current >= 0 ? input(current) : ''}: ${error.message}`)));
      worker.on('exit', () => resolve());
    });
    assert.equal(outcomes.length, INPUTS, `the worker stopped at input ${current}`);
    const internal = outcomes.filter((o) => o.outcome === 'internal');
    const slow = outcomes.filter((o) => o.ms > MAX_MS);
    const odd = outcomes.filter((o) => o.outcome === 'user' && o.exitCode !== 2 && o.exitCode !== 3);
    const report = (list: readonly FuzzOutcome[], what: (o: FuzzOutcome) => string) =>
      list.slice(0, 5).map((o) => `${input(o.index)}\n    ${what(o)}`).join('\n');
    assert.deepEqual(internal.length, 0, `internal errors:\n${report(internal, (o) => (o.message ?? '').split('\n').slice(0, 4).join('\n    '))}`);
    assert.deepEqual(slow.length, 0, `over ${MAX_MS} ms:\n${report(slow, (o) => `${Math.round(o.ms)} ms`)}`);
    assert.deepEqual(odd.length, 0, `exit codes other than 2 and 3:\n${report(odd, (o) => String(o.exitCode))}`);
    // A corpus that only ever failed to parse would prove little: enough of it reaches the planner and the code generators.
    const planned = outcomes.filter((o) => o.outcome === 'plan').length;
    assert.ok(planned > INPUTS / 20, `only ${planned} of ${INPUTS} inputs planned`);
  });

  it('refuses a sample of the corpus through the command itself with exit 2 or 3, a message and no stack trace', async () => {
    const random = prng(SEED);
    // Inputs of every kind, the short ones: a command line holds up to 128 KB an argument.
    const sample = [...fuzzInputs(SEED, INPUTS)].filter((i) => i.text.length < 100_000 && !i.text.includes('\u0000') && random() < 0.004).slice(0, 40);
    for (const input of sample) {
      const { code, stderr } = await runFay(['explain', input.text]);
      assert.ok(code === 0 || code === 2 || code === 3, `${shown(input)}: exit ${code}\n${stderr}`);
      assert.doesNotMatch(stderr, /internal error|^\s+at .+:\d+:\d+\)?$/m, `${shown(input)}:\n${stderr}`);
      if (code !== 0) assert.match(stderr, /^fay: /, shown(input));
    }
  });

  describe('an agent on a real nats-server', () => {
    let nats: NatsServer;
    let agent: TestAgent;
    let bus: NatsBus;

    before(async () => {
      nats = await NatsServer.start();
      agent = await TestAgent.start('fuzz-agent', nats.url('agent'));
      bus = await NatsBus.connect({ url: nats.url('client'), name: 'fuzz-client' });
    });
    after(async () => {
      await bus?.close();
      await agent?.stop();
      await nats?.stop();
    });

    /** Publishes a lease and waits for the agent's answer to it (its status), or undefined if none comes within a second. */
    async function lease(text: string, overrides: Record<string, unknown> = {}): Promise<AgentMessage | undefined> {
      const id = `fuzz${randomInt(2 ** 40).toString(16)}`;
      return new Promise((resolve) => {
        const timer = setTimeout(() => done(undefined), 1000);
        const unsubscribe = bus.subscribe(SUBJECTS.resultsOf(id), (data) => done(readMessage(AgentMessage, data)));
        function done(answer: AgentMessage | undefined): void {
          clearTimeout(timer);
          unsubscribe();
          resolve(answer);
        }
        const spec = { id, text, client: 'fuzz', startedNs: Date.now() * 1e6, leaseMs: 1000, options: {}, ...overrides };
        bus.publish(SUBJECTS.lease, writeMessage({ v: PROTOCOL_VERSION, kind: 'lease', spec } as never));
      });
    }

    /** Resolves with the agent's hello, in answer to a ping: it is up and on the bus. */
    async function alive(): Promise<boolean> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => done(false), 2000);
        const unsubscribe = bus.subscribe(SUBJECTS.host('fuzz-agent'), (data) => {
          if (readMessage(AgentAnnouncement, data).kind === 'hello') done(true);
        });
        function done(up: boolean): void {
          clearTimeout(timer);
          unsubscribe();
          resolve(up);
        }
        bus.publish(SUBJECTS.ping, writeMessage({ v: PROTOCOL_VERSION, kind: 'ping' }));
      });
    }

    it('refuses every refusable input of the corpus sent as a lease, and stays up after each', async () => {
      // What the client refuses, each agent must refuse too: the bus brings it text from anyone.
      const random = prng(SEED + 1);
      const kinds = new Set(['deep', 'prototype', 'literal', 'bytes']);
      const sample: FuzzInput[] = [];
      for (const i of fuzzInputs(SEED, INPUTS)) if (i.text.length <= 64 * 1024 && kinds.has(i.kind) && random() < 0.05 && sample.length < 150) sample.push(i);
      let answered = 0;
      for (const input of sample) {
        const answer = await lease(input.text, { hosts: ['fuzz-*'] });
        // A valid query runs: it is stopped at once (its lease is short, and it is told).
        if (answer?.kind === 'status' && answer.state === 'accepted') bus.publish(SUBJECTS.stop, writeMessage({ v: PROTOCOL_VERSION, kind: 'stop', id: answer.id }));
        if (answer !== undefined) answered++;
        if (answer?.kind === 'status' && answer.state === 'refused') assert.ok(answer.exitCode === 2 || answer.exitCode === 3, `${shown(input)}: refused as a bug: ${answer.reason}`);
        assert.ok(agent.child.exitCode === null, `${shown(input)} ended the agent:\n${agent.log.slice(-2000)}`);
      }
      assert.ok(await alive(), 'the agent answers a ping after the corpus');
      assert.ok(answered > sample.length / 2, `${answered} of ${sample.length} leases answered`);
    });

    it('drops leases whose fields are out of bounds, and forged or garbled messages, and stays up', async () => {
      const outOfBounds: Record<string, unknown>[] = [
        { leaseMs: 2e9 },
        { leaseMs: 1e12 },
        { leaseMs: -1 },
        { leaseMs: BUS_BOUNDS.leaseMs.max + 1 },
        { startedNs: -1 },
        { startedNs: 1e300 },
        { options: { everyMs: 1e-9 } },
        { options: { refreshMs: 1e15 } },
        { options: { limits: { maxGroups: 1e12 } } },
        { options: { limits: { maxEventsPerSecond: 1e12 } } },
        { options: { providers: { node: { blob: 'x'.repeat(20_000) } } } },
        { options: { providers: { 'Not a provider name': {} } } },
        { hosts: Array.from({ length: 2000 }, () => 'x') },
        { text: 'x'.repeat(70 * 1024) },
        { id: '__proto__.x' },
        { client: 'c'.repeat(1000) },
      ];
      for (const overrides of outOfBounds) {
        const answer = await lease('syscall:getppid | count()', overrides);
        assert.equal(answer, undefined, `${JSON.stringify(overrides).slice(0, 100)} was taken`);
      }
      // Provider options travel opaque: each agent's provider checks its own, and refuses what is out of range as the query's mistake.
      for (const providers of [{ node: { maxEditPauseMs: 1e9 } }, { node: { keepEditsMs: 1e12 } }, { python: {} }]) {
        const answer = await lease('syscall:getppid | count()', { options: { providers } });
        assert.ok(answer?.kind === 'status' && answer.state === 'refused' && answer.exitCode === 2, `${JSON.stringify(providers)}: ${JSON.stringify(answer)}`);
        assert.ok(agent.child.exitCode === null, `${JSON.stringify(providers)} ended the agent`);
      }
      const random = prng(SEED + 2);
      const garbage: Uint8Array[] = [
        new Uint8Array([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0]),
        encodeMessage({ v: PROTOCOL_VERSION, kind: 'lease', spec: { __proto__: { id: 'x' } } }),
        encodeMessage({ v: PROTOCOL_VERSION, kind: 'lease', spec: JSON.parse('{"__proto__": {"polluted": true}, "id": "a"}') as unknown }),
        encodeMessage('['.repeat(100_000)),
        Buffer.from('['.repeat(500_000)),
        Buffer.from(`{"v":${PROTOCOL_VERSION},"kind":"stop","id":"${'a'.repeat(100)}"}`),
        ...Array.from({ length: 200 }, () => Buffer.from(Array.from({ length: 1 + Math.floor(random() * 2000) }, () => Math.floor(random() * 256)))),
      ];
      for (const message of garbage) {
        bus.publish(SUBJECTS.lease, message);
        bus.publish(SUBJECTS.stop, message);
        bus.publish(SUBJECTS.list, message);
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing reached Object.prototype here');
      assert.ok(await alive(), 'the agent answers a ping after the garbage');
      assert.ok(agent.child.exitCode === null, agent.log.slice(-2000));
    });
  });
});
