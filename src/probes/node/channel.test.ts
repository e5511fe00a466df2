import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AgentChannel, type TargetConnection } from './channel.js';

/** A stand-in for a traced process's runtime: a raw connection to the agent's socket. */
async function runtimeSocket(channel: AgentChannel): Promise<Socket> {
  const socket = connect({ path: channel.path });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

const lineOn = (socket: Socket) =>
  new Promise<Record<string, unknown>>((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (!text.includes('\n')) return;
      socket.off('data', onData);
      resolve(JSON.parse(text.slice(0, text.indexOf('\n'))) as Record<string, unknown>);
    };
    socket.on('data', onData);
  });

const partial = (period: number, count: number) => ({ period, groups: [{ key: [], s: [count] }], rows: [], dropped: 0, folded: 0, sampling: [] });

describe("the agent's channel to traced processes", () => {
  let channel: AgentChannel;
  before(async () => {
    channel = await AgentChannel.open();
  });
  after(() => channel.close());

  it('shrugs off what any process on the machine may send it, and goes on accepting runtimes', async () => {
    for (const garbage of ['null\n', '42\n', '"hello"\n', '[1,2]\n', '{"type":"hello","token":"forged","pid":1}\n', 'x'.repeat(5000)]) {
      const socket = await runtimeSocket(channel);
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(garbage);
      await closed;
    }
    const notices: string[] = [];
    const expected = channel.expect((m) => notices.push(m));
    const socket = await runtimeSocket(channel);
    socket.write(`${JSON.stringify({ type: 'hello', token: expected.token, pid: 4242 })}\nnull\n7\n{"type":"notice","message":"still here"}\n`);
    const connection = await expected.connection;
    assert.equal(connection.pid, 4242);
    // A malformed partial answers its flush at once, as nothing, and is reported.
    const flushed = connection.flush(1, 0, 1);
    assert.equal((await lineOn(socket)).type, 'flush');
    socket.write(`${JSON.stringify({ type: 'partial', period: 1, groups: 'many' })}\n`);
    assert.equal(await flushed, undefined);
    assert.deepEqual(notices, ['still here', 'it sent a malformed partial; it was skipped']);
    socket.destroy();
    await connection.closed;
  });

  const connectedRuntime = async (): Promise<{ socket: Socket; connection: TargetConnection }> => {
    const expected = channel.expect(() => undefined);
    const socket = await runtimeSocket(channel);
    socket.write(`${JSON.stringify({ type: 'hello', token: expected.token, pid: 1 })}\n`);
    return { socket, connection: await expected.connection };
  };

  it('puts an answer that came too late into the next read, and asks no more while one is outstanding', async () => {
    const { socket, connection } = await connectedRuntime();
    const asks: Record<string, unknown>[] = [];
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      asks.push(...lines.map((l) => JSON.parse(l) as Record<string, unknown>));
    });
    // A busy process: no answer within the read's wait.
    assert.equal(await connection.flush(1, 0, 1, false, 20), undefined);
    assert.equal(connection.slow, true);
    assert.equal(await connection.flush(2, 0, 1, false, 20), undefined);
    assert.deepEqual(asks.map((a) => a.period), [1], 'no second ask while the first is outstanding');
    // The late answer goes into the read under way when it comes.
    socket.write(`${JSON.stringify({ type: 'partial', ...partial(1, 40) })}\n`);
    assert.deepEqual((await connection.flush(3, 0, 1, false, 5000))?.groups, [{ key: [], s: [40] }]);
    assert.equal(connection.slow, false);
    // The next ask covers the periods that were not asked for.
    const fourth = connection.flush(4, 0, 1, false, 5000);
    await new Promise((resolve) => socket.once('data', resolve));
    socket.write(`${JSON.stringify({ type: 'partial', ...partial(4, 2) })}\n`);
    assert.deepEqual((await fourth)?.groups, [{ key: [], s: [2] }]);
    // The last read asks even with an answer outstanding, and takes both.
    assert.equal(await connection.flush(5, 0, 1, false, 20), undefined);
    const last = connection.flush(6, 0, 1, true, 5000);
    await new Promise((resolve) => socket.once('data', resolve));
    socket.write(`${JSON.stringify({ type: 'partial', ...partial(5, 3) })}\n`);
    socket.write(`${JSON.stringify({ type: 'partial', ...partial(6, 1), pending: [{ name: 'f', calls: 1 }] })}\n`);
    const both = await last;
    assert.deepEqual(both?.groups, [{ key: [], s: [3] }, { key: [], s: [1] }]);
    assert.deepEqual(both?.pending, [{ name: 'f', calls: 1 }], "what is still pending, from the newest");
    assert.deepEqual(asks.map((a) => [a.period, a.seconds, a.final]), [[1, 1, undefined], [4, 3, undefined], [5, 1, undefined], [6, 1, true]]);
    socket.destroy();
    await connection.closed;
  });

  it("takes an exiting process's last partial, whether a flush waits for it or comes after", async () => {
    // The process exits before the next flush: the flush after its end gets what it counted.
    const before = await connectedRuntime();
    before.socket.end(`${JSON.stringify({ ...partial(0, 17), type: 'exiting' })}\n`);
    await before.connection.closed;
    assert.deepEqual((await before.connection.flush(3, 0, 1))?.groups, [{ key: [], s: [17] }]);
    assert.equal(await before.connection.flush(4, 0, 1), undefined, 'once only');
    // It exits while a flush waits: that flush gets it.
    const during = await connectedRuntime();
    const flushed = during.connection.flush(5, 0, 1);
    await lineOn(during.socket);
    during.socket.end(`${JSON.stringify({ ...partial(0, 9), type: 'exiting' })}\n`);
    assert.deepEqual((await flushed)?.groups, [{ key: [], s: [9] }]);
    // A flush of a connection already gone answers at once, not after its timeout.
    const started = performance.now();
    assert.equal(await during.connection.flush(6, 0, 1, false, 60_000), undefined);
    assert.ok(performance.now() - started < 1000);
  });
});
