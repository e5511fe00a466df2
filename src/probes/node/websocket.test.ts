import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocketClient, WebSocketError } from './websocket.js';

/** A server frame as RFC 6455 lays it out (servers do not mask). */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([(fin ? 0x80 : 0) | opcode, n])
      : n < 65536
        ? Buffer.from([(fin ? 0x80 : 0) | opcode, 126, n >> 8, n & 0xff])
        : Buffer.from([(fin ? 0x80 : 0) | opcode, 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  return Buffer.concat([head, payload]);
}

/** The client frames in `bytes`, unmasked, and whatever follows the last whole one. */
function clientFrames(bytes: Buffer): { frames: { opcode: number; fin: boolean; payload: Buffer }[]; rest: Buffer } {
  const frames = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    assert.equal(bytes[at + 1]! & 0x80, 0x80, 'a client frame is masked');
    let n = bytes[at + 1]! & 0x7f;
    let head = 2;
    if (n === 126) [n, head] = [bytes.readUInt16BE(at + 2), 4];
    else if (n === 127) [n, head] = [Number(bytes.readBigUInt64BE(at + 2)), 10];
    if (at + head + 4 + n > bytes.length) break;
    const mask = bytes.subarray(at + head, at + head + 4);
    const payload = Buffer.from(bytes.subarray(at + head + 4, at + head + 4 + n)).map((b, i) => b ^ mask[i % 4]!);
    frames.push({ opcode: bytes[at]! & 0x0f, fin: (bytes[at]! & 0x80) !== 0, payload: Buffer.from(payload) });
    at += head + 4 + n;
  }
  return { frames, rest: bytes.subarray(at) };
}

/** A TCP server whose one connection the test drives by hand, after answering the upgrade with `answer`. */
async function server(answer: (key: string) => string): Promise<{ server: Server; port: number; peer: Promise<{ socket: Socket; received: () => Buffer }> }> {
  const s = createServer();
  const peer = new Promise<{ socket: Socket; received: () => Buffer }>((resolve) => {
    s.once('connection', (socket) => {
      let bytes = Buffer.alloc(0);
      let upgraded = false;
      socket.on('data', (chunk: Buffer) => {
        bytes = Buffer.concat([bytes, chunk]);
        const end = bytes.indexOf('\r\n\r\n');
        if (upgraded || end < 0) return;
        upgraded = true;
        const key = /sec-websocket-key: *(\S+)/i.exec(bytes.subarray(0, end).toString('latin1'))?.[1] ?? '';
        bytes = bytes.subarray(end + 4);
        socket.write(answer(key));
        resolve({ socket, received: () => bytes });
      });
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, port: (s.address() as { port: number }).port, peer };
}

const accept = (key: string) => createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const switching = (key: string) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function upgrade(port: number, maxPayload = 1 << 20): Promise<WebSocketClient> {
  return WebSocketClient.upgrade(await open(port), { host: `127.0.0.1:${port}`, path: '/id', timeoutMs: 2000, maxPayload });
}

/** Waits for what the other end's events bring about; fails after 5 s. */
const until = async (check: () => boolean) => {
  const deadline = Date.now() + 5000;
  while (!check()) {
    assert.ok(Date.now() < deadline, 'not within 5 s');
    await new Promise((r) => setImmediate(r));
  }
};

describe('the WebSocket client the inspector connection runs on', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  it('reads messages of every length encoding, split anywhere, fragmented, with a ping between fragments', async () => {
    const { server: s, port, peer } = await server(switching);
    servers.push(s);
    const messages: string[] = [];
    const client = await upgrade(port);
    client.onMessage((t) => messages.push(t));
    const { socket, received } = await peer;
    const long = 'é'.repeat(35_000); // 70,000 bytes: a 64-bit length
    const frames = [
      serverFrame(0x1, Buffer.from('short')),
      serverFrame(0x1, Buffer.from('x'.repeat(300))),
      serverFrame(0x1, Buffer.from(long)),
      serverFrame(0x1, Buffer.from('frag'), false),
      serverFrame(0x9, Buffer.from('are you there')),
      serverFrame(0x0, Buffer.from('men'), false),
      serverFrame(0x0, Buffer.from('ted')),
    ];
    // Each frame in pieces a turn of the event loop apart: its first bytes one by one (a header
    // split anywhere), the rest 997 bytes at a time.
    for (const frame of frames) {
      for (let at = 0; at < frame.length; at += at < 5 ? 1 : 997) {
        socket.write(frame.subarray(at, at + (at < 5 ? 1 : 997)));
        await new Promise((r) => setImmediate(r));
      }
    }
    await until(() => messages.length === 4);
    assert.deepEqual(messages, ['short', 'x'.repeat(300), long, 'fragmented']);
    await until(() => clientFrames(received()).frames.length === 1);
    const [pong] = clientFrames(received()).frames;
    assert.equal(pong!.opcode, 0xa);
    assert.equal(pong!.payload.toString(), 'are you there');
    client.close();
    await client.closed;
  });

  it('sends masked text frames the server can read, short and long', async () => {
    const { server: s, port, peer } = await server(switching);
    servers.push(s);
    const client = await upgrade(port);
    const { received } = await peer;
    const sent = ['{"id":1}', 'y'.repeat(200), 'z'.repeat(70_000)];
    for (const text of sent) client.send(text);
    await until(() => clientFrames(received()).frames.length === 3);
    const { frames, rest } = clientFrames(received());
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.fin, f.payload.toString()]),
      sent.map((t) => [0x1, true, t]),
    );
    assert.equal(rest.length, 0);
    client.close();
    await client.closed;
  });

  it('ends when the server closes, and refuses an upgrade the server did not accept', async () => {
    const first = await server(switching);
    servers.push(first.server);
    const client = await upgrade(first.port);
    const { socket, received } = await first.peer;
    socket.write(serverFrame(0x8, Buffer.from([0x03, 0xe8])));
    await client.closed;
    assert.equal(clientFrames(received()).frames[0]?.opcode, 0x8, 'the close is answered with a close');

    const refusing = await server(() => 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    const wrongKey = await server(() => switching('another key'));
    servers.push(refusing.server, wrongKey.server);
    await assert.rejects(
      upgrade(refusing.port),
      (e) => e instanceof WebSocketError && /refused the WebSocket upgrade: HTTP\/1.1 404/.test(e.message),
    );
    await assert.rejects(
      upgrade(wrongKey.port),
      (e) => e instanceof WebSocketError && /Sec-WebSocket-Accept/.test(e.message),
    );
  });

  it('drops a connection whose message is over the limit, instead of buffering it', async () => {
    const { server: s, port, peer } = await server(switching);
    servers.push(s);
    const messages: string[] = [];
    const client = await upgrade(port, 1000);
    client.onMessage((t) => messages.push(t));
    const { socket } = await peer;
    socket.write(serverFrame(0x1, Buffer.from('ok')));
    socket.write(serverFrame(0x1, Buffer.alloc(1001, 0x61)).subarray(0, 100));
    await client.closed;
    assert.deepEqual(messages, ['ok']);
  });
});
