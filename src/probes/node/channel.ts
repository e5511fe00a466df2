import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';

/** One period's output of one traced process: partial groups, shipped rows, what was dropped or folded. */
export interface TargetPartial {
  readonly type: 'partial';
  readonly period: number;
  readonly groups: readonly { readonly key: unknown[]; readonly s: unknown[] }[];
  readonly rows: readonly unknown[][];
  readonly dropped: number;
  readonly folded: number;
  readonly sampling: readonly { readonly name: string; readonly every: number; readonly rate: number }[];
  /**
   * Calls of async functions begun but not settled (absent from older runtimes); awaitsSeen: a
   * rejection through one of the function's awaits would have ended them.
   */
  readonly pending?: readonly { readonly name: string; readonly calls: number; readonly awaitsSeen?: boolean }[];
}

/** The connection of one runtime (one traced process) to this agent. */
export class TargetConnection {
  private buffer = '';
  private readonly waiting = new Map<number, (p: TargetPartial | undefined) => void>();
  private onDetached: (() => void) | undefined;
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    readonly pid: number,
    private readonly onNotice: (message: string) => void,
  ) {
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    void this.closed.then(() => {
      for (const w of this.waiting.values()) w(undefined);
      this.waiting.clear();
      this.onDetached?.();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk.toString('utf8')));
    socket.on('error', () => undefined);
  }

  /**
   * Asks for the partial of a period; undefined if the process is gone or does not answer in time.
   * `final`: the query's last, after which its probes count nothing (they go off as it is read).
   */
  flush(period: number, capPerSecond: number, seconds: number, final = false, timeoutMs = 2000): Promise<TargetPartial | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(period);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(period, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
      this.send({ type: 'flush', period, capPerSecond, seconds, ...(final && { final }) });
    });
  }

  /** Asks the runtime to remove its probes; resolves once it has (or the connection is gone). */
  detach(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.onDetached = () => {
        clearTimeout(timer);
        resolve();
      };
      this.send({ type: 'detach' });
    });
  }

  /**
   * Resolves once the runtime has also taken its edits back out of the source and hung up (it
   * switches probes off first, at detach); after timeoutMs the connection is dropped instead.
   */
  done(timeoutMs = 5000): Promise<void> {
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    return this.closed.finally(() => clearTimeout(timer));
  }

  /** Hangs up: the runtime undoes whatever this connection's session installed. */
  close(): void {
    this.socket.destroy();
  }

  private send(message: unknown): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** Lines after the hello. Malformed ones are skipped: a traced process cannot crash the agent. */
  receive(text: string): void {
    this.buffer += text;
    let at: number;
    while ((at = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 1);
      let message: { type?: string; period?: number; message?: string };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        continue;
      }
      if (message.type === 'partial' && typeof message.period === 'number') {
        const w = this.waiting.get(message.period);
        this.waiting.delete(message.period);
        w?.(message as TargetPartial);
      } else if (message.type === 'notice' && typeof message.message === 'string') {
        this.onNotice(message.message);
      } else if (message.type === 'detached') {
        this.onDetached?.();
      }
    }
  }
}

/**
 * Where runtimes in traced processes connect back to this agent: an abstract
 * Unix socket (no file to leave behind) whose name and per-attach token only
 * the injected runtime knows.
 */
export class AgentChannel {
  /** Attaches under way: their token → what to do with the connection when its hello arrives. */
  private readonly expected = new Map<string, { resolve: (c: TargetConnection) => void; onNotice: (message: string) => void }>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async open(): Promise<AgentChannel> {
    const path = `\0fay-${process.pid}-${randomBytes(8).toString('hex')}`;
    const server = createServer();
    const channel = new AgentChannel(server, path);
    server.on('connection', (socket) => channel.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    server.unref();
    return channel;
  }

  /**
   * A new token for one attach, and a promise of its runtime's connection. `cancel` gives up on it:
   * a connection that came is closed (its runtime drops it), one still to come is refused.
   */
  expect(onNotice: (message: string) => void, timeoutMs = 5000): { token: string; connection: Promise<TargetConnection>; cancel(): void } {
    const token = randomBytes(16).toString('hex');
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const connection = new Promise<TargetConnection>((resolve, reject) => {
      timer = setTimeout(() => {
        this.expected.delete(token);
        reject(new Error('the runtime did not connect back to the agent'));
      }, timeoutMs);
      timer.unref();
      this.expected.set(token, {
        onNotice,
        resolve: (c) => {
          clearTimeout(timer);
          resolve(c);
        },
      });
    });
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      clearTimeout(timer);
      this.expected.delete(token);
      void connection.then((c) => c.close(), () => undefined);
    };
    return { token, connection, cancel };
  }

  close(): void {
    this.server.close();
  }

  private accept(socket: Socket): void {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const at = buffer.indexOf('\n');
      if (at < 0) {
        if (buffer.length > 4096) socket.destroy();
        return;
      }
      socket.off('data', onData);
      let hello: { type?: string; token?: string; pid?: number };
      try {
        hello = JSON.parse(buffer.slice(0, at)) as typeof hello;
      } catch {
        socket.destroy();
        return;
      }
      const expected = hello.type === 'hello' && typeof hello.token === 'string' ? this.expected.get(hello.token) : undefined;
      if (!expected || typeof hello.pid !== 'number') {
        socket.destroy();
        return;
      }
      this.expected.delete(hello.token!);
      const connection = new TargetConnection(socket, hello.pid, expected.onNotice);
      connection.receive(buffer.slice(at + 1));
      expected.resolve(connection);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  }
}
