import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Bus, BusHandler, BusStatus } from './bus.js';
import type { InProcessBus } from './in-process.js';

/**
 * This machine's agent without a NATS server (`fay agent` with no --nats): its in-process bus,
 * served on a Unix socket that only root (the socket's owner) can open, so that `fay query
 * --persist`, `fay ps`, `fay stop` and history queries on this machine reach the agent that holds
 * the standing queries and the trace store. One JSON object a line each way:
 *
 *   → {"op":"sub","sid":1,"subject":"fay.hosts.*"}   {"op":"unsub","sid":1}
 *   → {"op":"pub","subject":"…","reply":"…","data":"<base64>"}
 *   ← {"op":"msg","sid":1,"subject":"…","reply":"…","data":"<base64>"}
 */

/** Where this machine's agent listens: $FAY_RUN_DIR/agent.sock, default /run/fay/agent.sock. */
export function localAgentSocket(): string {
  return join(process.env.FAY_RUN_DIR ?? '/run/fay', 'agent.sock');
}

/** Bytes a connection may have waiting to be written before it counts as stuck and is cut. */
const MAX_PENDING_BYTES = 256 * 1024 * 1024;

interface Frame {
  op?: unknown;
  sid?: unknown;
  subject?: unknown;
  reply?: unknown;
  data?: unknown;
}

/** Hands each frame a socket reads to `take`; a line that is not JSON goes to `garbled`. */
function readFrames(socket: Socket, take: (frame: Frame) => void, garbled: () => void): void {
  createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => {
    let frame: Frame;
    try {
      frame = JSON.parse(line) as Frame;
    } catch {
      garbled();
      return;
    }
    take(frame);
  });
}

function send(socket: Socket, frame: Record<string, unknown>): void {
  if (socket.destroyed) return;
  if (socket.writableLength > MAX_PENDING_BYTES) {
    socket.destroy();
    return;
  }
  socket.write(`${JSON.stringify(frame)}\n`);
}

/** Serves an in-process bus on a Unix socket. */
export class LocalBusServer {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /**
   * Listens at `path`. A socket left by an agent that was killed is taken over; one another agent
   * answers on is an error that says so.
   */
  static async listen(bus: InProcessBus, path: string): Promise<LocalBusServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (await answers(path)) throw new Error(`another Fay agent already listens at ${path}`);
    try {
      unlinkSync(path);
    } catch {
      // None was left.
    }
    const server = createServer();
    const local = new LocalBusServer(server, path);
    server.on('connection', (socket) => local.serve(bus, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    return local;
  }

  private serve(bus: InProcessBus, socket: Socket): void {
    this.sockets.add(socket);
    const subscriptions = new Map<number, () => void>();
    const take = (frame: Frame) => {
      if (frame.op === 'sub' && typeof frame.sid === 'number' && typeof frame.subject === 'string') {
        const sid = frame.sid;
        subscriptions.get(sid)?.();
        subscriptions.set(
          sid,
          bus.subscribe(frame.subject, (data, reply, subject) => send(socket, { op: 'msg', sid, subject, ...(reply !== undefined && { reply }), data: Buffer.from(data).toString('base64') })),
        );
      } else if (frame.op === 'unsub' && typeof frame.sid === 'number') {
        subscriptions.get(frame.sid)?.();
        subscriptions.delete(frame.sid);
      } else if (frame.op === 'pub' && typeof frame.subject === 'string' && typeof frame.data === 'string') {
        bus.publish(frame.subject, Buffer.from(frame.data, 'base64'), typeof frame.reply === 'string' ? frame.reply : undefined);
      }
    };
    readFrames(socket, take, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const unsubscribe of subscriptions.values()) unsubscribe();
      subscriptions.clear();
      this.sockets.delete(socket);
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Whether an agent answers at `path`. */
async function answers(path: string): Promise<boolean> {
  const bus = await LocalSocketBus.connect(path);
  if (bus === undefined) return false;
  await bus.close();
  return true;
}

/** The client's side: a Bus over the local agent's socket. */
export class LocalSocketBus implements Bus {
  private nextSid = 1;
  private readonly handlers = new Map<number, BusHandler>();
  private readonly listeners = new Set<(status: BusStatus) => void>();
  private open = true;

  private constructor(private readonly socket: Socket) {
    readFrames(
      socket,
      (frame) => {
        if (frame.op !== 'msg' || typeof frame.sid !== 'number' || typeof frame.data !== 'string' || typeof frame.subject !== 'string') return;
        this.handlers.get(frame.sid)?.(Buffer.from(frame.data, 'base64'), typeof frame.reply === 'string' ? frame.reply : undefined, frame.subject);
      },
      () => undefined,
    );
    socket.on('close', () => {
      this.open = false;
      for (const l of this.listeners) l('closed');
    });
  }

  /** Connects to this machine's agent; undefined when none listens there. */
  static connect(path: string = localAgentSocket()): Promise<LocalSocketBus | undefined> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.on('error', () => undefined);
        resolve(new LocalSocketBus(socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        socket.destroy();
        if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(undefined);
        else if (error.code === 'EACCES') reject(new Error(`this machine's Fay agent (${path}) answers root only`));
        else reject(error);
      });
    });
  }

  readonly local = false;

  get connected(): boolean {
    return this.open;
  }

  publish(subject: string, data: Uint8Array, reply?: string): void {
    send(this.socket, { op: 'pub', subject, ...(reply !== undefined && { reply }), data: Buffer.from(data).toString('base64') });
  }

  subscribe(subject: string, handler: BusHandler): () => void {
    const sid = this.nextSid++;
    this.handlers.set(sid, handler);
    send(this.socket, { op: 'sub', sid, subject });
    return () => {
      if (this.handlers.delete(sid)) send(this.socket, { op: 'unsub', sid });
    };
  }

  inbox(): string {
    return `_INBOX.${randomBytes(8).toString('hex')}`;
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): Promise<void> {
    this.handlers.clear();
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}
