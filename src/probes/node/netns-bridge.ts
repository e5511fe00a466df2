import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

const BRIDGE = fileURLToPath(new URL('./target/netns-bridge.cjs', import.meta.url));
/** How long a bridge stays after its last use: the queries of a session attach again and again. */
const IDLE_MS = 60_000;
/** How long a bridge may take to start (nsenter, then Node.js: ~100 ms here). */
const START_TIMEOUT_MS = 10_000;

/** Where runtimes in that namespace connect back to: the agent's channel, by name, and what takes their connections. */
export interface ChannelEnd {
  readonly path: string;
  adopt(socket: Socket): void;
}

type FromBridge = { type: 'ready' } | { type: 'link' } | { type: 'connected'; id: number } | { type: 'refused'; id: number };

/**
 * The agent's side of target/netns-bridge.cjs, for processes in another network namespace than the
 * agent's (a container, ip netns exec): their inspectors open on that namespace's 127.0.0.1, and
 * their runtimes connect back by an abstract socket name, also that namespace's. The bridge runs
 * there (nsenter --net, which needs root), makes those connections, and hands each over (a socket
 * sent over IPC), so that nothing goes through it once they are made. One per namespace and
 * channel, kept a minute after its last use.
 */
export class NetnsBridge {
  private static readonly running = new Map<string, Promise<NetnsBridge>>();
  private readonly asked = new Map<number, (socket: Socket | undefined) => void>();
  private nextId = 0;
  private idle: NodeJS.Timeout | undefined;

  private constructor(
    private readonly child: ChildProcess,
    key: string,
    /** Whose runtimes' connections this bridge hands over (none: it listens for none). */
    channel: ChannelEnd | undefined,
  ) {
    child.on('message', (message: FromBridge, handle?: Socket) => {
      if (message?.type === 'link' && handle) {
        if (channel) channel.adopt(handle);
        else handle.destroy();
      } else if (message?.type === 'connected' || message?.type === 'refused') {
        const answer = this.asked.get(message.id);
        this.asked.delete(message.id);
        if (answer) answer(message.type === 'connected' ? handle : undefined);
        else handle?.destroy();
      }
    });
    // A message to a bridge that has just ended fails in send's callback; nothing here may throw.
    child.on('error', () => undefined);
    child.on('exit', () => {
      NetnsBridge.running.delete(key);
      for (const answer of this.asked.values()) answer(undefined);
      this.asked.clear();
    });
    this.waitIdle();
  }

  /**
   * The bridge into the network namespace `namespace` (as /proc names it) of process `pid`, for
   * the inspector on `port` and the agent's `channel` if the attach needs one: the running one, or
   * a new one. Rejects with why it could not enter the namespace.
   */
  static into(pid: number, namespace: string, port: number, channel: ChannelEnd | undefined): Promise<NetnsBridge> {
    const key = `${namespace} ${channel?.path ?? ''}`;
    let bridge = NetnsBridge.running.get(key);
    if (!bridge) {
      bridge = NetnsBridge.start(pid, port, channel, key);
      NetnsBridge.running.set(key, bridge);
      bridge.catch(() => NetnsBridge.running.delete(key));
    }
    return bridge;
  }

  private static start(pid: number, port: number, channel: ChannelEnd | undefined, key: string): Promise<NetnsBridge> {
    const name = channel?.path.replace(/^\0/, '') ?? '';
    const child = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, '--', process.execPath, BRIDGE, String(port), name], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    return new Promise((resolve, reject) => {
      const failed = (why: string) => {
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill();
        // nsenter's complaint, or the error Node.js printed above its stack and version.
        const said = stderr.split('\n').map((line) => line.trim());
        reject(new Error(said.find((line) => /^(nsenter:|\w*Error\b)/.test(line)) || said.find(Boolean) || why));
      };
      const timer = setTimeout(() => failed(`it did not start within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
      // Its stderr is whole once it has closed.
      const ended = (code: number | null, signal: NodeJS.Signals | null) => failed(`it ended (${code ?? signal})`);
      const unstarted = (error: Error) => failed(error.message);
      child.once('error', unstarted);
      child.once('close', ended);
      child.once('message', (message: FromBridge) => {
        if (message?.type !== 'ready') return failed('it said something else first');
        clearTimeout(timer);
        child.off('close', ended).off('error', unstarted);
        // The agent may end with it still there: it ends with its IPC channel.
        child.unref();
        child.channel?.unref();
        resolve(new NetnsBridge(child, key, channel));
      });
    });
  }

  /** Tries the inspector's port in the namespace once: the connection to it, or undefined if nothing listens there. */
  connectToPort(): Promise<Socket | undefined> {
    this.waitIdle();
    const id = ++this.nextId;
    return new Promise((resolve) => {
      if (!this.child.connected) return resolve(undefined);
      this.asked.set(id, resolve);
      this.child.send({ type: 'ask', id }, (error) => {
        if (error && this.asked.delete(id)) resolve(undefined);
      });
    });
  }

  /** Ends the bridge a minute after its last use; the connections it made stay. */
  private waitIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.child.kill(), IDLE_MS);
    this.idle.unref();
  }
}
