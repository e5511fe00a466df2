import { Agent, type RunningQuery } from '../agent/agent.js';
import { agentSettings, withWindowing, type QuerySettings } from '../agent/run-settings.js';
import { UsageError } from '../errors.js';
import { explainPlan } from '../plan/explain.js';
import { planStages, type StagedPlan } from '../plan/planner.js';
import { BpfProvider } from '../probes/bpf/provider.js';
import { NodeProvider } from '../probes/node/provider.js';
import { ProbeRegistry } from '../probes/registry.js';
import { compileQuery } from '../query/compile.js';
import { ClusterStage, type QueryMessage } from './cluster-stage.js';
import { MessageQueue } from './message-queue.js';

export interface RunOptions extends QuerySettings {
  /** Stop this long after the probes are attached. Without it, the query runs until stop(). */
  readonly durationMs?: number;
}

/** How a run ended. */
export type StopReason = 'stopped' | 'duration' | 'limit';

/** A running query as its reader sees it, embedded or across a cluster. */
export interface QueryHandle extends AsyncIterable<QueryMessage> {
  /** Resolves when the probes are attached (everywhere that answered); rejects if none could be. */
  readonly attached: Promise<void>;
  /** Resolves with why the run ended, once everything is detached and delivered. */
  readonly ended: Promise<StopReason>;
  stop(reason?: StopReason): Promise<void>;
}

/** This machine's probe providers: the kernel's and Node.js'. */
export function localRegistry(): ProbeRegistry {
  return new ProbeRegistry([new BpfProvider(), new NodeProvider()]);
}

/**
 * One running query: an async iterable of its messages (results, events,
 * notices), ending after the final result once the query stops.
 */
export class QueryRun implements QueryHandle {
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
    return new EmbeddedCluster(new Agent(localRegistry(), host));
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
