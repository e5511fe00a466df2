import { hostname, userInfo } from 'node:os';
import type { Bus } from '../bus/bus.js';
import { AgentAnnouncement, AggregatorAnnouncement, PROTOCOL_VERSION, shardOf, receiveFromAggregator, receiveFromHost, receiveMessage, RunningQueries, StoreAnswer, StoredLogs, SUBJECTS, writeMessage, type ClientMessage } from '../bus/protocol.js';
import type { ProbeRegistry } from '../probes/registry.js';
import { StoredProvider } from '../probes/stored/provider.js';
import type { z } from 'zod';
import { HostSelection } from '../plan/host-selection.js';
import { planStages } from '../plan/planner.js';
import { compileQuery } from '../query/compile.js';
import { ClusterQueryRun, type ClusterRunOptions } from './cluster-run.js';
import { describeTree, ownerOf, SHARD_TOKENS } from './merge-tree.js';

/** An agent as the client last heard of it. */
export interface KnownAgent {
  readonly announcement: AgentAnnouncement;
  /** When it was last heard (ms). */
  readonly seenMs: number;
  /** Said goodbye. */
  readonly gone: boolean;
}

/** An aggregator of a merge tree as the client last heard of it. */
export interface KnownAggregator {
  readonly announcement: AggregatorAnnouncement;
  readonly seenMs: number;
  readonly gone: boolean;
  /** The hosts of its shards it says went quiet. */
  readonly silent: ReadonlySet<string>;
}

/** Missed heartbeats after which an agent (or an aggregator) counts as gone. */
export const MISSED_HEARTBEATS = 3;

/** How often the client looks whether an aggregator went quiet. */
const AGGREGATOR_CHECK_MS = 250;

/**
 * The client's side of a cluster: knows the agents (from their announcements
 * and heartbeats), runs queries across them, lists and stops running ones.
 *
 * The agents' heartbeats (one a second from each) are heard here only while no aggregator of a
 * merge tree is alive, or a query runs without the tree: otherwise the first level's aggregators
 * hear their shards' heartbeats and name, in their own, the hosts that went quiet (`alive`), so
 * that the client's work does not grow with the cluster.
 */
export class ClusterClient {
  private readonly agents = new Map<string, KnownAgent>();
  private readonly aggregatorsByName = new Map<string, KnownAggregator>();
  /** Called when an aggregator comes or goes (looked at every AGGREGATOR_CHECK_MS). */
  readonly aggregatorListeners = new Set<() => void>();
  private readonly unsubscribe: (() => void)[] = [];
  private unsubscribeBeats: (() => void) | undefined;
  /** Queries running without the tree: they need every host's heartbeat here. */
  private directRuns = 0;
  /** The live aggregators as last looked at (level:name, …), and whether the first level has any. */
  private liveAggregatorNames = '';
  private firstLevel = false;
  /** shard → the live aggregator that owns it. */
  private owners = new Map<string, string>();
  private readonly aggregatorCheck: NodeJS.Timeout;
  /** Messages from the bus that failed their checks (malformed, oversize, wrong version). */
  rejected = 0;
  readonly name = `${userInfo().username}@${hostname()}`;

  constructor(
    readonly bus: Bus,
    /** This side's providers: they resolve probe points and check provider options, so that a query is checked and planned here before it goes out. */
    readonly registry: ProbeRegistry,
  ) {
    this.unsubscribe.push(bus.subscribe(SUBJECTS.hosts, (data, _reply, subject) => this.hear(data, subject)));
    this.unsubscribe.push(bus.subscribe(SUBJECTS.aggregators, (data, _reply, subject) => this.hearAggregator(data, subject)));
    this.listenToBeats();
    this.aggregatorCheck = setInterval(() => this.checkAggregators(), AGGREGATOR_CHECK_MS);
    this.aggregatorCheck.unref();
  }

  private hearAggregator(data: Uint8Array, subject: string): void {
    const announcement = receiveFromAggregator(AggregatorAnnouncement, data, subject, () => this.rejected++);
    if (announcement === undefined) return;
    this.aggregatorsByName.set(announcement.name, { announcement, seenMs: Date.now(), gone: announcement.kind === 'bye', silent: new Set(announcement.silent) });
    this.checkAggregators();
  }

  /** Tells the listeners when the set of live aggregators changed, and hears the heartbeats when it must. */
  private checkAggregators(): void {
    const live = this.aggregators();
    const names = live.map((a) => `${a.level}:${a.name}`).join();
    if (names === this.liveAggregatorNames) return;
    this.liveAggregatorNames = names;
    this.firstLevel = live.some((a) => a.level === 1);
    // Hosts go to the first level; the heartbeats they no longer send, its aggregators say.
    const first = live.filter((a) => a.level === 1).map((a) => a.name);
    this.owners = new Map(SHARD_TOKENS.map((s) => [s, ownerOf(s, first)!]));
    this.listenToBeats();
    for (const l of this.aggregatorListeners) l();
  }

  /** Hears every host's heartbeat while no aggregator vouches for them, or a query runs without the tree. */
  private listenToBeats(): void {
    const needed = this.directRuns > 0 || !this.firstLevel;
    if (needed && this.unsubscribeBeats === undefined) {
      this.unsubscribeBeats = this.bus.subscribe(SUBJECTS.beats, (data, _reply, subject) => this.hear(data, subject));
    } else if (!needed && this.unsubscribeBeats !== undefined) {
      this.unsubscribeBeats();
      this.unsubscribeBeats = undefined;
    }
  }

  /** A query runs without the tree (true), or no longer (false): while any does, heartbeats are heard here. */
  runsDirect(direct: boolean): void {
    this.directRuns += direct ? 1 : -1;
    this.listenToBeats();
  }

  /** Whether an aggregator is alive: heard within three of its heartbeats, and no bye. */
  aggregatorAlive(name: string, now = Date.now()): boolean {
    const a = this.aggregatorsByName.get(name);
    return a !== undefined && !a.gone && now - a.seenMs <= a.announcement.heartbeatMs * MISSED_HEARTBEATS;
  }

  /**
   * The tree's top level: the deepest level with a live aggregator, every level below it with one
   * too (0: no tree). The client takes the partials of that level.
   */
  treeLevel(now = Date.now()): number {
    const levels = new Set(this.aggregators(now).map((a) => a.level));
    let level = 0;
    while (levels.has(level + 1)) level++;
    return level;
  }

  /** The merge tree's aggregators alive now, by name, with their load as they last said it. */
  aggregators(now = Date.now()): AggregatorAnnouncement[] {
    return [...this.aggregatorsByName.values()].filter((a) => this.aggregatorAlive(a.announcement.name, now)).map((a) => a.announcement).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Called with the host of each hello heard (an agent starting, or answering a ping). */
  private readonly helloListeners = new Set<(host: string) => void>();

  private hear(data: Uint8Array, subject: string): void {
    // A host speaks on its own subject only: anything else is an agent posing as another.
    const announcement = receiveFromHost(AgentAnnouncement, data, subject, () => this.rejected++);
    if (announcement === undefined) return;
    this.agents.set(announcement.host, { announcement, seenMs: Date.now(), gone: announcement.kind === 'bye' });
    if (announcement.kind === 'hello') for (const l of this.helloListeners) l(announcement.host);
  }

  /**
   * Whether an agent is alive: heard within a few of its heartbeats, and not gone; or, while the
   * aggregators hear the heartbeats instead, its shard's aggregator is alive and does not say it went quiet.
   */
  alive(host: string, now = Date.now()): boolean {
    const agent = this.agents.get(host);
    if (agent === undefined || agent.gone) return false;
    if (now - agent.seenMs <= agent.announcement.heartbeatMs * MISSED_HEARTBEATS) return true;
    if (this.unsubscribeBeats !== undefined) return false;
    const owner = this.owners.get(shardOf(host));
    return owner !== undefined && this.aggregatorAlive(owner, now) && !this.aggregatorsByName.get(owner)!.silent.has(host);
  }

  /** When an agent was last heard (ms since the epoch), if ever. */
  lastHeard(host: string): number | undefined {
    return this.agents.get(host)?.seenMs;
  }

  /** The agents alive now. */
  liveAgents(): AgentAnnouncement[] {
    return [...this.agents.values()].filter((a) => this.alive(a.announcement.host)).map((a) => a.announcement);
  }

  /**
   * Asks every agent to announce itself and waits until answers stop coming (quietMs), at most
   * maxMs, or until `expect` agents answered, or every agent this client already knew alive did
   * (one that was silent so far joins a running query later, with a lease renewal) and at least
   * one of them is `wanted`: a query for a host that has just started waits for its answer.
   * With `expect` wanted agents already known alive, it does not ask (an embedded cluster's one agent).
   */
  async discover(expect = Infinity, wanted: (host: string) => boolean = () => true, quietMs = 150, maxMs = 2000): Promise<AgentAnnouncement[]> {
    const alive = this.liveAgents();
    if (alive.filter((a) => wanted(a.host)).length >= expect) return alive;
    const knownAlive = alive.map((a) => a.host);
    const answered = new Set<string>();
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(done, maxMs);
      let quiet = setTimeout(done, quietMs * 2);
      const answer = (host: string) => {
        clearTimeout(quiet);
        quiet = setTimeout(done, quietMs);
        answered.add(host);
        if (answered.size >= expect) done();
        else if (knownAlive.length > 0 && knownAlive.every((h) => answered.has(h)) && [...answered].some(wanted)) done();
      };
      const listeners = this.helloListeners;
      listeners.add(answer);
      function done(): void {
        clearTimeout(deadline);
        clearTimeout(quiet);
        listeners.delete(answer);
        resolve();
      }
      this.bus.publish(SUBJECTS.ping, writeMessage({ v: PROTOCOL_VERSION, kind: 'ping' }));
    });
    return this.liveAgents();
  }

  /** Runs a query on every agent it selects; results merge into one stream. */
  run(text: string, options: ClusterRunOptions = {}): ClusterQueryRun {
    return new ClusterQueryRun(this, text, options);
  }

  /** What runs where: the answer of every live agent (waiting at most waitMs for them). */
  list(waitMs = 2000): Promise<RunningQueries[]> {
    return this.ask('list', RunningQueries, waitMs);
  }

  /** Which logs each live agent's trace store keeps (waiting at most waitMs for them). */
  logs(waitMs = 2000, expectAgents = Infinity): Promise<StoredLogs[]> {
    return this.ask('logs', StoredLogs, waitMs, expectAgents);
  }

  /** fay store … on the agents' stores: each agent's answer (waiting at most waitMs: an export can take a while). */
  store(question: Omit<Extract<ClientMessage, { kind: 'store' }>, 'v' | 'kind'>, waitMs: number, expectAgents = Infinity): Promise<StoreAnswer[]> {
    return this.ask({ v: PROTOCOL_VERSION, kind: 'store', ...question }, StoreAnswer, waitMs, expectAgents);
  }

  /** Asks every live agent and gathers their answers, one per host. */
  private async ask<T extends { host: string }>(question: 'list' | 'logs' | Extract<ClientMessage, { kind: 'store' }>, schema: z.ZodType<T>, waitMs: number, expectAgents = Infinity): Promise<T[]> {
    const hosts = new Set((await this.discover(expectAgents)).map((a) => a.host));
    const inbox = this.bus.inbox();
    const answers = new Map<string, T>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
      const stop = this.bus.subscribe(inbox, (data) => {
        const answer = receiveMessage(schema, data, () => this.rejected++);
        if (answer) answers.set(answer.host, answer);
        if ([...hosts].every((h) => answers.has(h))) done();
      });
      function done(): void {
        clearTimeout(timer);
        stop();
        resolve();
      }
      const message: ClientMessage = question === 'list' ? { v: PROTOCOL_VERSION, kind: 'list' } : question === 'logs' ? { v: PROTOCOL_VERSION, kind: 'logs' } : question;
      this.bus.publish(SUBJECTS[typeof question === 'string' ? question : 'store'], writeMessage(message), inbox);
      if (hosts.size === 0) done();
    });
    return [...answers.values()].sort((a, b) => a.host.localeCompare(b.host));
  }

  /**
   * Learns, for a history query (stored:<log>), which logs the agents keep and what their rows
   * hold, so that the query is planned here against them as a live one is against probe points.
   */
  async prepare(text: string, expectAgents = Infinity): Promise<void> {
    if (!/\bstored:/.test(text)) return;
    const provider = this.registry.providers.find((p): p is StoredProvider => p instanceof StoredProvider);
    if (provider === undefined) return;
    for (const answer of await this.logs(undefined, expectAgents)) provider.know(answer.logs.map((l) => ({ ...l, retainMs: l.retainMs })));
  }

  /** The merge tree a query would use over the agents it selects (`fay explain --cluster`). */
  async explainTree(text: string, options: { hosts?: readonly string[]; tree?: boolean } = {}): Promise<string> {
    await this.prepare(text);
    const plan = planStages(compileQuery(text, this.registry));
    const selection = new HostSelection(plan.logical.hosts, options.hosts);
    const hosts = (await this.discover()).map((a) => a.host).filter((h) => selection.includes(h)).sort();
    return describeTree(hosts, this.aggregators(), options.tree);
  }

  /** prepare(), then run(). */
  async start(text: string, options: ClusterRunOptions = {}): Promise<ClusterQueryRun> {
    await this.prepare(text, options.expectAgents);
    return this.run(text, options);
  }

  /** Asks every agent to stop a query (whoever started it). */
  stop(queryId: string): void {
    this.bus.publish(SUBJECTS.stop, writeMessage({ v: PROTOCOL_VERSION, kind: 'stop', id: queryId }));
  }

  async close(): Promise<void> {
    clearInterval(this.aggregatorCheck);
    this.unsubscribeBeats?.();
    for (const u of this.unsubscribe) u();
    await this.bus.close();
  }
}
