import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const BRIDGE = fileURLToPath(new URL('./target/netns-bridge.cjs', import.meta.url));

/**
 * The agent's side of target/netns-bridge.cjs, for a process in another network namespace than the
 * agent's (a container, ip netns exec): its inspector opens on that namespace's 127.0.0.1, and its
 * runtime connects back by an abstract socket name, also that namespace's. The bridge runs there
 * (nsenter --net, which needs root) and carries both: one attach, one bridge, until its
 * connections end.
 */
export class NetnsBridge {
  private readonly lines: string[] = [];
  private readonly waiting: ((line: string | undefined) => void)[] = [];
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! })
      .on('line', (line) => {
        const waiter = this.waiting.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      })
      .on('close', () => {
        for (const waiter of this.waiting.splice(0)) waiter(undefined);
      });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    // Its pipes end with it; an agent that goes away ends them for it.
    child.stdin!.on('error', () => undefined);
    child.on('error', () => undefined);
  }

  /**
   * Starts a bridge in the network namespace of process `pid`, to its inspector on `port`, and,
   * given the agent's channel (its abstract socket name), from that name there to the channel here.
   * Rejects with why it could not enter the namespace.
   */
  static async start(pid: number, port: number, channel: string | undefined): Promise<NetnsBridge> {
    // The channel's connection is made here, in the agent's namespace, and handed to the bridge.
    const agentEnd = channel === undefined ? undefined : connect({ path: channel });
    if (agentEnd) await once(agentEnd, 'connect');
    const name = channel?.replace(/^\0/, '') ?? '';
    const child = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, '--', process.execPath, BRIDGE, String(port), name], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', agentEnd ?? 'ignore'],
    });
    // The bridge holds the connection now; this copy of it goes (closed, not ended: it stays open there).
    agentEnd?.destroy();
    const bridge = new NetnsBridge(child);
    if ((await bridge.next()) === 'ready') return bridge;
    if (child.exitCode === null) child.kill();
    await once(child, 'close');
    throw new Error(bridge.stderr.trim().split('\n').pop() || `the bridge ended (${child.exitCode ?? child.signalCode})`);
  }

  private next(): Promise<string | undefined> {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Tries the inspector's port in the namespace once: the connection to it, or undefined if nothing listens there. */
  async connectToPort(): Promise<Socket | undefined> {
    this.child.stdin!.write('ask\n');
    return (await this.next()) === 'connected' ? (this.child.stdio[3] as Socket) : undefined;
  }

  /** No more tries of the port: the bridge ends once its connections have. */
  done(): void {
    this.child.stdin!.end();
  }

  /** Ends the bridge now, and the connections it carries. */
  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }
}
