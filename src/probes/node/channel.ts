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
  /** Each channel probe's messages since the attach (absent from older runtimes, and without channels). */
  readonly published?: Readonly<Record<string, number>>;
  /** Each paired probe's pairs begun and not ended, now (http:server: requests without their response yet). */
  readonly inFlight?: Readonly<Record<string, number>>;
}

/** Whether a message has a partial's parts (what a runtime sends is checked, never trusted). */
function wellFormed(message: object): boolean {
  const m = message as Partial<Record<keyof TargetPartial, unknown>>;
  return (
    Array.isArray(m.groups) &&
    m.groups.every((g: unknown) => typeof g === 'object' && g !== null && Array.isArray((g as { key?: unknown }).key) && Array.isArray((g as { s?: unknown }).s)) &&
    Array.isArray(m.rows) &&
    m.rows.every(Array.isArray) &&
    typeof m.dropped === 'number' &&
    typeof m.folded === 'number' &&
    Array.isArray(m.sampling) &&
    (m.pending === undefined || Array.isArray(m.pending)) &&
    counts(m.published) &&
    counts(m.inFlight)
  );
}

/** Absent, or counts by name. */
function counts(value: unknown): boolean {
  return value === undefined || (typeof value === 'object' && value !== null && Object.values(value).every((n) => typeof n === 'number'));
}

/** Whether a message carries sources, URL → text (what a runtime sends is checked, never trusted). */
function sourcesIn(message: object): message is { sources: Record<string, string> } {
  const { sources } = message as { sources?: unknown };
  return typeof sources === 'object' && sources !== null && !Array.isArray(sources) && Object.values(sources).every((s) => typeof s === 'string');
}

/**
 * Partials that came in one read, as one: groups and rows side by side (the reader merges groups
 * by key), counts summed, and what only the newest knows (pending calls, messages published so far) from the newest.
 */
function together(partials: readonly TargetPartial[]): TargetPartial | undefined {
  if (partials.length <= 1) return partials[0];
  const newest = partials.reduce((a, b) => (b.period > a.period ? b : a));
  return {
    type: 'partial',
    period: newest.period,
    groups: partials.flatMap((p) => p.groups),
    rows: partials.flatMap((p) => p.rows),
    dropped: partials.reduce((n, p) => n + p.dropped, 0),
    folded: partials.reduce((n, p) => n + p.folded, 0),
    sampling: partials.flatMap((p) => p.sampling),
    ...(newest.pending && { pending: newest.pending }),
    ...(newest.published && { published: newest.published }),
    ...(newest.inFlight && { inFlight: newest.inFlight }),
  };
}

/**
 * The connection of one runtime (one traced process) to this agent. A runtime answers a read on
 * its event loop, which the program may keep busy for seconds: a read waits only so long, and an
 * answer that comes later goes into the next read, never lost. While an answer is outstanding no
 * new read is asked for (the next answer covers the time since), except the query's last.
 */
export class TargetConnection {
  private buffer = '';
  /** Periods asked for and not answered yet. */
  private readonly asked = new Set<number>();
  /** Answers not taken by a read yet (late ones, an exiting process's last). */
  private arrived: TargetPartial[] = [];
  private onArrival: (() => void) | undefined;
  /** Seconds of periods read without asking (an answer was outstanding): the next ask covers them. */
  private unaskedSeconds = 0;
  private onDetached: (() => void) | undefined;
  /** The connection is gone (the process ended, or hung up): nothing sent now is answered. */
  private ended = false;
  private saidExiting = false;
  /** Scripts the process loaded after the attach that the query's files name: URL → source (see sendEdits). */
  onScripts: ((sources: Record<string, string>) => void) | undefined;
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    readonly pid: number,
    private readonly onNotice: (message: string) => void,
  ) {
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        resolve();
      }),
    );
    void this.closed.then(() => {
      this.onArrival?.();
      this.onDetached?.();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk.toString('utf8')));
    socket.on('error', () => undefined);
  }

  /** Whether the process said it was exiting (and sent what it had counted) before the connection ended. */
  get exited(): boolean {
    return this.saidExiting;
  }

  /** Whether the connection is gone and everything that came over it has been read. */
  get gone(): boolean {
    return this.ended && this.arrived.length === 0;
  }

  /** Whether an answer is outstanding from a process still there: its program has kept its event loop from answering. */
  get slow(): boolean {
    return !this.ended && this.asked.size > 0;
  }

  /**
   * Reads what the process counted: asks for the partial of `period` (of `seconds`) unless an
   * earlier ask is outstanding, and waits for every outstanding answer up to `waitMs`. Gives all
   * that arrived meanwhile, as one; undefined if nothing did (the process is gone, or busy: a late
   * answer goes into a later read). `final`: the query's last, asked for in any case, after which
   * the probes count nothing (they go off as it is read).
   */
  async flush(period: number, capPerSecond: number, seconds: number, final = false, waitMs = 2000): Promise<TargetPartial | undefined> {
    this.unaskedSeconds += seconds;
    if (!this.ended && (this.asked.size === 0 || final)) {
      this.asked.add(period);
      this.send({ type: 'flush', period, capPerSecond, seconds: this.unaskedSeconds, ...(final && { final }) });
      this.unaskedSeconds = 0;
    }
    // Not a wait for the timeout once the process is gone: the other processes' partials, and the period, would be late for it.
    if (this.asked.size > 0 && !this.ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.onArrival = () => {
          if (this.asked.size === 0 || this.ended) done();
        };
      });
      this.onArrival = undefined;
    }
    const arrived = this.arrived;
    this.arrived = [];
    return together(arrived);
  }

  /** Asks the runtime to remove its probes; resolves once it has (or the connection is gone). */
  detach(timeoutMs = 5000): Promise<void> {
    if (this.ended) return Promise.resolve();
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

  /** The live edits of scripts the process loaded after the attach (answering onScripts). */
  sendEdits(edits: readonly unknown[]): void {
    this.send({ type: 'edits', edits });
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
      let message: { type?: string; period?: number; message?: string } | null;
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        continue;
      }
      if (typeof message !== 'object' || message === null) continue;
      if (message.type === 'partial' && typeof message.period === 'number' && this.asked.delete(message.period)) {
        if (wellFormed(message)) this.arrived.push(message as TargetPartial);
        else this.onNotice('it sent a malformed partial; it was skipped');
        this.onArrival?.();
      } else if (message.type === 'exiting' && wellFormed(message)) {
        // The process's last partial, sent as it exits: it has answered everything it ever will.
        this.saidExiting = true;
        this.asked.clear();
        this.arrived.push({ ...message, type: 'partial', period: Number.MAX_SAFE_INTEGER } as TargetPartial);
        this.onArrival?.();
      } else if (message.type === 'notice' && typeof message.message === 'string') {
        this.onNotice(message.message);
      } else if (message.type === 'scripts' && sourcesIn(message)) {
        this.onScripts?.(message.sources);
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

  /** A runtime's connection made elsewhere and handed over (see NetnsBridge), taken as one to the socket. */
  adopt(socket: Socket): void {
    this.accept(socket);
    socket.resume();
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
      let hello: { type?: string; token?: string; pid?: number } | null;
      try {
        hello = JSON.parse(buffer.slice(0, at)) as typeof hello;
      } catch {
        socket.destroy();
        return;
      }
      // Anyone on the machine may connect to the socket: what comes is checked, never trusted.
      if (typeof hello !== 'object' || hello === null) {
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
