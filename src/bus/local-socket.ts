import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
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
 *
 * A connection whose first frame is a query is a command handing its query to the agent
 * (cli/served-query.ts): the agent runs it and sends back what the command is to print.
 *
 *   → {"op":"query","version":"0.1.0","text":"…","flags":{"json":true,"every":"10ms"}}   {"op":"stop"}
 *   ← {"op":"out","data":"…"}   {"op":"err","data":"…"}   {"op":"exit","code":0}   {"op":"refused","why":"…"}
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
  version?: unknown;
  text?: unknown;
  flags?: unknown;
}

/** A query a command on this machine hands to the agent: the Fay that sends it, the FayQL, the command's flags. */
export interface QueryRequest {
  readonly version: string;
  readonly text: string;
  readonly flags: Readonly<Record<string, string | boolean>>;
}

/** The agent's side of a query a command handed it. */
export interface ServedQuery {
  readonly request: QueryRequest;
  /** What the command prints on its standard output and error; writing waits while the command is slow to print. */
  readonly out: Writable;
  readonly err: Writable;
  /** The command exits with `code`; the connection ends. */
  exit(code: number): void;
  /** The agent does not run it: the command runs it itself. Only before anything else was sent. */
  refuse(why: string): void;
  /** Whether the command went away (killed, or its connection cut). */
  readonly gone: boolean;
  /** Calls the listener when the command asks to stop (its Ctrl-C); returns how to stop listening. */
  onStop(listener: () => void): () => void;
  /** Calls the listener when the command goes away; returns how to stop listening. */
  onGone(listener: () => void): () => void;
}

/** A served query's stop: whether the command asked for it, and who listens. */
interface Stops {
  asked: boolean;
  readonly listeners: Set<() => void>;
}

/** Reads a query frame; undefined when it is not one. */
function queryRequest(frame: Frame): QueryRequest | undefined {
  if (frame.op !== 'query' || typeof frame.version !== 'string' || typeof frame.text !== 'string') return undefined;
  if (typeof frame.flags !== 'object' || frame.flags === null || Array.isArray(frame.flags)) return undefined;
  const flags: Record<string, string | boolean> = {};
  for (const [name, value] of Object.entries(frame.flags)) {
    if (typeof value !== 'string' && typeof value !== 'boolean') return undefined;
    flags[name] = value;
  }
  return { version: frame.version, text: frame.text, flags };
}

/** A stream whose writes go to the command as `op` frames, each write done once the socket took it (or the command is gone). */
function frameStream(socket: Socket, op: 'out' | 'err'): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      if (socket.destroyed) return done();
      if (socket.write(`${JSON.stringify({ op, data: String(chunk) })}\n`)) return done();
      const resume = () => {
        socket.off('drain', resume);
        socket.off('close', resume);
        done();
      };
      socket.on('drain', resume);
      socket.on('close', resume);
    },
  });
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
    private readonly serveQuery: ((query: ServedQuery) => void) | undefined,
  ) {}

  /**
   * Listens at `path`. A socket left by an agent that was killed is taken over; one another agent
   * answers on is an error that says so. `serveQuery` runs the queries commands hand over (none
   * given: each is refused, and the command runs it itself).
   */
  static async listen(bus: InProcessBus, path: string, serveQuery?: (query: ServedQuery) => void): Promise<LocalBusServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (await answers(path)) throw new Error(`another Fay agent already listens at ${path}`);
    try {
      unlinkSync(path);
    } catch {
      // None was left.
    }
    const server = createServer();
    const local = new LocalBusServer(server, path, serveQuery);
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
    let framesRead = 0;
    let query: Stops | undefined;
    const take = (frame: Frame) => {
      if (framesRead++ === 0 && frame.op === 'query') {
        query = { asked: false, listeners: new Set() };
        this.hand(socket, frame, query);
      } else if (query !== undefined) {
        if (frame.op === 'stop' && !query.asked) {
          query.asked = true;
          for (const listener of [...query.listeners]) listener();
        }
      } else if (frame.op === 'sub' && typeof frame.sid === 'number' && typeof frame.subject === 'string') {
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

  /** A command's query, handed to serveQuery (or refused). */
  private hand(socket: Socket, frame: Frame, stop: Stops): void {
    const request = queryRequest(frame);
    let ended = false;
    const end = (last: Record<string, unknown>) => {
      if (ended) return;
      ended = true;
      if (!socket.destroyed) socket.end(`${JSON.stringify(last)}\n`);
    };
    const refuse = (why: string) => end({ op: 'refused', why });
    if (request === undefined) return refuse('a query frame needs a version, a text and flags');
    if (this.serveQuery === undefined) return refuse('this agent runs no query for a command');
    const served: ServedQuery = {
      request,
      out: frameStream(socket, 'out'),
      err: frameStream(socket, 'err'),
      // After everything written to out and err has gone.
      exit: (code) => {
        let open = 2;
        const finished = () => {
          if (--open === 0) end({ op: 'exit', code });
        };
        served.out.end(finished);
        served.err.end(finished);
      },
      refuse,
      get gone() {
        return socket.destroyed && !ended;
      },
      // A stop asked, or a command gone, before anyone listened is heard at once.
      onStop: (listener) => {
        if (stop.asked) queueMicrotask(listener);
        stop.listeners.add(listener);
        return () => void stop.listeners.delete(listener);
      },
      onGone: (listener) => {
        const heard = () => {
          if (!ended) listener();
        };
        if (socket.destroyed) queueMicrotask(heard);
        else socket.once('close', heard);
        return () => void socket.off('close', heard);
      },
    };
    this.serveQuery(served);
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
