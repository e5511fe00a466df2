import { randomBytes } from 'node:crypto';
import { release } from 'node:os';
import type { Bus } from '../bus/bus.js';
import {
  ClientMessage,
  PROTOCOL_VERSION,
  receiveMessage,
  SUBJECTS,
  writeMessage,
  type AgentAnnouncement,
  type AgentMessage,
  type QuerySpec,
} from '../bus/protocol.js';
import { FayError } from '../errors.js';
import { HostSelection } from '../plan/host-selection.js';
import { planStages } from '../plan/planner.js';
import { bindHostCondition } from '../query/binder.js';
import { compileQuery } from '../query/compile.js';
import { parseQuery } from '../query/parser.js';
import type { Agent } from './agent.js';
import { HostedQuery } from './hosted-query.js';
import { agentSettings, withWindowing } from './run-settings.js';
import { createAggregate } from '../agg/registry.js';
import { defaultStoreDir, storeName } from '../store/location.js';
import { LogWriter } from '../store/log-writer.js';
import type { TraceStore } from '../store/trace-store.js';

export interface AgentServiceOptions {
  /** Fay's version, announced. */
  readonly version: string;
  /** How often the agent says it is alive. */
  readonly heartbeatMs?: number;
  /** Notes for the operator (queries accepted, refused, expired). */
  readonly log?: (line: string) => void;
  /**
   * This machine's trace store, opened when a query first asks to persist (default: the directory
   * FAY_STORE_DIR or /var/lib/fay/store, a file named after the host).
   */
  readonly store?: () => Promise<TraceStore>;
}


/** How long a query whose lease ran out keeps what it held back for its client (see AgentService.lapsed). */
const HELD_BACK_MS = 10 * 60_000;

/** What a user error says, with its hint, as one line for the log. */
function reasonOf(error: unknown): string {
  if (error instanceof FayError) return error.hint ? `${error.message} (${error.hint})` : error.message;
  return error instanceof Error ? error.message : String(error);
}

/** A refusal as the client gets it: the message, and for a user's error its hint and exit code. */
export function refusal(error: unknown): { reason: string; hint?: string; exitCode?: 2 | 3 } {
  if (error instanceof FayError) return { reason: error.message, ...(error.hint !== undefined && { hint: error.hint }), exitCode: error.exitCode };
  return { reason: error instanceof Error ? error.message : String(error) };
}

/**
 * The agent of one machine on a bus: announces itself, accepts the queries
 * whose lease names it, runs their probe and machine stages, publishes
 * windows, and removes every probe when a query stops or its lease runs out.
 */
export class AgentService {
  readonly incarnation = randomBytes(6).toString('hex');
  private readonly queries = new Map<string, HostedQuery>();
  /** Runs of queries here so far: each run's windows count from 0 under an incarnation of its own. */
  private runs = 0;
  /** Queries that ended here, until their lease would have run out: late renewals must not restart them. */
  private readonly ended = new Map<string, number>();
  /**
   * Queries whose lease ran out while their client could not be heard, holding back what they
   * produced until then (a window, and their last word): the next renewal delivers it, and the
   * query rejoins. Kept at most HELD_BACK_MS.
   */
  private readonly lapsed = new Map<string, { query: HostedQuery; untilMs: number }>();
  private readonly unsubscribe: (() => void)[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private rejected = 0;
  private closing: Promise<void> | undefined;
  private readonly heartbeatMs: number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly bus: Bus,
    private readonly agent: Agent,
    private readonly options: AgentServiceOptions,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.log = options.log ?? (() => undefined);
  }

  get host(): string {
    return this.agent.host;
  }

  /** Subscribes and says hello. */
  start(): void {
    this.unsubscribe.push(
      this.bus.subscribe(SUBJECTS.lease, (data) => this.receive(data, undefined)),
      this.bus.subscribe(SUBJECTS.stop, (data) => this.receive(data, undefined)),
      this.bus.subscribe(SUBJECTS.list, (data, reply) => this.receive(data, reply)),
      this.bus.subscribe(SUBJECTS.ping, (data, reply) => this.receive(data, reply)),
    );
    this.bus.onStatus((status) => {
      if (status === 'reconnected') this.announce('hello');
      // Queries send again once their client renews: see HostedQuery.reachable.
      if (status === 'disconnected') for (const q of this.queries.values()) q.pause();
    });
    this.announce('hello');
    this.heartbeat = setInterval(() => this.announce('heartbeat'), this.heartbeatMs);
    this.heartbeat.unref();
  }

  private announcement(kind: AgentAnnouncement['kind']): AgentAnnouncement {
    return {
      v: PROTOCOL_VERSION,
      kind,
      host: this.host,
      incarnation: this.incarnation,
      version: this.options.version,
      kernel: release(),
      providers: this.agent.registry.providers.map((p) => p.name),
      queries: [...this.queries.keys()],
      rejected: this.rejected,
      heartbeatMs: this.heartbeatMs,
    };
  }

  /** On this host's own subject, where clients can tell it is this host speaking. */
  private announce(kind: AgentAnnouncement['kind']): void {
    if (this.bus.connected) this.bus.publish(SUBJECTS.host(this.host), writeMessage(this.announcement(kind)));
  }

  /** Every message from the bus comes through here: checked, then acted on; bad ones are counted and dropped. */
  private receive(data: Uint8Array, reply: string | undefined): void {
    const message = receiveMessage(ClientMessage, data, () => this.rejected++);
    if (message === undefined) return;
    switch (message.kind) {
      case 'ping':
        this.announce('hello');
        return;
      case 'list':
        if (reply !== undefined) {
          const queries = [...this.queries.values()].map((q) => ({ id: q.spec.id, text: q.spec.text, client: q.spec.client, startedNs: q.spec.startedNs }));
          this.bus.publish(reply, writeMessage({ v: PROTOCOL_VERSION, kind: 'running', host: this.host, queries }));
        }
        return;
      case 'lease':
        this.lease(message.spec);
        return;
      case 'stop':
        void this.queries.get(message.id)?.stop('stopped by its client', true);
        return;
    }
  }

  private selects(spec: QuerySpec): boolean {
    let on;
    try {
      on = bindHostCondition(parseQuery(spec.text), spec.text);
    } catch {
      return true; // Compiling it in full refuses it, with the reason.
    }
    return new HostSelection(on, spec.hosts).includes(this.host);
  }

  private lease(spec: QuerySpec): void {
    const now = Date.now();
    for (const [id, until] of this.ended) if (until < now) this.ended.delete(id);
    const running = this.queries.get(spec.id);
    if (running) {
      running.renew();
      return;
    }
    for (const [id, held] of this.lapsed) if (held.untilMs < now) this.lapsed.delete(id);
    const held = this.lapsed.get(spec.id);
    if (held) {
      // Heard again after its lease ran out: first what it held back, then the query runs again.
      this.lapsed.delete(spec.id);
      held.query.deliverHeldBack();
    }
    if (this.ended.has(spec.id) || this.closing || !this.selects(spec)) return;
    this.startQuery(spec);
  }

  private startQuery(spec: QuerySpec): void {
    const publish = (message: AgentMessage) => this.bus.publish(SUBJECTS.results(spec.id, this.host), writeMessage(message));
    const from = { v: PROTOCOL_VERSION, id: spec.id, host: this.host, incarnation: `${this.incarnation}.${++this.runs}` } as const;
    let compiled;
    let plan;
    try {
      plan = withWindowing(planStages(compileQuery(spec.text, this.agent.registry)), spec.options);
      // Every provider's options are checked, as the client checks them, whether or not the query reaches it.
      const providerOptions = spec.options.providers ?? {};
      this.agent.registry.checkOptions(providerOptions);
      compiled = this.agent.compile(plan, agentSettings(plan, { ...spec.options, providerOptions }));
    } catch (error) {
      this.log(`refused query ${spec.id} from ${spec.client}: ${reasonOf(error)}`);
      this.ended.set(spec.id, Date.now() + spec.leaseMs * 2);
      publish({ ...from, kind: 'status', state: 'refused', ...refusal(error) });
      return;
    }
    const persist = spec.options.persist;
    const writer =
      persist === undefined
        ? undefined
        : new LogWriter(
            () => this.traceStore(),
            { name: persist.name, query: spec.text, kind: plan.cluster.output.kind === 'Aggregate' ? 'windows' : 'events', retainMs: persist.retainMs },
            plan.cluster.output.kind === 'Aggregate' ? plan.cluster.output.aggregates.map(createAggregate) : [],
            (message) => hosted.notice(this.host, message),
          );
    if (writer) this.writers.add(writer);
    const hosted: HostedQuery = new HostedQuery(spec, plan, compiled, this.bus, from, {
      ...(writer && { persist: writer }),
      onAttached: () => this.log(`running query ${spec.id} from ${spec.client}: ${spec.text}`),
      onRefused: (error) => this.log(`could not attach query ${spec.id}: ${reasonOf(error)}`),
      onEnded: (why, final) => {
        this.queries.delete(spec.id);
        if (writer) void writer.drained().then(() => this.writers.delete(writer));
        if (!final && hosted.holdsBack) this.lapsed.set(spec.id, { query: hosted, untilMs: Date.now() + HELD_BACK_MS });
        // Stopped by its client: renewals still in flight must not start it again. A lease that ran
        // out (a cut-off) may be renewed again once the client is back, and then the query rejoins.
        if (final) this.ended.set(spec.id, Date.now() + spec.leaseMs * 2);
        this.log(`query ${spec.id} ended: ${why}`);
      },
      reasonOf,
      refusal,
    });
    this.queries.set(spec.id, hosted);
    hosted.start();
  }

  private store: Promise<TraceStore> | undefined;
  /** What persisting queries are writing (or wrote), for the store to close only after them. */
  private readonly writers = new Set<LogWriter>();

  /** This machine's trace store, opened once (DuckDB is loaded only then). */
  private traceStore(): Promise<TraceStore> {
    this.store ??= this.options.store
      ? this.options.store()
      : import('../store/trace-store.js').then(({ TraceStore }) => TraceStore.open(defaultStoreDir(), storeName(this.host)));
    return this.store;
  }

  /** Ids of the queries running here. */
  get running(): readonly string[] {
    return [...this.queries.keys()];
  }

  /** Stops every query (removing its probes), says goodbye and leaves the bus. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.heartbeat) clearInterval(this.heartbeat);
      await Promise.allSettled([...this.queries.values()].map((q) => q.stop('the agent is shutting down')));
      await Promise.allSettled([...this.writers].map((w) => w.drained()));
      if (this.store) await this.store.then((s) => s.close(), () => undefined);
      this.announce('bye');
      for (const u of this.unsubscribe) u();
    })();
    return this.closing;
  }
}
