import { Agent, type AgentRunOptions, type RunningQuery } from '../agent/agent.js';
import { UsageError } from '../errors.js';
import { explainPlan } from '../plan/explain.js';
import { DEFAULT_LIMITS, effectiveMaxGroups, type QueryLimits } from '../plan/limits.js';
import type { Windowing } from '../plan/logical.js';
import { planStages, type StagedPlan } from '../plan/planner.js';
import { BpfProvider } from '../probes/bpf/provider.js';
import { NodeProvider } from '../probes/node/provider.js';
import { ProbeRegistry } from '../probes/registry.js';
import { compileQuery } from '../query/compile.js';
import { ClusterStage, type QueryMessage } from './cluster-stage.js';
import { MessageQueue } from './message-queue.js';

export interface RunOptions {
  /** Stop this long after the probes are attached. Without it, the query runs until stop(). */
  readonly durationMs?: number;
  /** How often a running result (a query without `every`) is refreshed. Default 1000 ms. */
  readonly refreshMs?: number;
  /** Emit a result every this many ms, overriding the query's period (tumbling windows if it has none). */
  readonly everyMs?: number;
  /** Caps on groups, shipped events and memory; defaults in DEFAULT_LIMITS. */
  readonly limits?: Partial<QueryLimits>;
}

const DEFAULT_REFRESH_MS = 1000;

/** The plan with the command line's timing: --every sets the period (tumbling windows when the query has none). */
function withWindowing(plan: StagedPlan, options: RunOptions): StagedPlan {
  if (options.everyMs === undefined) return plan;
  const periodNs = options.everyMs * 1e6;
  const windowing: Windowing = { periodNs, coverNs: plan.cluster.windowing.coverNs ?? periodNs };
  return { ...plan, cluster: { ...plan.cluster, windowing } };
}

/**
 * How the agent runs a plan: how often it reads partials, whether each read closes
 * a period of its own (any window), and the caps, the memory cap turned into groups.
 */
function agentSettings(plan: StagedPlan, options: RunOptions): AgentRunOptions {
  const { windowing, output } = plan.cluster;
  const periodMs = windowing.periodNs === undefined ? (options.refreshMs ?? DEFAULT_REFRESH_MS) : windowing.periodNs / 1e6;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  return {
    flushPeriodMs: Math.max(1, Math.round(periodMs)),
    windowed: windowing.coverNs !== undefined,
    maxGroups: effectiveMaxGroups(output.kind === 'Aggregate' ? output.aggregates : [], limits),
    maxEventsPerSecond: limits.maxEventsPerSecond,
    maxCallsPerSecond: limits.maxCallsPerSecond,
  };
}

/** How a run ended. */
export type StopReason = 'stopped' | 'duration' | 'limit';

/**
 * One running query: an async iterable of its messages (results, events,
 * notices), ending after the final result once the query stops.
 */
export class QueryRun implements AsyncIterable<QueryMessage> {
  /** Resolves when every probe is attached; rejects if any cannot be. */
  readonly attached: Promise<void>;
  /** Resolves with why the run ended, once everything is detached and delivered. */
  readonly ended: Promise<StopReason>;
  private readonly queue = new MessageQueue<QueryMessage>();
  private reason: StopReason | undefined;
  private readonly running: RunningQuery;

  constructor(
    readonly plan: StagedPlan,
    agent: Agent,
    options: RunOptions,
  ) {
    const staged = withWindowing(plan, options);
    const settings = agentSettings(staged, options);
    const cluster = new ClusterStage(staged, settings.flushPeriodMs * 1e6, settings.maxGroups, (m) => this.queue.push(m), () => void this.stop('limit'));
    this.running = agent.compile(staged, settings).start(cluster);
    this.attached = this.running.attached;
    let timer: NodeJS.Timeout | undefined;
    if (options.durationMs !== undefined) {
      const durationMs = options.durationMs;
      this.attached.then(
        () => void (timer = setTimeout(() => void this.stop('duration'), durationMs)),
        () => undefined,
      );
    }
    this.ended = this.running.finished.then(
      () => {
        if (timer) clearTimeout(timer);
        cluster.finish(Date.now() * 1e6);
        this.queue.close();
        return this.reason ?? 'stopped';
      },
      (error: unknown) => {
        if (timer) clearTimeout(timer);
        this.queue.fail(error);
        throw error;
      },
    );
    // Failures reach the reader through the iterator; keep this promise from being reported as unhandled.
    this.ended.catch(() => undefined);
  }

  /** Detaches every probe; the iteration ends after the final result. */
  async stop(reason: StopReason = 'stopped'): Promise<void> {
    this.reason ??= reason;
    await this.running.stop();
  }

  [Symbol.asyncIterator](): AsyncIterator<QueryMessage> {
    return this.queue[Symbol.asyncIterator]();
  }
}

/**
 * Fay on this machine alone: the client, the cluster stage and one agent in
 * one process, with no server to start. The default way to run a query.
 */
export class EmbeddedCluster {
  constructor(readonly agent: Agent) {}

  /** The embedded cluster of this machine, with its kernel provider. */
  static local(host?: string): EmbeddedCluster {
    return new EmbeddedCluster(new Agent(new ProbeRegistry([new BpfProvider(), new NodeProvider()]), host));
  }

  /** Parses, checks and stages a FayQL query. */
  plan(query: string): StagedPlan {
    if (query.trim() === '') throw new UsageError('the query is empty', { hint: 'e.g. fay query "syscall:openat | count() by comm"' });
    return planStages(compileQuery(query, this.agent.registry));
  }

  /** The stages of a query, where each part runs, and the generated probe programs. */
  explain(query: string, options: RunOptions = {}): string {
    const plan = withWindowing(this.plan(query), options);
    const compiled = this.agent.compile(plan, agentSettings(plan, options));
    return explainPlan(plan, compiled.programs);
  }

  run(query: string | StagedPlan, options: RunOptions = {}): QueryRun {
    const plan = typeof query === 'string' ? this.plan(query) : query;
    return new QueryRun(plan, this.agent, options);
  }
}
