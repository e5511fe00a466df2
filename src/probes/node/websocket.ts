import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';

/** RFC 6455's constant, appended to the client's key to compute the server's accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/** The upgrade failed or the peer broke the protocol. */
export class WebSocketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebSocketError';
  }
}

export interface UpgradeOptions {
  /** The Host header: host:port. */
  readonly host: string;
  /** The resource, e.g. `/<target id>`. */
  readonly path: string;
  readonly timeoutMs: number;
  /** A longer message ends the connection. */
  readonly maxPayload: number;
}

/**
 * The client end of a WebSocket (RFC 6455) over a TCP connection that is already open, which is
 * how an attach reuses the connection it asked the inspector's target list on: text messages,
 * fragments joined, pings answered. `ws` did the same in ~20 ms of loading (http, https, tls,
 * zlib) and a connection of its own.
 */
export class WebSocketClient {
  /** Resolves when the connection has closed, for whatever reason. */
  readonly closed: Promise<void>;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private readonly fragments: Buffer[] = [];
  private closing = false;
  private handler: ((text: string) => void) | undefined;
  /** Messages that came before there was a handler. */
  private readonly early: string[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly maxPayload: number,
    rest: Buffer,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    if (rest.length > 0) this.receive(rest);
  }

  /** Sends the upgrade request on `socket` and resolves once the server has switched protocols. */
  static upgrade(socket: Socket, options: UpgradeOptions): Promise<WebSocketClient> {
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const fail = (message: string) => {
        finish();
        socket.destroy();
        reject(new WebSocketError(message));
      };
      const timer = setTimeout(() => fail(`no WebSocket upgrade within ${options.timeoutMs} ms`), options.timeoutMs);
      const onError = (error: Error) => fail(error.message);
      const onClose = () => fail('the connection closed during the WebSocket upgrade');
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 16384) fail('the WebSocket upgrade answer has no end');
          return;
        }
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) return fail(`the server refused the WebSocket upgrade: ${lines[0] ?? ''}`);
        const accepted = lines.some((line) => /^sec-websocket-accept:/i.test(line) && line.slice(line.indexOf(':') + 1).trim() === accept);
        if (!accepted) return fail('the server answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept');
        finish();
        resolve(new WebSocketClient(socket, options.maxPayload, head.subarray(end + 4)));
      };
      const finish = () => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.resume();
      // Errors after the upgrade end in 'close', which resolves `closed`; they must not go unhandled.
      socket.on('error', () => undefined);
      socket.write(
        `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  /** Where messages go from now on, those that came before first. */
  onMessage(handler: (text: string) => void): void {
    this.handler = handler;
    for (const text of this.early.splice(0)) handler(text);
  }

  /** Sends one text message (dropped once the connection is closing). */
  send(text: string): void {
    if (!this.closing) this.socket.write(frame(Opcode.Text, Buffer.from(text, 'utf8')));
  }

  /** Starts the closing handshake; the connection is dropped if the server does not finish it within a second. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (!this.socket.destroyed) this.socket.end(frame(Opcode.Close, Buffer.from([0x03, 0xe8])));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.socket.destroyed) {
      const header = this.peek(14);
      if (header.length < 2) return;
      const opcode = header[0]! & 0x0f;
      const fin = (header[0]! & 0x80) !== 0;
      const masked = (header[1]! & 0x80) !== 0;
      let length = header[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (header.length < 4) return;
        length = header.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (header.length < 10) return;
        length = header.readUInt32BE(2) * 2 ** 32 + header.readUInt32BE(6);
        offset = 10;
      }
      if (length > this.maxPayload) return this.fail();
      const maskAt = offset;
      if (masked) offset += 4;
      if (this.buffered < offset + length) return;
      const all = this.take(offset + length);
      const payload = all.subarray(offset);
      if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= all[maskAt + (i & 3)]!;
      this.dispatch(opcode, fin, payload);
    }
  }

  private dispatch(opcode: number, fin: boolean, payload: Buffer): void {
    switch (opcode) {
      case Opcode.Text:
      case Opcode.Binary:
      case Opcode.Continuation: {
        if ((opcode === Opcode.Continuation) !== this.fragments.length > 0) return this.fail();
        this.fragments.push(payload);
        if (!fin) return;
        const message = this.fragments.length === 1 ? payload : Buffer.concat(this.fragments);
        this.fragments.length = 0;
        const text = message.toString('utf8');
        if (this.handler) this.handler(text);
        else this.early.push(text);
        return;
      }
      case Opcode.Ping:
        if (!this.closing) this.socket.write(frame(Opcode.Pong, payload));
        return;
      case Opcode.Pong:
        return;
      case Opcode.Close:
        this.close();
        return;
      default:
        this.fail();
    }
  }

  /** Up to n bytes from the front of the buffer, without consuming them. */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n && this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0]!.subarray(0, n);
  }

  /** Exactly n bytes from the front of the buffer (the caller checked they are there), consumed. */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    if (all.length > n) this.chunks.push(all.subarray(n));
    else this.chunks.push(Buffer.alloc(0));
    this.buffered -= n;
    // A copy: the payload may be unmasked in place, and the rest of `all` is still to be read.
    return Buffer.from(all.subarray(0, n));
  }

  private fail(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

/** One final frame from the client: masked, as RFC 6455 requires of clients. */
function frame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const out = Buffer.allocUnsafe(2 + extra + 4 + length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | (extra === 0 ? length : extra === 2 ? 126 : 127);
  if (extra === 2) out.writeUInt16BE(length, 2);
  if (extra === 8) {
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
  }
  const maskAt = 2 + extra;
  randomFillSync(out, maskAt, 4);
  for (let i = 0; i < length; i++) out[maskAt + 4 + i] = payload[i]! ^ out[maskAt + (i & 3)]!;
  return out;
}
