import { randomBytes } from 'node:crypto';
import type { Bus } from '../bus/bus.js';
import { ClientMessage, PROTOCOL_VERSION, receiveMessage, SUBJECTS, writeMessage, type AgentMessage, type QuerySpec } from '../bus/protocol.js';

/**
 * A synthetic agent: a real connection to the bus speaking Fay's protocol as an agent does
 * (announcements, heartbeats, leases, windows on its shard's subject, the last window and done at
 * the stop), faked only in that its windows are generated instead of coming from probes: `groups`
 * groups of `count() by comm`, group j counting `weight × (j + 1)` in every window. So a window
 * covering a set of hosts counts exactly (j + 1) × the sum of their weights, which is what the
 * tree tests check, and a count twice or a zero shows.
 */
export class SyntheticAgent {
  readonly incarnation = randomBytes(4).toString('hex');
  private readonly runs = new Map<string, { timer: NodeJS.Timeout; send: (last: boolean) => void }>();
  private readonly attachSpreadMs: number;
  private readonly table: string;
  private readonly beat: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[];
  /** Windows sent, over all queries. */
  windows = 0;

  constructor(
    readonly bus: Bus,
    readonly host: string,
    /** attachSpreadMs: each query starts (says accepted, sends windows) up to this long after its lease came, at random, as real agents attach at different times. */
    /** table: the window's group table in its wire form, instead of the counts made from groups and weight. */
    options: { groups: number; weight?: number; heartbeatMs?: number; attachSpreadMs?: number; table?: unknown },
  ) {
    this.attachSpreadMs = options.attachSpreadMs ?? 0;
    const keys = Array.from({ length: options.groups }, (_, j) => `proc-${j}`);
    const weight = options.weight ?? 1;
    this.table = JSON.stringify(options.table ?? { v: 1, arity: 1, keys, states: [keys.map((_, j) => weight * (j + 1))] });
    const heartbeatMs = options.heartbeatMs ?? 1000;
    this.unsubscribe = [
      bus.subscribe(SUBJECTS.ping, () => this.announce('hello', heartbeatMs)),
      bus.subscribe(SUBJECTS.lease, (data) => this.hear(data)),
      bus.subscribe(SUBJECTS.stop, (data) => this.hear(data)),
    ];
    this.announce('hello', heartbeatMs);
    this.beat = setInterval(() => this.announce('heartbeat', heartbeatMs), heartbeatMs);
    this.beat.unref();
  }

  private announce(kind: 'hello' | 'heartbeat' | 'bye', heartbeatMs: number): void {
    const queries = [...this.runs.keys()];
    this.bus.publish(
      kind === 'heartbeat' ? SUBJECTS.beat(this.host) : SUBJECTS.host(this.host),
      writeMessage({ v: PROTOCOL_VERSION, kind, host: this.host, incarnation: this.incarnation, version: 'synthetic', kernel: 'none', providers: [], queries, rejected: 0, heartbeatMs }),
    );
  }

  private hear(data: Uint8Array): void {
    const message = receiveMessage(ClientMessage, data, () => undefined);
    if (message?.kind === 'lease' && !this.runs.has(message.spec.id)) this.start(message.spec);
    if (message?.kind === 'stop') this.stop(message.id);
  }

  private publish(spec: QuerySpec, message: AgentMessage | Uint8Array, kind: AgentMessage['kind']): void {
    const data = message instanceof Uint8Array ? message : writeMessage(message);
    if (kind === 'window' || (spec.tree !== undefined && (kind === 'status' || kind === 'done'))) this.bus.publish(SUBJECTS.windows(spec.id, this.host), data);
    if (kind !== 'window') this.bus.publish(SUBJECTS.results(spec.id, this.host), data);
  }

  private start(spec: QuerySpec): void {
    const from = { v: PROTOCOL_VERSION, id: spec.id, host: this.host, incarnation: `${this.incarnation}.1` } as const;
    const periodMs = spec.tree?.periodMs ?? spec.options.everyMs ?? spec.options.refreshMs ?? 1000;
    let seq = 0;
    let startMs = Date.now();
    const head = JSON.stringify({ ...from, kind: 'window' }).slice(0, -1);
    const send = (last: boolean) => {
      const endMs = Date.now();
      const body = `${head},"seq":${seq},"seqEnd":${seq},"part":0,"parts":1,"startNs":${startMs * 1e6},"endNs":${endMs * 1e6},"droppedEvents":0,"uncountedEvents":0,"table":${this.table}}`;
      this.publish(spec, Buffer.from(body), 'window');
      this.windows++;
      seq++;
      startMs = endMs;
      if (last) this.publish(spec, { ...from, kind: 'done', windows: seq, stopped: true }, 'done');
    };
    const run = {
      timer: setTimeout(() => {
        startMs = Date.now();
        run.timer = setInterval(() => send(false), periodMs);
        this.publish(spec, { ...from, kind: 'status', state: 'accepted' }, 'status');
      }, Math.random() * this.attachSpreadMs),
      send,
    };
    this.runs.set(spec.id, run);
  }

  private stop(id: string): void {
    const run = this.runs.get(id);
    if (run === undefined) return;
    clearInterval(run.timer);
    this.runs.delete(id);
    run.send(true);
  }

  /** Gone as a crashed agent is: no last window, no done, no bye. */
  crash(): void {
    clearInterval(this.beat);
    for (const run of this.runs.values()) clearInterval(run.timer);
    this.runs.clear();
    for (const u of this.unsubscribe) u();
  }

  /** Leaves as a stopped agent does: its queries' last windows and done, then bye. */
  close(): void {
    for (const id of [...this.runs.keys()]) this.stop(id);
    clearInterval(this.beat);
    for (const u of this.unsubscribe) u();
    this.announce('bye', 1000);
  }
}
