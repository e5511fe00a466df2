import { randomBytes } from 'node:crypto';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { AggregateKind } from '../agg/aggregate.js';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import type { Bus } from '../bus/bus.js';
import { inParts, windowPart } from '../bus/parts.js';
import {
  AgentAnnouncement,
  AgentMessage,
  AggregatorAnnouncement,
  ClientMessage,
  MergedMessage,
  PROTOCOL_VERSION,
  receiveFromAggregator,
  receiveFromHost,
  receiveMessage,
  shardOf,
  SUBJECTS,
  writeMessage,
  type QuerySpec,
} from '../bus/protocol.js';
import { UsageError } from '../errors.js';
import { MISSED_HEARTBEATS } from './cluster-client.js';
import { shardsOf } from './merge-tree.js';
import { PeriodAligner, type HostWindow, type MergingPeriod } from './period-aligner.js';

export interface AggregatorOptions {
  /** Its name in the tree (its subjects' token): unique among the cluster's aggregators. */
  readonly name: string;
  /** How often it says it is alive, with its load. Default 500 ms: its hosts move within ~1.5 s of its death. */
  readonly heartbeatMs?: number;
  /** How long it listens for the other aggregators before taking shards. Default 2 heartbeats. */
  readonly settleMs?: number;
  /** Its level: 1 (the default) merges hosts' windows; n + 1 merges the partials of level n, for a deeper tree. */
  readonly level?: number;
  readonly version?: string;
}

/** What it counts between heartbeats, for its load. */
interface Counters {
  windows: number;
  partials: number;
}

/**
 * An aggregator of a merge tree (`fay aggregator`): between the agents and the client, it takes the
 * windows of the hosts in the shards it owns (merge-tree.ts), merges them per period as the client
 * would, and passes one partial up per period, naming the hosts in it. It learns a query from its
 * lease, as agents do, and forgets it when the lease runs out or the query is stopped and its hosts
 * said done. It keeps nothing on disk: a killed aggregator loses the periods it had not passed up,
 * which the client reports as its hosts' gaps.
 */
export class Aggregator {
  readonly incarnation = randomBytes(4).toString('hex');
  /** Its level in the tree: 1 takes hosts' windows, n + 1 the partials of level n. */
  readonly level: number;
  private readonly heartbeatMs: number;
  private readonly peers = new Map<string, { seenMs: number; heartbeatMs: number; gone: boolean; level: number }>();
  /** The hosts of its shards it heard (a heartbeat, a hello, a query's message): when, and how often they beat. */
  private readonly heard = new Map<string, { seenMs: number; heartbeatMs: number; gone: boolean }>();
  private readonly beats = new Map<string, () => void>();
  private readonly queries = new Map<string, TreeQuery>();
  private readonly unsubscribe: (() => void)[] = [];
  private owned: string[] = [];
  private ownedSet = new Set<string>();
  private settled = false;
  /** Another aggregator of its name answered while it settled. */
  private clash = false;
  private beat: NodeJS.Timeout | undefined;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private readonly counters: Counters = { windows: 0, partials: 0 };
  private countedSinceMs = Date.now();
  /** Messages dropped: malformed, oversize, another version, a host or aggregator posing as another. */
  rejected = 0;

  private constructor(
    readonly bus: Bus,
    private readonly options: AggregatorOptions,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 500;
    this.level = options.level ?? 1;
  }

  static async start(bus: Bus, options: AggregatorOptions): Promise<Aggregator> {
    const a = new Aggregator(bus, options);
    a.unsubscribe.push(
      bus.subscribe(SUBJECTS.aggregators, (data, _reply, subject) => a.hearPeer(data, subject)),
      bus.subscribe(SUBJECTS.ping, () => a.announce('hello')),
      bus.subscribe(SUBJECTS.lease, (data) => a.hearClient(data)),
      bus.subscribe(SUBJECTS.stop, (data) => a.hearClient(data)),
    );
    // The first level hears the hosts: it says which went quiet.
    if (a.level === 1) a.unsubscribe.push(bus.subscribe(SUBJECTS.hosts, (data, _reply, subject) => a.hearHost(data, subject)));
    a.announce('hello');
    a.beat = setInterval(() => a.heartbeat(), a.heartbeatMs);
    // Listens for the others before taking shards: taking all of them at once would double what the others merge.
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 2 * a.heartbeatMs));
    if (a.clash) {
      a.close(false);
      throw new UsageError(`another aggregator named ${a.name} is on the bus`, { hint: 'give each aggregator its own --name' });
    }
    a.settled = true;
    a.rebalance();
    return a;
  }

  get name(): string {
    return this.options.name;
  }

  /** The aggregators of its level alive as this one sees them, itself included. */
  live(now = Date.now()): string[] {
    const names = [...this.peers].filter(([n]) => this.peerAlive(n, this.level, now)).map(([n]) => n);
    return [...new Set([this.name, ...names])].sort();
  }

  /** Whether another aggregator of a level is alive: heard within three of its heartbeats, and no bye. */
  peerAlive(name: string, level: number, now = Date.now()): boolean {
    const p = this.peers.get(name);
    return p !== undefined && p.level === level && !p.gone && now - p.seenMs <= p.heartbeatMs * MISSED_HEARTBEATS;
  }

  /** The shards it owns now. */
  shards(): readonly string[] {
    return this.owned;
  }

  private announce(kind: 'hello' | 'heartbeat' | 'bye'): void {
    const now = Date.now();
    const seconds = Math.max(1e-3, (now - this.countedSinceMs) / 1000);
    const used = performance.eventLoopUtilization(this.elu);
    const announcement: AggregatorAnnouncement = {
      v: PROTOCOL_VERSION,
      kind,
      name: this.name,
      incarnation: this.incarnation,
      version: this.options.version ?? 'unknown',
      heartbeatMs: this.heartbeatMs,
      level: this.level,
      load: {
        busy: Math.min(1, Math.max(0, used.utilization)),
        windowsPerSecond: this.counters.windows / seconds,
        partialsPerSecond: this.counters.partials / seconds,
        hosts: this.level === 1 ? [...this.heard.keys()].filter((h) => this.hostAlive(h, now)).length : [...this.queries.values()].reduce((n, q) => Math.max(n, q.hostCount()), 0),
        queries: this.queries.size,
      },
      silent: this.silent(now),
      rejected: this.rejected,
    };
    if (kind === 'heartbeat') {
      this.elu = performance.eventLoopUtilization();
      this.counters.windows = 0;
      this.counters.partials = 0;
      this.countedSinceMs = now;
    }
    this.bus.publish(SUBJECTS.aggregator(this.name), writeMessage(announcement));
  }

  /** A host's hello, heartbeat or bye: what says whether it is alive, for the hosts of its shards. */
  private hearHost(data: Uint8Array, subject: string): void {
    const a = receiveFromHost(AgentAnnouncement, data, subject, () => this.rejected++);
    if (a === undefined) return;
    if (!this.ownedSet.has(shardOf(a.host))) return;
    this.heard.set(a.host, { seenMs: Date.now(), heartbeatMs: a.heartbeatMs, gone: a.kind === 'bye' });
  }

  /** A query's host of its shards said something: if it was never heard, it is from now on (and counted gone if it stays quiet). */
  noteHost(host: string, now = Date.now()): void {
    if (!this.heard.has(host)) this.heard.set(host, { seenMs: now, heartbeatMs: 1000, gone: false });
  }

  /** Whether a host of its shards is alive: heard within three of its heartbeats, and not gone. */
  hostAlive(host: string, now = Date.now()): boolean {
    const h = this.heard.get(host);
    return h !== undefined && !h.gone && now - h.seenMs <= h.heartbeatMs * MISSED_HEARTBEATS;
  }

  /** The hosts of its shards it heard and no longer hears (forgotten an hour after). */
  private silent(now: number): string[] {
    const quiet: string[] = [];
    for (const [host, h] of this.heard) {
      if (this.hostAlive(host, now)) continue;
      if (now - h.seenMs > 3_600_000) this.heard.delete(host);
      else quiet.push(host);
    }
    return quiet;
  }

  private heartbeat(): void {
    this.announce('heartbeat');
    this.rebalance();
    const now = Date.now();
    for (const [id, q] of this.queries) if (q.expired(now)) this.forget(id);
  }

  private hearPeer(data: Uint8Array, subject: string): void {
    const a = receiveFromAggregator(AggregatorAnnouncement, data, subject, () => this.rejected++);
    if (a === undefined) return;
    if (a.name === this.name) {
      // Two aggregators of one name would both take its shards.
      if (a.incarnation !== this.incarnation && !this.settled) this.clash = true;
      // The newcomer learns at once that the name is taken.
      if (a.incarnation !== this.incarnation && this.settled && a.kind === 'hello') this.announce('hello');
      return;
    }
    const known = this.peers.has(a.name) && !this.peers.get(a.name)!.gone;
    this.peers.set(a.name, { seenMs: Date.now(), heartbeatMs: a.heartbeatMs, gone: a.kind === 'bye', level: a.level });
    // A newcomer learns the others at once from their answers.
    if (a.kind === 'hello' && !known) this.announce('hello');
    if (!known || a.kind === 'bye') this.rebalance();
  }

  /** Takes the shards it owns among the live aggregators, and gives up the others. */
  private rebalance(): void {
    if (!this.settled) return;
    const owned = shardsOf(this.name, this.live());
    if (owned.join() === this.owned.join()) return;
    this.owned = owned;
    this.ownedSet = new Set(owned);
    // The heartbeats of its shards' hosts: it vouches for them to the clients.
    for (const [shard, unsubscribe] of this.beats) {
      if (this.ownedSet.has(shard)) continue;
      unsubscribe();
      this.beats.delete(shard);
    }
    for (const shard of this.level === 1 ? owned : []) {
      if (!this.beats.has(shard)) this.beats.set(shard, this.bus.subscribe(SUBJECTS.beatsOfShard(shard), (data, _reply, subject) => this.hearHost(data, subject)));
    }
    for (const host of [...this.heard.keys()]) if (!this.ownedSet.has(shardOf(host))) this.heard.delete(host);
    for (const q of this.queries.values()) q.own(owned);
  }

  private hearClient(data: Uint8Array): void {
    const message = receiveMessage(ClientMessage, data, () => this.rejected++);
    if (message === undefined) return;
    if (message.kind === 'lease') {
      const spec = message.spec;
      if (spec.tree === undefined || spec.standing !== undefined) return;
      let q = this.queries.get(spec.id);
      if (q === undefined) {
        q = new TreeQuery(this, spec, this.counters, () => this.forget(spec.id));
        this.queries.set(spec.id, q);
        q.own(this.owned);
      }
      q.renew();
    } else if (message.kind === 'stop') {
      this.queries.get(message.id)?.stop();
    }
  }

  private forget(id: string): void {
    this.queries.get(id)?.close();
    this.queries.delete(id);
  }

  /** Leaves the tree: says bye (the others take its shards at once); what it had not passed up is lost. */
  close(sayBye = true): void {
    if (this.beat) clearInterval(this.beat);
    for (const id of [...this.queries.keys()]) this.forget(id);
    for (const u of [...this.unsubscribe, ...this.beats.values()]) u();
    if (sayBye) this.announce('bye');
  }
}

/** What an aggregator knows of one source in one query: a host (level 1), or an aggregator of the level below. */
interface TreeHost {
  /** When its latest message came (ms). */
  heardMs: number;
  /** It said done (or refused, or final): not waited for any more. */
  ended: boolean;
  /** An aggregator below: the hosts of its latest partial. */
  hosts?: number;
}

/**
 * One query on one aggregator: the windows of its shards' hosts (level 1), or the partials of the
 * aggregators below whose names fall in its shards (a deeper level), merged per period and passed up.
 */
class TreeQuery {
  private readonly kinds: readonly AggregateKind[];
  private readonly maxGroups: number;
  private readonly periodMs: number;
  private readonly aligner: PeriodAligner;
  private readonly subscriptions = new Map<string, () => void>();
  private readonly hosts = new Map<string, TreeHost>();
  private leftOut: { host: string; startNs: number; endNs: number }[] = [];
  private seq = 0;
  private renewedMs = Date.now();
  private stoppedMs: number | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Bumped when a host comes, goes or ends: what expected() worked out is stale. */
  private version = 0;
  private cached: { version: number; atMs: number; value: { all: string[]; alive: Set<string> } } | undefined;

  constructor(
    private readonly aggregator: Aggregator,
    private readonly spec: QuerySpec,
    private readonly counters: Counters,
    private readonly done: () => void,
  ) {
    const tree = spec.tree!;
    this.kinds = tree.aggregates.map(createAggregate);
    this.maxGroups = tree.maxGroups;
    this.periodMs = tree.periodMs;
    // The client's own grace: a period closes once every host it expects delivered, or half a period after its first part.
    this.aligner = new PeriodAligner(this.periodMs, Math.max(250, this.periodMs / 2), tree.running, {
      onPeriod: (period) => this.passUp(period),
      onLate: (w) => {
        for (const host of w.hosts) this.leftOut.push({ host, startNs: w.startNs, endNs: w.endNs });
      },
      expected: () => this.expected(),
      empty: () => new GroupTable(this.kinds, { maxGroups: this.maxGroups }),
      // Above the first level, a period waits for every live aggregator below, each with its own hosts.
      ...(aggregator.level > 1 && { complete: (period: MergingPeriod) => this.childrenIn(period) }),
    }, true);
    this.aligner.begin();
  }

  /** The hosts it merges: its own (level 1), or those of its latest partials from below. */
  hostCount(): number {
    if (this.aggregator.level === 1) return this.hosts.size;
    return [...this.hosts.values()].reduce((n, s) => n + (s.hosts ?? 0), 0);
  }

  /** Above the first level: every aggregator below that is alive and not finished has its whole partial in the period. */
  private childrenIn(period: MergingPeriod): boolean {
    const now = Date.now();
    for (const [name, s] of this.hosts) {
      if (s.ended || !this.aggregator.peerAlive(name, this.aggregator.level - 1, now)) continue;
      const got = period.parts.get(name);
      if (got === undefined || got.received < got.parts) return false;
    }
    return true;
  }

  /**
   * Hosts it knows run the query here, and which of them it still waits for each period (heard
   * within a few periods, not ended). Asked at every window: worked out again when a host comes,
   * goes or ends, and otherwise at most every 100 ms.
   */
  private expected(): { all: string[]; alive: Set<string> } {
    const now = Date.now();
    if (this.cached !== undefined && this.cached.version === this.version && now - this.cached.atMs < 100) return this.cached.value;
    const all = [...this.hosts.keys()];
    const silentMs = MISSED_HEARTBEATS * this.periodMs + 1000;
    const level = this.aggregator.level;
    const alive = new Set(all.filter((h) => {
      const s = this.hosts.get(h)!;
      if (s.ended) return false;
      return level === 1 ? this.aggregator.hostAlive(h, now) || now - s.heardMs <= silentMs : this.aggregator.peerAlive(h, level - 1, now);
    }));
    this.cached = { version: this.version, atMs: now, value: { all, alive } };
    return this.cached.value;
  }

  /** Listens to the shards it owns now, and no longer to the others. */
  own(shards: readonly string[]): void {
    if (this.closed) return;
    const wanted = new Set(shards);
    for (const [shard, unsubscribe] of this.subscriptions) {
      if (wanted.has(shard)) continue;
      unsubscribe();
      this.subscriptions.delete(shard);
    }
    for (const shard of wanted) {
      if (this.subscriptions.has(shard)) continue;
      const subject = this.aggregator.level === 1 ? SUBJECTS.windowsOfShard(this.spec.id, shard) : SUBJECTS.mergedOfShard(this.spec.id, this.aggregator.level - 1, shard);
      this.subscriptions.set(shard, this.aggregator.bus.subscribe(subject, (data, _reply, on) => (this.aggregator.level === 1 ? this.receive(data, on) : this.receiveMerged(data, on))));
    }
    // Hosts of shards it gave up are another's now.
    for (const host of [...this.hosts.keys()]) if (!wanted.has(shardOf(host)) && this.hosts.delete(host)) this.version++;
  }

  private receive(data: Uint8Array, subject: string): void {
    const message = receiveFromHost(AgentMessage, data, subject, () => this.aggregator.rejected++);
    if (message === undefined || message.id !== this.spec.id) return;
    const host = this.heard(message.host);
    const ended = host.ended;
    switch (message.kind) {
      case 'status':
        host.ended = message.state === 'refused';
        break;
      case 'window':
        if (!this.add(message.table, { ...message, source: message.host, hosts: [message.host] })) return;
        host.ended = false;
        break;
      case 'done':
        host.ended = true;
        break;
      default:
        break;
    }
    if (host.ended !== ended) this.version++;
    this.checkFinished();
  }

  /** A partial of an aggregator of the level below, in a shard it owns. */
  private receiveMerged(data: Uint8Array, subject: string): void {
    const message = receiveFromAggregator(MergedMessage, data, subject, () => this.aggregator.rejected++);
    if (message === undefined || message.id !== this.spec.id) return;
    const child = this.heard(message.aggregator);
    if (message.kind === 'final') {
      child.ended = true;
      this.version++;
      this.aligner.closeReady();
      this.checkFinished();
      return;
    }
    if (!this.add(message.table, { ...message, source: message.aggregator, seqEnd: message.seq })) return;
    child.hosts = message.hosts.length;
    this.leftOut.push(...message.leftOut);
    this.checkFinished();
  }

  /** A source heard now: a host (level 1) or an aggregator below, known from its first message on. */
  private heard(name: string): TreeHost {
    let source = this.hosts.get(name);
    if (source === undefined) {
      this.hosts.set(name, (source = { heardMs: Date.now(), ended: false }));
      if (this.aggregator.level === 1) this.aggregator.noteHost(name);
      this.version++;
    }
    source.heardMs = Date.now();
    return source;
  }

  /** A window's or partial's table into its period; one that does not decode is left out (its hosts uncovered there, never a zero): false. */
  private add(wire: unknown, w: Omit<HostWindow, 'table'>): boolean {
    let table: GroupTable;
    try {
      table = GroupTable.decode(this.kinds, wire, { maxGroups: this.maxGroups });
    } catch {
      this.aggregator.rejected++;
      return false;
    }
    this.counters.windows++;
    this.aligner.add({ ...w, table });
    return true;
  }

  private passUp(period: { table: GroupTable; startNs: number; endNs: number; hosts: readonly string[]; droppedEvents: number; uncountedEvents: number }): void {
    const seq = this.seq++;
    if (period.hosts.length === 0 && this.leftOut.length === 0) return;
    const from = { v: PROTOCOL_VERSION, id: this.spec.id, aggregator: this.aggregator.name, incarnation: this.aggregator.incarnation } as const;
    const leftOut = this.leftOut;
    this.leftOut = [];
    const message = (part: number, parts: number, table: unknown): MergedMessage => ({
      ...from,
      kind: 'merged',
      seq,
      ...windowPart(part, parts, period),
      hosts: [...period.hosts],
      leftOut: part === 0 ? leftOut : [],
      table,
    });
    for (const p of inParts(period.table, message, (m) => writeMessage(m, !this.aggregator.bus.local))) {
      this.aggregator.bus.publish(SUBJECTS.merged(this.spec.id, this.aggregator.level, this.aggregator.name), p.bytes);
    }
    this.counters.partials++;
  }

  renew(): void {
    this.renewedMs = Date.now();
  }

  /** No renewal for a lease (its client is gone), and not stopping: forgotten. */
  expired(now: number): boolean {
    return this.stoppedMs === undefined && now - this.renewedMs > this.spec.leaseMs;
  }

  /** The query is stopping: what comes now are its hosts' last windows, then their done. */
  stop(): void {
    if (this.stoppedMs !== undefined) return;
    this.stoppedMs = Date.now();
    this.aligner.hold(Date.now() * 1e6);
    this.checkFinished();
  }

  /**
   * Once every host it waits for said done, passes up the rest and says final. A host that stays
   * silent is not waited for beyond a few periods after the last word of any (its client reports it).
   */
  private checkFinished(): void {
    if (this.stoppedMs === undefined || this.closed) return;
    const { alive } = this.expected();
    if (alive.size > 0) {
      const latest = Math.max(this.stoppedMs, ...[...this.hosts.values()].map((h) => h.heardMs));
      if (this.finishTimer) clearTimeout(this.finishTimer);
      this.finishTimer = setTimeout(() => this.finish(), Math.max(0, latest + Math.max(5000, 2 * this.periodMs) - Date.now()));
      this.finishTimer.unref();
      return;
    }
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.aligner.finish();
    const final: MergedMessage = { v: PROTOCOL_VERSION, id: this.spec.id, aggregator: this.aggregator.name, incarnation: this.aggregator.incarnation, kind: 'final', hosts: this.hosts.size };
    this.aggregator.bus.publish(SUBJECTS.merged(this.spec.id, this.aggregator.level, this.aggregator.name), writeMessage(final));
    this.done();
  }

  close(): void {
    this.closed = true;
    if (this.finishTimer) clearTimeout(this.finishTimer);
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
  }
}
