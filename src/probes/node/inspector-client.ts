import { connect as tcpConnect, type Socket } from 'node:net';
import { OWN_URL } from './runtime/contract.js';
import { WebSocketClient } from './websocket.js';

/** A failed call of the inspector protocol: what the target said. */
export class InspectorCallError extends Error {
  constructor(
    readonly method: string,
    message: string,
  ) {
    super(`${method}: ${message}`);
    this.name = 'InspectorCallError';
  }
}

type Listener = (params: Record<string, unknown>) => void;

/** How long a call waits for the target's answer by default: FAY_INSPECTOR_TIMEOUT_MS, or 15 s. */
const CALL_TIMEOUT_MS = Number(process.env.FAY_INSPECTOR_TIMEOUT_MS) > 0 ? Number(process.env.FAY_INSPECTOR_TIMEOUT_MS) : 15_000;

/** A client of the Chrome DevTools protocol that Node's inspector speaks, over its WebSocket. */
export class InspectorClient {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void; method: string }>();
  private readonly listeners = new Map<string, Listener[]>();
  readonly closed: Promise<void>;

  /** The error a call that gets no answer in time rejects with (the caller's, that knows the process); by default an InspectorCallError. */
  onTimeout: ((method: string, timeoutMs: number) => Error) | undefined;

  private constructor(private readonly ws: WebSocketClient) {
    ws.onMessage((text) => this.receive(text));
    this.closed = ws.closed.then(() => {
      for (const p of this.pending.values()) p.reject(new InspectorCallError(p.method, 'the inspector connection closed'));
      this.pending.clear();
    });
  }

  /**
   * Opens the WebSocket at a target's debugger URL: on `socket` when given (a connection to that
   * port already open, such as the one its URL was listed on), else on a new connection; also if
   * that one fails, unless `reconnect` is false (where the URL's 127.0.0.1 is another network namespace's).
   */
  static async connect(url: string, socket?: Socket, { timeoutMs = 5000, reconnect = true } = {}): Promise<InspectorClient> {
    const { host, hostname, port, pathname } = new URL(url);
    const upgrade = async (on: Socket) => new InspectorClient(await WebSocketClient.upgrade(on, { host, path: pathname, timeoutMs, maxPayload: 256 << 20 }));
    if (socket?.writable) {
      try {
        return await upgrade(socket);
      } catch (error) {
        // The server may have closed it meanwhile: a connection of its own, then.
        if (!reconnect) throw error;
      }
    }
    return upgrade(await connected(hostname, Number(port), timeoutMs));
  }

  /** Calls a protocol method and resolves with its result. */
  call<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(this.onTimeout?.(method, timeoutMs) ?? new InspectorCallError(method, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /**
   * Evaluates an expression in the target and returns its value (by value); throws if it threw.
   * What Fay evaluates is Fay's own code: it says so by its URL (OWN_URL), in the target's CPU
   * profiles and its errors' stacks.
   */
  async evaluate<T>(expression: string, options: { awaitPromise?: boolean; timeoutMs?: number } = {}): Promise<T> {
    const reply = await this.call<{ result: { value?: unknown }; exceptionDetails?: { exception?: { description?: string }; text?: string } }>(
      'Runtime.evaluate',
      { expression: `${expression}\n//# sourceURL=${OWN_URL}`, returnByValue: true, awaitPromise: options.awaitPromise ?? false, includeCommandLineAPI: false, silent: true },
      options.timeoutMs,
    );
    if (reply.exceptionDetails) {
      throw new InspectorCallError('Runtime.evaluate', reply.exceptionDetails.exception?.description ?? reply.exceptionDetails.text ?? 'threw');
    }
    return reply.result.value as T;
  }

  on(event: string, listener: Listener): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }

  close(): void {
    this.ws.close();
  }

  private receive(text: string): void {
    let message: { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: Record<string, unknown> };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (message.id !== undefined) {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if (message.error) pending.reject(new InspectorCallError(pending.method, message.error.message ?? 'error'));
      else pending.resolve(message.result);
      return;
    }
    if (message.method) for (const l of this.listeners.get(message.method) ?? []) l(message.params ?? {});
  }
}

/** A new TCP connection to host:port, once it is open. */
function connected(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no connection to ${host}:${port} within ${timeoutMs} ms`)));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
