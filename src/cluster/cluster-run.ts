import { randomBytes } from 'node:crypto';
import type { AggregateKind } from '../agg/aggregate.js';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { agentSettings, withWindowing } from '../agent/run-settings.js';
import { AgentMessage, BUS_BOUNDS, MergedMessage, PROTOCOL_VERSION, QuerySpec, receiveFromAggregator, receiveFromHost, SUBJECTS, writeMessage } from '../bus/protocol.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { HostSelection } from '../plan/host-selection.js';
import { planStages, type StagedPlan } from '../plan/planner.js';
import { compileQuery } from '../query/compile.js';
import type { ClusterClient } from './cluster-client.js';
import { ClusterStage, type QueryMessage } from './cluster-stage.js';
import type { QueryHandle, RunOptions, StopReason } from './query-handle.js';
import { MessageQueue } from './message-queue.js';
import { CoverageLedger } from './coverage-ledger.js';
import { PeriodAligner, type AlignerHooks, type Coverage, type HostWindow } from './period-aligner.js';
import { HistoryAligner } from './history-aligner.js';

export interface ClusterRunOptions extends RunOptions {
  /** Host name globs the query runs on; default every agent. */
  readonly hosts?: readonly string[];
  /** How long agents keep the query without a renewal; default 3 periods, at least 3 s. */
  readonly leaseMs?: number;
  /** How long every agent has to answer (attach or refuse) before it counts as missing. Default 60 s. */
  readonly answerTimeoutMs?: number;
  /** How many agents to expect: discovery ends as soon as that many answered (the embedded bus has one). */
  readonly expectAgents?: number;
  /** A standing query (it needs `persist`): agents keep and run it without this client; see leave(). */
  readonly standing?: { readonly untilNs?: number };
  /**
   * Through the merge tree (aggregators merge their hosts' windows and pass one partial up): true,
   * false for straight from every host, default: through it when an aggregator is alive.
   */
  readonly tree?: boolean;
}

/**
 * What the client knows of one host in one query. `failed`: its probes failed (it said why);
 * `lapsed`: its lease ran out while it could not hear this client, and it rejoins once it does.
 */
interface HostState {
  state: 'waiting' | 'accepted' | 'refused' | 'done' | 'failed' | 'lapsed';
  incarnation?: string;
  reason?: string;
  hint?: string;
  exitCode?: 2 | 3;
  /** When it last said how far it got removing its probes (ms), after a stop; and when that was last shown. */
  detachingMs?: number;
  noticedDetachMs?: number;
}

/** The agent's own incarnation in a run's (`<agent>.<run>`): a new one means the agent restarted. */
function agentOf(incarnation: string): string {
  return incarnation.split('.', 1)[0]!;
}

/** A wall-clock time in ns, as notices and reasons say it. */
function clock(ns: number): string {
  return new Date(ns / 1e6).toISOString();
}

/** How often a host's progress removing its probes is said. */
const DETACH_NOTICE_MS = 3000;

/** After the stop, how long a host that is still alive may take to remove its probes, as long as it says how far it got. */
const DETACH_PATIENCE_MS = 10 * 60_000;

/** The error to raise when every host refused: the agents' own kind of error when they agree. */
function refusedEverywhere(refused: readonly [string, HostState][]): Error {
  const reasons = new Set(refused.map(([, s]) => s.reason ?? 'refused'));
  if (reasons.size === 1) {
    const [, first] = refused[0]!;
    const where = refused.length > 1 ? ` (on ${refused.map(([h]) => h).join(', ')})` : '';
    const message = `${first.reason ?? 'refused'}${where}`;
    const options = first.hint !== undefined ? { hint: first.hint } : {};
    if (first.exitCode === 3) return new EnvironmentError(message, options);
    if (first.exitCode === 2) return new UsageError(message, options);
    return new Error(message);
  }
  return new UsageError(`every agent refused the query: ${refused.map(([h, s]) => `${h}: ${s.reason ?? 'refused'}`).join('; ')}`);
}

/**
 * One query across the cluster: sends it out under a lease it keeps renewing,
 * lines the hosts' windows up into periods, and emits results that say which
 * hosts they cover. Same shape as the embedded QueryRun.
 */
export class ClusterQueryRun implements QueryHandle {
  readonly id = randomBytes(6).toString('hex');
  readonly plan: StagedPlan;
  readonly attached: Promise<void>;
  readonly ended: Promise<StopReason>;
  private readonly queue = new MessageQueue<QueryMessage>();
  private readonly hosts = new Map<string, HostState>();
  private readonly stage: ClusterStage;
  private readonly aligner: PeriodAligner | HistoryAligner;
  /** A history query: it reads stored logs (stored:<name>), each agent scanning its own store. */
  readonly history: boolean;
  private readonly kinds: readonly AggregateKind[];
  private readonly maxGroups: number;
  private spec: QuerySpec;
  /** Through the merge tree: aggregators merge the hosts' windows (decided once the agents are found). */
  private tree = false;
  /** The windows straight from the hosts are listened to (no tree, or no aggregator left in it). */
  private direct: (() => void) | undefined;
  private unmerged: (() => void) | undefined;
  /** The tree's level whose partials it takes (0: none). */
  private level = 0;
  private unwatchTree: (() => void) | undefined;
  /** Aggregators that passed up a partial of this query, and whether each said its final word after the stop. */
  private readonly aggregators = new Map<string, { final: boolean }>();
  /** The aggregator that last passed up each host's window. */
  private readonly carriers = new Map<string, string>();
  private finals: (() => void) | undefined;
  /** expected(), worked out again when a host's state changes, otherwise at most every 100 ms. */
  private expectedCache: { version: number; atMs: number; value: { all: string[]; alive: Set<string> } } | undefined;
  private hostsVersion = 0;
  private readonly selection: HostSelection;
  private unsubscribe: (() => void) | undefined;
  private unlisten: (() => void) | undefined;
  private renewal: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private reason: StopReason | undefined;
  private resolveEnded!: (reason: StopReason) => void;
  private rejectEnded!: (error: unknown) => void;
  private allDone: (() => void) | undefined;
  private answered: (() => void) | undefined;
  private readonly ledger: CoverageLedger;
  /** The spans this client was off the bus (ms), which explain windows that never arrived. */
  private readonly offBus: { fromMs: number; toMs: number | undefined }[] = [];
  /** When the stop was asked for (ns): nothing later is a period of the answer. */
  private stopNs: number | undefined;

  constructor(
    private readonly client: ClusterClient,
    text: string,
    private readonly options: ClusterRunOptions,
  ) {
    if (text.trim() === '') throw new UsageError('the query is empty', { hint: 'e.g. fay query --cluster nats://… "syscall:openat | count() by host, comm"' });
    // Checked and planned here first: a bad query fails before anything goes out.
    this.plan = withWindowing(planStages(compileQuery(text, client.registry)), options);
    const stored = this.plan.logical.sources.filter((s) => s.schema.provider === 'stored');
    this.history = stored.length > 0;
    if (this.history && stored.length < this.plan.logical.sources.length) {
      throw new UsageError('a query reads stored logs or live probes, not both', { hint: 'ask the history (stored:<log> | …) and the live question as two queries' });
    }
    client.registry.checkOptions(options.providerOptions ?? {});
    this.selection = new HostSelection(this.plan.logical.hosts, options.hosts);
    const settings = agentSettings(this.plan, options);
    const output = this.plan.cluster.output;
    this.kinds = output.kind === 'Aggregate' ? output.aggregates.map(createAggregate) : [];
    this.maxGroups = settings.maxGroups;
    const periodMs = settings.flushPeriodMs;
    this.spec = {
      id: this.id,
      text,
      client: client.name,
      startedNs: Date.now() * 1e6,
      // Renewed every third of it: three periods, at least 3 s, and at most what agents accept.
      leaseMs: options.leaseMs ?? Math.min(Math.max(3 * periodMs, 3000), BUS_BOUNDS.leaseMs.max),
      ...(options.hosts !== undefined && { hosts: [...options.hosts] }),
      ...(options.standing !== undefined && { standing: { ...(options.standing.untilNs !== undefined && { untilNs: Math.round(options.standing.untilNs) }) } }),
      options: {
        ...(options.refreshMs !== undefined && { refreshMs: options.refreshMs }),
        ...(options.everyMs !== undefined && { everyMs: options.everyMs }),
        ...(options.limits !== undefined && { limits: options.limits }),
        ...(options.providerOptions !== undefined && { providers: options.providerOptions }),
        ...(options.persist !== undefined && { persist: options.persist }),
      },
    };
    // Checked as every agent will check it: an agent drops a malformed query without a word.
    const checked = QuerySpec.safeParse(this.spec);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new UsageError(`the query's setting ${issue.path.slice(1).join('.')} is out of range: ${issue.message}`);
    }
    this.ledger = new CoverageLedger((periodMs * 1e6) / 2, (host, fromNs, toNs) =>
      this.history ? 'nothing of it is stored for that span: its agent was not running the query then' : this.unexplained(host, fromNs, toNs),
    );
    this.stage = new ClusterStage(this.plan, periodMs * 1e6, this.maxGroups, (m) => this.queue.push(m), () => void this.stop('limit'), (startNs, endNs) =>
      this.ledger.gapsWithin(startNs, endNs),
    );
    const hooks: AlignerHooks = {
      onPeriod: (period, coverage) => {
        if (!this.history) for (const host of coverage.missing) this.ledger.interrupted(host, this.whyMissing(host), period.startNs);
        this.stage.period(period, coverage);
      },
      onLate: (w) => this.leftOut(w.source, w.hosts, w.startNs, w.endNs),
      onDuplicate: (w) => {
        for (const host of w.hosts) this.ledger.leftOut(host, w.startNs, w.endNs, 'two aggregators passed its window up while the tree changed; one was left out');
        this.stage.notice(w.source, `passed up ${w.hosts.length} host${w.hosts.length === 1 ? "'s" : "s'"} windows for ${clock(w.startNs)} – ${clock(w.endNs)} that another aggregator had already passed up (the tree was changing); left out, not counted twice`);
      },
      expected: () => this.expected(),
      empty: () => new GroupTable(this.kinds, { maxGroups: this.maxGroups }),
    };
    this.aligner = this.history
      ? new HistoryAligner(this.plan.cluster.windowing.coverNs !== undefined, hooks)
      : new PeriodAligner(periodMs, Math.max(250, periodMs / 2), this.plan.cluster.windowing.coverNs === undefined, hooks);
    this.ended = new Promise((resolve, reject) => {
      this.resolveEnded = resolve;
      this.rejectEnded = reject;
    });
    this.ended.catch(() => undefined);
    this.attached = this.launch();
    this.attached.then(
      () => {
        this.aligner.begin();
        if (options.durationMs !== undefined) setTimeout(() => void this.stop('duration'), options.durationMs).unref();
      },
      (error: unknown) => {
        this.shutdown();
        this.queue.fail(error);
        this.rejectEnded(error);
      },
    );
  }

  /**
   * Hosts in the query (they accepted it, whatever became of them since), and which of them are
   * alive in it. Asked at every window: worked out again when a host's state changes, otherwise at
   * most every 100 ms (a heartbeat's lapse is seen that much later).
   */
  private expected(): { all: string[]; alive: Set<string> } {
    const now = Date.now();
    const cached = this.expectedCache;
    if (cached !== undefined && cached.version === this.hostsVersion && now - cached.atMs < 100) return cached.value;
    const all = [...this.hosts].filter(([, s]) => s.state !== 'waiting' && s.state !== 'refused').map(([h]) => h).sort();
    const value = { all, alive: new Set(all.filter((h) => this.waitedFor(h, now))) };
    this.expectedCache = { version: this.hostsVersion, atMs: now, value };
    return value;
  }

  /**
   * Whether a period waits for a host's window: it runs the query and is alive; or, through the
   * tree, it said done but its last window is still on its way through its aggregator (one that
   * is alive and has not said its final word).
   */
  private waitedFor(host: string, now: number): boolean {
    const state = this.hosts.get(host)!.state;
    if (state === 'accepted') return this.client.alive(host, now);
    if (state !== 'done' || !this.tree) return false;
    const carrier = this.carriers.get(host);
    return carrier !== undefined && this.aggregators.get(carrier)?.final === false && this.client.aggregatorAlive(carrier, now);
  }

  /** Windows that came after their period closed (a host's, or an aggregator's for its hosts): each host's span is a gap, said once. */
  private leftOut(source: string, hosts: readonly string[], startNs: number, endNs: number): void {
    for (const host of hosts) this.ledger.leftOut(host, startNs, endNs, 'its window arrived after that window had closed');
    const whose = hosts.length === 1 && hosts[0] === source ? 'its window' : `the windows of ${hosts.length} of its hosts`;
    this.stage.notice(source, `${whose} ${clock(startNs)} – ${clock(endNs)} arrived after that window closed; ${hosts.length === 1 ? 'it is' : 'they are'} not in it`);
  }

  /** Why a host the query expected is not in a period: what it said, or what this client saw. */
  private whyMissing(host: string): string {
    const state = this.hosts.get(host);
    if (state?.state === 'failed' || state?.state === 'lapsed') return state.reason ?? 'it ended';
    if (state?.state === 'done') return 'it had finished';
    if (!this.client.alive(host)) {
      const heard = this.client.lastHeard(host);
      return heard === undefined ? 'it was never heard' : `no heartbeat from it since ${clock(heard * 1e6)}: the agent is gone or cut off from the bus`;
    }
    return 'its windows did not arrive';
  }

  /** Why a host's windows broke off with nobody saying why: this client's own time off the bus, if that was it. */
  private unexplained(_host: string, fromNs: number, toNs: number): string {
    const off = this.offBus.find((o) => o.fromMs * 1e6 < toNs && (o.toMs === undefined || o.toMs * 1e6 > fromNs));
    if (off) {
      const lasted = off.toMs === undefined ? '' : ` for ${Math.round((off.toMs - off.fromMs) / 100) / 10} s`;
      return `this client was off the bus from ${clock(off.fromMs * 1e6)}${lasted}: what the host sent then was lost`;
    }
    return 'its windows for that span never arrived';
  }

  /** Finds the agents, sends the query, and waits until each has attached or refused. */
  private async launch(): Promise<void> {
    const known = await this.client.discover(this.options.expectAgents, (host) => this.selection.includes(host));
    const agents = known.filter((a) => this.selection.includes(a.host));
    if (agents.length === 0 && known.length > 0) {
      const names = known.map((a) => a.host).sort();
      throw new UsageError(`no host${this.selection.describe()}: the agents connected are ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''}`, {
        hint: 'change the on condition or --hosts, or start an agent on the host you mean',
      });
    }
    if (agents.length === 0) {
      throw new EnvironmentError(`no Fay agent${this.selection.describe()} is connected to the bus`, { hint: 'start one on each machine with: fay agent --nats nats://…' });
    }
    for (const a of agents) this.hosts.set(a.host, { state: 'waiting' });
    this.hostsVersion++;
    this.unsubscribe = this.client.bus.subscribe(SUBJECTS.resultsOf(this.id), (data, _reply, subject) => this.receive(data, subject));
    this.tree = this.options.tree ?? (!this.history && this.options.standing === undefined && this.client.treeLevel() > 0);
    if (this.tree) {
      if (this.client.treeLevel() === 0) throw new EnvironmentError('no aggregator of a merge tree is connected to the bus', { hint: 'start one with: fay aggregator --nats nats://…, or leave the tree out (--no-tree)' });
      const output = this.plan.cluster.output;
      this.spec = {
        ...this.spec,
        tree: {
          aggregates: output.kind === 'Aggregate' ? output.aggregates.map((a) => ({ function: a.function, params: [...a.params] })) : [],
          maxGroups: this.maxGroups,
          periodMs: agentSettings(this.plan, this.options).flushPeriodMs,
          running: this.plan.cluster.windowing.coverNs === undefined,
        },
      };
      this.listenToLevel(this.client.treeLevel());
      const watch = () => this.watchTree();
      this.client.aggregatorListeners.add(watch);
      this.unwatchTree = () => this.client.aggregatorListeners.delete(watch);
    } else {
      this.listenDirect();
    }
    const lease = () => this.client.bus.publish(SUBJECTS.lease, writeMessage({ v: PROTOCOL_VERSION, kind: 'lease', spec: this.spec }));
    lease();
    this.renewal = setInterval(lease, Math.max(100, this.spec.leaseMs / 3));
    this.renewal.unref();
    // Back on the bus: renew at once (agents hold their windows back until they hear from us), and say
    // what may be missing: agents that stayed connected sent windows nobody was there to receive.
    let lostAt: number | undefined;
    this.unlisten = this.client.bus.onStatus((status) => {
      // Stopping: never renew; say stop again in case the first one was lost with the connection.
      if (this.stopping) {
        if (status === 'reconnected') this.sayStop();
        return;
      }
      if (status === 'disconnected') {
        lostAt = Date.now();
        this.offBus.push({ fromMs: lostAt, toMs: undefined });
      }
      if (status === 'reconnected') {
        const off = this.offBus[this.offBus.length - 1];
        if (off && off.toMs === undefined) off.toMs = Date.now();
        lease();
        if (lostAt !== undefined) {
          this.stage.notice(this.client.name, `this client was off the bus for ${Date.now() - lostAt} ms; hosts that stayed on it may have sent windows it did not receive`);
        }
        lostAt = undefined;
      }
    });

    const timeoutMs = this.options.answerTimeoutMs ?? 60_000;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const check = () => {
        if ([...this.hosts.values()].every((h) => h.state !== 'waiting')) done();
      };
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.answered = check;
      check();
    });
    this.answered = undefined;
    const silent = [...this.hosts].filter(([, s]) => s.state === 'waiting').map(([h]) => h);
    this.hostsVersion++;
    for (const host of silent) {
      this.hosts.set(host, { state: 'refused', reason: `no answer within ${timeoutMs} ms` });
      this.stage.notice(host, `did not answer within ${timeoutMs} ms; counted as missing`);
    }
    const refused = [...this.hosts].filter(([, s]) => s.state === 'refused');
    if (refused.length === this.hosts.size) throw refusedEverywhere(refused);
    for (const [host, s] of refused) if (s.reason !== undefined && !silent.includes(host)) this.stage.notice(host, `refused the query: ${s.reason}`);
  }

  private receive(data: Uint8Array, subject: string): void {
    // Each host's results come on its own subject: a message naming another host is a forgery.
    const message = receiveFromHost(AgentMessage, data, subject, () => this.client.rejected++);
    if (message === undefined) return;
    if (message.id !== this.id) return;
    let host = this.hosts.get(message.host);
    if (host === undefined) {
      // A host that joined after the start (a new or restarted agent that saw a renewal).
      if (!this.selection.includes(message.host)) return;
      host = { state: 'waiting' };
      this.hosts.set(message.host, host);
    }
    if (host.incarnation !== undefined && host.incarnation !== message.incarnation && message.kind === 'status' && message.state === 'accepted') {
      // A new run of the query on the host: the same agent after its lease ran out, or the agent restarted.
      const off = this.ledger.isInterrupted(message.host) ? '; the span it was away is not in the answer' : '';
      if (agentOf(host.incarnation) !== agentOf(message.incarnation)) this.stage.notice(message.host, `the agent restarted and rejoined the query${off}`);
      else if (host.state === 'lapsed') this.stage.notice(message.host, `heard this client again and rejoined the query${off}`);
    }
    host.incarnation = message.incarnation;
    if (message.kind === 'status' || message.kind === 'done') this.hostsVersion++;
    switch (message.kind) {
      case 'status':
        if (host.state !== 'accepted' || message.state === 'accepted') host.state = message.state;
        if (message.reason !== undefined) host.reason = message.reason;
        if (message.hint !== undefined) host.hint = message.hint;
        if (message.exitCode !== undefined) host.exitCode = message.exitCode;
        if (this.answered === undefined && message.state === 'refused') this.stage.notice(message.host, `refused the query: ${message.reason ?? ''}`);
        this.answered?.();
        break;
      case 'window': {
        let table: GroupTable;
        try {
          table = GroupTable.decode(this.kinds, message.table, { maxGroups: this.maxGroups });
        } catch (error) {
          this.client.rejected++;
          this.stage.notice(message.host, `sent a window that does not decode (${(error as Error).message}); it is left out`);
          return;
        }
        this.ledger.window(message.host, message.startNs, message.endNs);
        this.aligner.add({ ...message, source: message.host, hosts: [message.host], table });
        break;
      }
      case 'detaching': {
        const now = Date.now();
        host.detachingMs = now;
        this.allDone?.();
        if (now - (host.noticedDetachMs ?? 0) >= DETACH_NOTICE_MS) {
          host.noticedDetachMs = now;
          this.stage.notice(message.host, `removing its probes: ${message.total - message.left} of ${message.total} out (the kernel takes ~70 ms for each)`);
        }
        break;
      }
      case 'events':
        this.stage.events(message.host, message.rows.map((r) => Object.fromEntries(message.columns.map((c, i) => [c, r[i] as never]))));
        break;
      case 'notice':
        this.stage.notice(message.host, message.message);
        break;
      case 'dump':
        this.stage.dump(message.host, {
          rows: message.rows.map((r) => Object.fromEntries(message.columns.map((c, i) => [c, r[i] as never]))),
          triggerNs: message.triggerNs ?? undefined,
        });
        break;
      case 'done': {
        if (message.error !== undefined) {
          host.state = 'failed';
          host.reason = `its probes failed: ${message.error}`;
          this.ledger.interrupted(message.host, host.reason, Date.now() * 1e6);
          this.stage.notice(message.host, `its part of the query failed: ${message.error}`);
        } else if (message.lapsed && !this.stopping) {
          // It rejoins (a new run) once it hears the next renewal; until then its probes are off.
          host.state = 'lapsed';
          host.reason = 'its lease ran out while it could not hear this client (the bus was away): its probes were off until it heard it again';
          this.ledger.interrupted(message.host, host.reason, Date.now() * 1e6);
        } else {
          host.state = 'done';
          // A history query's scan ends as a matter of course; a live query's probes ending is news.
          if (!this.stopping && !this.history) this.stage.notice(message.host, 'its part of the query ended');
        }
        this.allDone?.();
        // Stopped everywhere (fay stop, or every probe finished or failed): the query is over here too.
        const states = [...this.hosts.values()];
        if (!this.stopping && states.every((h) => h.state === 'done' || h.state === 'failed' || h.state === 'refused')) {
          void this.stop(states.some((h) => h.state === 'failed') ? 'failed' : message.stopped ? 'stopped' : 'finished');
        }
        break;
      }
    }
  }

  /** Listens to the hosts' windows straight (no tree, or none of its aggregators is left). */
  private listenDirect(): void {
    if (this.direct !== undefined) return;
    this.direct = this.client.bus.subscribe(SUBJECTS.windowsOf(this.id), (data, _reply, subject) => this.receive(data, subject));
    // The hosts' heartbeats too: no aggregator hears them for this query.
    this.client.runsDirect(true);
  }

  private stopDirect(): void {
    if (this.direct === undefined) return;
    this.direct();
    this.direct = undefined;
    this.client.runsDirect(false);
  }

  /** Takes the partials of the tree's top level (and no longer those of the level it took before). */
  private listenToLevel(level: number): void {
    if (level === this.level) return;
    this.unmerged?.();
    this.unmerged = undefined;
    this.level = level;
    if (level > 0) this.unmerged = this.client.bus.subscribe(SUBJECTS.mergedOf(this.id, level), (data, _reply, subject) => this.receiveMerged(data, subject));
  }

  /** The tree changed: its top level is another; with no aggregator left, the hosts' windows come straight here until one is back. */
  private watchTree(): void {
    const level = this.client.treeLevel();
    if (level > 0 && level !== this.level && this.stopping === undefined) {
      this.stage.notice(this.client.name, `the merge tree has ${level} level${level === 1 ? '' : 's'} now: this client takes the partials of level ${level}`);
      this.listenToLevel(level);
    }
    if (level === 0 && this.direct === undefined && this.stopping === undefined) {
      this.listenDirect();
      this.stage.notice(this.client.name, 'no aggregator of the merge tree is left: the hosts\' windows come straight to this client');
    } else if (level > 0 && this.direct !== undefined) {
      this.stopDirect();
      this.stage.notice(this.client.name, `an aggregator is back: the hosts' windows go through the merge tree again`);
    }
  }

  /** An aggregator's partial: the windows of its hosts for one of its periods, merged. */
  private receiveMerged(data: Uint8Array, subject: string): void {
    const message = receiveFromAggregator(MergedMessage, data, subject, () => this.client.rejected++);
    if (message === undefined || message.id !== this.id) return;
    const source = `aggregator ${message.aggregator}`;
    let known = this.aggregators.get(message.aggregator);
    if (known === undefined) this.aggregators.set(message.aggregator, (known = { final: false }));
    if (message.kind === 'final') {
      known.final = true;
      // Its hosts' last windows are in: periods no longer wait for them.
      this.hostsVersion++;
      if (this.aligner instanceof PeriodAligner) this.aligner.closeReady();
      this.finals?.();
      return;
    }
    // Only hosts of this query: an aggregator cannot bring in a host that never accepted it.
    const hosts = message.hosts.filter((h) => this.hosts.has(h));
    let table: GroupTable;
    try {
      table = GroupTable.decode(this.kinds, message.table, { maxGroups: this.maxGroups });
    } catch (error) {
      this.client.rejected++;
      this.stage.notice(source, `sent a partial that does not decode (${(error as Error).message}); its ${hosts.length} hosts are left out of that window`);
      return;
    }
    for (const w of message.leftOut) if (this.hosts.has(w.host)) this.leftOut(source, [w.host], w.startNs, w.endNs);
    for (const host of hosts) {
      this.ledger.window(host, message.startNs, message.endNs);
      this.carriers.set(host, message.aggregator);
    }
    const w: HostWindow = { ...message, source, hosts, seqEnd: message.seq, table };
    this.aligner.add(w);
  }

  /**
   * After the hosts' done: each aggregator that passed up a part of this query passes up the rest and
   * says final. One that is gone, or silent for a few periods, is not waited for.
   */
  private aggregatorsFinal(): Promise<void> {
    if (!this.tree) return Promise.resolve();
    const patienceMs = Math.max(3000, 2 * agentSettings(this.plan, this.options).flushPeriodMs);
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.finals = undefined;
        resolve();
      };
      const timer = setTimeout(done, patienceMs);
      const check = () => {
        const alive = new Set(this.client.aggregators().map((a) => a.name));
        if ([...this.aggregators].every(([name, a]) => a.final || !alive.has(name))) done();
      };
      this.finals = check;
      check();
    });
  }

  /** Stops the query everywhere; the final result follows once every host is done (or gone). */
  stop(reason: StopReason = 'stopped'): Promise<void> {
    this.reason ??= reason;
    this.stopping ??= (async () => {
      await this.attached.catch(() => undefined);
      this.stopNs = Date.now() * 1e6;
      if (this.renewal) clearInterval(this.renewal);
      // What comes after the stop is not a period of the answer: periods close now only once every
      // host delivered them, and the hosts' last windows close the rest.
      this.aligner.hold(this.stopNs);
      this.sayStop();
      await this.hostsEnded();
      await this.aggregatorsFinal();
      const endNs = Date.now() * 1e6;
      for (const [host, s] of this.hosts) {
        if (s.state !== 'accepted') continue;
        const why = this.client.alive(host) ? 'it had not finished removing its probes when this client gave up waiting' : this.whyMissing(host);
        this.ledger.interrupted(host, why, endNs);
      }
      this.aligner.finish();
      const coverage = this.finalCoverage(endNs);
      this.stage.finish(endNs, coverage);
      this.stage.end(this.reason ?? 'stopped', coverage);
      this.shutdown();
      this.queue.close();
      this.resolveEnded(this.reason ?? 'stopped');
    })();
    return this.stopping;
  }

  /**
   * Waits until every live host has sent its last window and said done. A host removing its
   * probes says how far it got (the kernel takes ~70 ms for each), and is waited for as long as it
   * does (at most DETACH_PATIENCE_MS); one that says nothing, for a few periods; a dead one, not at all.
   */
  private hostsEnded(): Promise<void> {
    const quietMs = Math.max(5000, 2 * agentSettings(this.plan, this.options).flushPeriodMs);
    const stoppedMs = Date.now();
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        clearTimeout(timer);
        const now = Date.now();
        const waiting = [...this.hosts].filter(([h, s]) => s.state === 'accepted' && this.client.alive(h)).map(([, s]) => s);
        const deadline = Math.min(stoppedMs + DETACH_PATIENCE_MS, Math.max(0, ...waiting.map((s) => (s.detachingMs ?? stoppedMs) + quietMs)));
        if (waiting.length === 0 || now >= deadline) {
          this.allDone = undefined;
          resolve();
          return;
        }
        // Looked at again before the deadline, too: a host may die meanwhile.
        timer = setTimeout(check, Math.min(deadline - now, 500));
      };
      this.allDone = check;
      check();
    });
  }

  private sayStop(): void {
    this.client.bus.publish(SUBJECTS.stop, writeMessage({ v: PROTOCOL_VERSION, kind: 'stop', id: this.id }));
  }

  /**
   * The final answer's coverage: the hosts that finished cleanly report, the others are missing
   * (what they reported before they went stays in); every gap, with when and why.
   */
  private finalCoverage(endNs: number): Coverage {
    const { all } = this.expected();
    const reporting = all.filter((h) => this.hosts.get(h)!.state === 'done');
    const gaps = this.ledger.gaps(endNs);
    return { expected: all, reporting, late: [], missing: all.filter((h) => this.hosts.get(h)!.state !== 'done'), ...(gaps.length > 0 && { gaps }) };
  }

  /**
   * Leaves a standing query to its agents once they answered: this client stops renewing and
   * listening, and the query goes on without it. Says which hosts run it and which refused, and why.
   */
  async leave(): Promise<{ running: string[]; refused: { host: string; reason: string }[] }> {
    await this.attached;
    this.shutdown();
    this.queue.close();
    const running = [...this.hosts].filter(([, s]) => s.state === 'accepted').map(([h]) => h).sort();
    const refused = [...this.hosts].filter(([, s]) => s.state === 'refused' || s.state === 'failed').map(([host, s]) => ({ host, reason: s.reason ?? 'refused' }));
    return { running, refused };
  }

  private shutdown(): void {
    if (this.renewal) clearInterval(this.renewal);
    this.unsubscribe?.();
    this.stopDirect();
    this.unmerged?.();
    this.unwatchTree?.();
    this.unlisten?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<QueryMessage> {
    return this.queue[Symbol.asyncIterator]();
  }
}
