import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../bus/bus.js';
import {
  AgentAnnouncement,
  ClientMessage,
  PROTOCOL_VERSION,
  receiveFromHost,
  receiveMessage,
  SUBJECTS,
  writeMessage,
  type AgentMessage,
  QuerySpec,
  type StoredLogs,
  type StoreAnswer,
} from '../bus/protocol.js';
import { FayError, UsageError } from '../errors.js';
import { HostSelection } from '../plan/host-selection.js';
import { planStages, type StagedPlan } from '../plan/planner.js';
import { bindHostCondition } from '../query/binder.js';
import { compileQuery } from '../query/compile.js';
import { parseQuery } from '../query/parser.js';
import type { Agent } from './agent.js';
import { HostedQuery } from './hosted-query.js';
import type { MachineWindow } from './machine-stage.js';
import { agentSettings, withWindowing } from './run-settings.js';
import { createAggregate } from '../agg/registry.js';
import { defaultStoreDir, storeName } from '../store/location.js';
import { LogWriter } from '../store/log-writer.js';
import type { TraceStore } from '../store/trace-store.js';
import { storedSchemaOf } from '../store/schema.js';
import { StoredProvider } from '../probes/stored/provider.js';

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
  /**
   * Re-installs the standing queries its store keeps when it starts (`fay agent`); the embedded
   * cluster of one command does not.
   */
  readonly resumeStanding?: boolean;
  /** Holds the trace store under this many bytes: the oldest rows go first (default: no bound). */
  readonly storeMaxBytes?: number;
  /**
   * Where each standing query's windows go besides its log, as they close (`fay agent
   * --prometheus`: an endpoint serving them as metrics); `ended` when the query ends.
   */
  readonly standingWindows?: (log: string, plan: StagedPlan) => StandingWindows | undefined;
}

/** What takes a standing query's windows besides its log. */
export interface StandingWindows {
  window(window: MachineWindow): void;
  ended(): void;
}

/** The longest a Node.js timer waits (~24.8 days): a later --until is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;


/** How long agents tell each other of a standing query stopped with fay stop (an agent away longer resumes it). */
const STOPPED_TOLD_MS = 7 * 86_400_000;
/** At most this many of them in an announcement, the newest. */
const STOPPED_TOLD_MAX = 200;
/** How many times a resumed standing query's probes are tried before it is given up. */
const RESUME_ATTEMPTS = 4;
/** How long an agent hears the others' announcements after it resumed standing queries or came back to the bus. */
const PEERS_HEARD_MS = 10_000;

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
  /** Standing queries stopped with fay stop (id → when, ms), told in every announcement for a week. */
  private readonly stopped = new Map<string, number>();
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
      this.bus.subscribe(SUBJECTS.logs, (data, reply) => this.receive(data, reply)),
      this.bus.subscribe(SUBJECTS.store, (data, reply) => this.receive(data, reply)),
      this.bus.subscribe(SUBJECTS.ping, (data, reply) => this.receive(data, reply)),
    );
    this.bus.onStatus((status) => {
      if (status === 'reconnected') this.announce('hello');
      // A fay stop may have gone by while the bus was away.
      if (status === 'reconnected') this.listenToPeers();
      // Queries send again once their client renews: see HostedQuery.reachable.
      if (status === 'disconnected') for (const q of this.queries.values()) q.pause();
    });
    this.announce('hello');
    this.heartbeat = setInterval(() => this.announce('heartbeat'), this.heartbeatMs);
    this.heartbeat.unref();
    if (this.options.resumeStanding) this.resumed = this.resumeStanding().then(() => this.listenToPeers());
  }

  private peersHeard: { until: number; unsubscribe: () => void } | undefined;

  /**
   * Hears the other agents' announcements for a while (PEERS_HEARD_MS): after this agent resumed
   * standing queries or came back to the bus, for a fay stop that went by while it was away. Only
   * for a while: every agent hearing every other's heartbeats all the time would cost a cluster
   * the square of its size.
   */
  private listenToPeers(): void {
    if (this.closing !== undefined || ![...this.queries.values()].some((q) => q.spec.standing !== undefined)) return;
    const until = Date.now() + Math.max(PEERS_HEARD_MS, 3 * this.heartbeatMs);
    if (this.peersHeard) {
      this.peersHeard.until = until;
      return;
    }
    const hear = (data: Uint8Array, _reply: string | undefined, subject: string) => this.hearPeer(data, subject);
    const unsubscribe = [this.bus.subscribe(SUBJECTS.hosts, hear), this.bus.subscribe(SUBJECTS.beats, hear)];
    const heard = { until, unsubscribe: () => unsubscribe.forEach((u) => u()) };
    this.peersHeard = heard;
    const check = () => {
      if (Date.now() < heard.until && this.closing === undefined) return void setTimeout(check, heard.until - Date.now()).unref();
      heard.unsubscribe();
      this.peersHeard = undefined;
    };
    setTimeout(check, until - Date.now()).unref();
  }

  /** Settles once the standing queries the store kept are re-installed (or there were none). */
  resumed: Promise<void> = Promise.resolve();

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
      ...(this.stopped.size > 0 && { stopped: this.recentlyStopped() }),
    };
  }

  private recentlyStopped(): string[] {
    const since = Date.now() - STOPPED_TOLD_MS;
    for (const [id, at] of this.stopped) if (at < since) this.stopped.delete(id);
    return [...this.stopped].sort((a, b) => b[1] - a[1]).slice(0, STOPPED_TOLD_MAX).map(([id]) => id);
  }

  /**
   * Another agent's announcement: a standing query it says was stopped with fay stop, which this
   * agent runs (it was away then, and resumed it when it came back), is stopped here too. Only
   * stopping spreads between agents this way; an agent never starts a query on another's word.
   */
  private hearPeer(data: Uint8Array, subject: string): void {
    const peer = receiveFromHost(AgentAnnouncement, data, subject, () => this.rejected++);
    if (peer === undefined || peer.host === this.host || peer.stopped === undefined) return;
    for (const id of peer.stopped) {
      const query = this.queries.get(id);
      if (query?.spec.standing === undefined || this.stopped.has(id)) continue;
      void this.rememberStopped(id);
      void query.stop(`stopped with fay stop while this agent was away (${peer.host} says so)`, true);
    }
  }

  /** Remembers a standing query stopped with fay stop, to tell the agents that were away. */
  private async rememberStopped(id: string): Promise<void> {
    this.stopped.set(id, Date.now());
    try {
      await (await this.traceStore()).markStopped(id, Date.now() * 1e6, (Date.now() - STOPPED_TOLD_MS) * 1e6);
    } catch (error) {
      this.log(`could not keep that standing query ${id} was stopped: ${reasonOf(error)}`);
    }
  }

  /** On this host's own subject, where clients can tell it is this host speaking. */
  private announce(kind: AgentAnnouncement['kind']): void {
    if (this.bus.connected) this.bus.publish(kind === 'heartbeat' ? SUBJECTS.beat(this.host) : SUBJECTS.host(this.host), writeMessage(this.announcement(kind)));
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
        if (reply !== undefined) void this.answerList(reply);
        return;
      case 'logs':
        if (reply !== undefined) void this.answerLogs(reply);
        return;
      case 'store':
        if (reply !== undefined) void this.answerStore(message, reply);
        return;
      case 'lease':
        this.lease(message.spec);
        return;
      case 'stop': {
        const query = this.queries.get(message.id);
        if (query?.spec.standing !== undefined) void this.rememberStopped(message.id);
        void query?.stop('stopped by its client', true);
        return;
      }
    }
  }

  /** Which queries run here; for a standing one, what its log holds here. */
  private async answerList(reply: string): Promise<void> {
    const hosted = [...this.queries.values()];
    const sizes = new Map<string, { rows: number; bytes: number }>();
    if (hosted.some((q) => q.spec.standing !== undefined)) {
      try {
        for (const l of await (await this.traceStore()).list()) sizes.set(l.name, { rows: l.rows, bytes: l.bytes });
      } catch {
        // Sizes are left out; the list still answers.
      }
    }
    const queries = hosted.map((q) => {
      const log = q.spec.options.persist?.name;
      const size = (log !== undefined && sizes.get(log)) || { rows: 0, bytes: 0 };
      return {
        id: q.spec.id,
        text: q.spec.text,
        client: q.spec.client,
        startedNs: q.spec.startedNs,
        ...(q.spec.standing !== undefined && { standing: { ...(log !== undefined && { log }), ...size, ...(q.spec.standing.untilNs !== undefined && { untilNs: q.spec.standing.untilNs }) } }),
      };
    });
    this.bus.publish(reply, writeMessage({ v: PROTOCOL_VERSION, kind: 'running', host: this.host, queries }));
  }

  /** The logs this machine's store keeps (none when it has no store yet: asking does not make one). */
  private async answerLogs(reply: string): Promise<void> {
    const answer: StoredLogs = { v: PROTOCOL_VERSION, kind: 'logs', host: this.host, logs: [] };
    try {
      if (this.hasStore()) {
        answer.logs = (await (await this.traceStore()).logs()).map((l) => ({
          name: l.name,
          query: l.query,
          kind: l.kind,
          createdNs: l.createdNs,
          ...(l.retainMs !== undefined && { retainMs: l.retainMs }),
          ...(l.schema !== undefined && { schema: { columns: [...l.schema.columns], aggregates: l.schema.aggregates.map((a) => ({ ...a, params: [...a.params] })), argumentFields: [...l.schema.argumentFields] } }),
        }));
      }
    } catch (error) {
      answer.problem = reasonOf(error);
    }
    this.bus.publish(reply, writeMessage(answer));
  }

  /** fay store … through the agent that holds the store (a second process cannot open it while this one does). */
  private async answerStore(question: Extract<ClientMessage, { kind: 'store' }>, reply: string): Promise<void> {
    const answer: StoreAnswer = { v: PROTOCOL_VERSION, kind: 'store', host: this.host };
    try {
      if (question.op === 'list') {
        answer.logs = this.hasStore() ? (await (await this.traceStore()).list()).map(({ schema: _, ...summary }) => summary) : [];
      } else {
        if (question.log === undefined) throw new UsageError(`fay store ${question.op === 'remove' ? 'rm' : 'export'} needs the name of a log`);
        if (!this.hasStore()) throw new UsageError(`no stored log is named ${question.log}`, { hint: 'nothing is stored here yet' });
        const store = await this.traceStore();
        if (question.op === 'remove') await store.remove(question.log);
        else {
          if (question.dir === undefined) throw new UsageError('fay store export needs --parquet <dir>');
          await store.exportParquet(question.log, question.dir);
        }
      }
    } catch (error) {
      answer.problem = { message: error instanceof Error ? error.message : String(error), ...(error instanceof FayError && error.hint !== undefined && { hint: error.hint }), usage: error instanceof UsageError };
    }
    this.bus.publish(reply, writeMessage(answer));
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
    if (this.starting.has(spec.id)) return;
    for (const [id, held] of this.lapsed) if (held.untilMs < now) this.lapsed.delete(id);
    const held = this.lapsed.get(spec.id);
    if (held) {
      // Heard again after its lease ran out: first what it held back, then the query runs again.
      this.lapsed.delete(spec.id);
      held.query.deliverHeldBack();
    }
    if (this.ended.has(spec.id) || this.closing || !this.selects(spec)) return;
    void this.startQuery(spec, false);
  }

  /** Queries being compiled (a history query reads its store's logs first): a renewal meanwhile starts nothing. */
  private readonly starting = new Set<string>();

  private async startQuery(spec: QuerySpec, resumed: boolean, attempt = 1): Promise<void> {
    this.starting.add(spec.id);
    try {
      await this.startCompiled(spec, resumed, attempt);
    } finally {
      this.starting.delete(spec.id);
    }
  }

  private async startCompiled(spec: QuerySpec, resumed: boolean, attempt: number): Promise<void> {
    const publish = (message: AgentMessage) => this.bus.publish(SUBJECTS.results(spec.id, this.host), writeMessage(message));
    const from = { v: PROTOCOL_VERSION, id: spec.id, host: this.host, incarnation: `${this.incarnation}.${++this.runs}` } as const;
    let compiled;
    let plan;
    try {
      if (spec.standing !== undefined && spec.options.persist === undefined) throw new UsageError('a standing query keeps what it produces: it needs a log to persist into (--persist <name>)');
      // A history query is planned against the logs this machine's store keeps.
      if (/\bstored:/.test(spec.text)) await this.knowStoredLogs();
      plan = withWindowing(planStages(compileQuery(spec.text, this.agent.registry)), spec.options);
      // Every provider's options are checked, as the client checks them, whether or not the query reaches it.
      const providerOptions = spec.options.providers ?? {};
      this.agent.registry.checkOptions(providerOptions);
      compiled = this.agent.compile(plan, { ...agentSettings(plan, { ...spec.options, providerOptions }), store: () => this.traceStore() });
    } catch (error) {
      this.log(`refused query ${spec.id} from ${spec.client}: ${reasonOf(error)}`);
      this.ended.set(spec.id, Date.now() + spec.leaseMs * 2);
      publish({ ...from, kind: 'status', state: 'refused', ...refusal(error) });
      if (resumed) await this.forgetStanding(spec.id, `it no longer compiles here: ${reasonOf(error)}`);
      return;
    }
    const persist = spec.options.persist;
    const output = plan.cluster.output;
    const writer =
      persist === undefined
        ? undefined
        : new LogWriter(
            () => this.traceStore(),
            { name: persist.name, query: spec.text, kind: output.kind === 'Aggregate' ? 'windows' : 'events', retainMs: persist.retainMs, schema: storedSchemaOf(plan) },
            output.kind === 'Aggregate' ? output.aggregates.map(createAggregate) : [],
            (message) => hosted.notice(this.host, message),
            this.options.storeMaxBytes,
          );
    if (writer) this.writers.add(writer);
    const exported = spec.standing === undefined || persist === undefined ? undefined : this.options.standingWindows?.(persist.name, plan);
    let until: NodeJS.Timeout | undefined;
    let attached = false;
    const hosted: HostedQuery = new HostedQuery(spec, plan, compiled, this.bus, from, {
      ...(writer && { persist: writer }),
      ...(exported && { onWindow: (window: MachineWindow) => exported.window(window) }),
      onAttached: () => {
        attached = true;
        this.log(`${resumed ? 'resumed' : 'running'} ${spec.standing ? 'standing ' : ''}query ${spec.id} from ${spec.client}: ${spec.text}`);
        if (spec.standing === undefined) return;
        until = this.armUntil(spec, hosted);
        // Resumed (maybe on a second try, after resumeStanding's own listening began or ended): hear the others for a while.
        if (resumed) this.listenToPeers();
      },
      onRefused: (error) => this.log(`could not attach query ${spec.id}: ${reasonOf(error)}`),
      onEnded: (why, final) => {
        this.queries.delete(spec.id);
        exported?.ended();
        if (until) clearTimeout(until);
        if (writer) void writer.drained().then(() => this.writers.delete(writer));
        if (!final && hosted.holdsBack) this.lapsed.set(spec.id, { query: hosted, untilMs: Date.now() + HELD_BACK_MS });
        // Stopped by its client: renewals still in flight must not start it again. A lease that ran
        // out (a cut-off) may be renewed again once the client is back, and then the query rejoins.
        if (final) this.ended.set(spec.id, Date.now() + spec.leaseMs * 2);
        this.log(`query ${spec.id} ended: ${why}`);
        // A standing query that ends while the agent goes on (fay stop, --until, its probes ended)
        // is over; one the agent takes down with it resumes when the agent starts again. One being
        // resumed whose probes did not attach is tried again a few times first (what failed may
        // have been passing: seen once in tens of restarts, bpftrace exiting without a word while
        // the killed agent's own was still going).
        if (spec.standing === undefined || this.closing !== undefined) return;
        if (resumed && !attached && !this.stopped.has(spec.id) && attempt < RESUME_ATTEMPTS) {
          this.log(`standing query ${spec.id} did not attach (${why}); trying again in ${attempt} s`);
          setTimeout(() => {
            if (this.closing === undefined && !this.queries.has(spec.id)) void this.startQuery(spec, true, attempt + 1);
          }, attempt * 1000).unref();
          return;
        }
        void this.forgetStanding(spec.id, why);
      },
      onStandingNotice: (message) => this.log(`standing query ${spec.id}: ${message}`),
      reasonOf,
      refusal,
    });
    this.queries.set(spec.id, hosted);
    // A standing query is kept before its probes attach, so before fay query --persist hears that
    // it runs: an agent killed right after that still resumes it.
    if (spec.standing !== undefined && !resumed) await this.keepStanding(spec);
    hosted.start();
  }

  /** Reads the logs this machine's store keeps into the stored provider, for a history query to be planned. */
  private async knowStoredLogs(): Promise<void> {
    const provider = this.agent.registry.providers.find((p): p is StoredProvider => p instanceof StoredProvider);
    if (provider === undefined || !this.hasStore()) return;
    provider.know(await (await this.traceStore()).logs());
  }

  /** Keeps a standing query in the store, to be re-installed when the agent starts again. */
  private async keepStanding(spec: QuerySpec): Promise<void> {
    try {
      await (await this.traceStore()).stand({ id: spec.id, spec: JSON.stringify(spec), createdNs: spec.startedNs, untilNs: spec.standing?.untilNs });
    } catch (error) {
      this.log(`standing query ${spec.id} will not resume after a restart: ${reasonOf(error)}`);
    }
  }

  private async forgetStanding(id: string, why: string): Promise<void> {
    try {
      await (await this.traceStore()).unstand(id);
      this.log(`standing query ${id} is over: ${why}`);
    } catch (error) {
      this.log(`could not forget standing query ${id}: ${reasonOf(error)}`);
    }
  }

  /** Stops a standing query at its --until (in steps, for an until further off than a timer can wait). */
  private armUntil(spec: QuerySpec, hosted: HostedQuery): NodeJS.Timeout | undefined {
    const untilNs = spec.standing?.untilNs;
    if (untilNs === undefined) return undefined;
    const left = untilNs / 1e6 - Date.now();
    const timer = setTimeout(() => {
      if (Date.now() * 1e6 >= untilNs) void hosted.stop(`its --until ${new Date(untilNs / 1e6).toISOString()} passed`, true);
      else this.armUntil(spec, hosted);
    }, Math.max(0, Math.min(left, MAX_TIMER_MS)));
    timer.unref();
    return timer;
  }

  /** Re-installs the standing queries the store keeps (those whose --until passed meanwhile end). */
  private async resumeStanding(): Promise<void> {
    if (!this.hasStore()) return;
    let kept;
    try {
      const store = await this.traceStore();
      for (const { id, stoppedNs } of await store.stoppedSince((Date.now() - STOPPED_TOLD_MS) * 1e6)) this.stopped.set(id, stoppedNs / 1e6);
      kept = await store.standing();
    } catch (error) {
      this.log(`cannot read the standing queries: ${reasonOf(error)}`);
      return;
    }
    for (const q of kept) {
      if (q.untilNs !== undefined && q.untilNs <= Date.now() * 1e6) {
        await this.forgetStanding(q.id, 'its --until passed while the agent was down');
        continue;
      }
      let spec;
      try {
        spec = QuerySpec.parse(JSON.parse(q.spec));
      } catch (error) {
        await this.forgetStanding(q.id, `its stored spec does not read (${(error as Error).message})`);
        continue;
      }
      if (this.closing) return;
      await this.startQuery(spec, true);
    }
  }

  /** Whether this machine has a trace store (asking about one must not create it). */
  private hasStore(): boolean {
    return this.options.store !== undefined || this.store !== undefined || existsSync(join(defaultStoreDir(), `${storeName(this.host)}.duckdb`));
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
      await this.resumed;
      await Promise.allSettled([...this.queries.values()].map((q) => q.stop('the agent is shutting down')));
      await Promise.allSettled([...this.writers].map((w) => w.drained()));
      if (this.store) await this.store.then((s) => s.close(), () => undefined);
      this.announce('bye');
      for (const u of this.unsubscribe) u();
      this.peersHeard?.unsubscribe();
    })();
    return this.closing;
  }
}
