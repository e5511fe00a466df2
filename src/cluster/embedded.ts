import { readFileSync } from 'node:fs';
import { Agent } from '../agent/agent.js';
import { agentSettings, withWindowing } from '../agent/run-settings.js';
import { AgentService, type AgentServiceOptions } from '../agent/service.js';
import { InProcessBus } from '../bus/in-process.js';
import { UsageError } from '../errors.js';
import { explainPlan } from '../plan/explain.js';
import { planStages, type StagedPlan } from '../plan/planner.js';
import { compileQuery } from '../query/compile.js';
import { ClusterClient } from './cluster-client.js';
import type { ClusterQueryRun } from './cluster-run.js';
import type { RunOptions } from './query-handle.js';

export type { QueryHandle, RunOptions, StopReason } from './query-handle.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * Fay on this machine alone, with no server to start: the client, the cluster
 * stage and this machine's agent in one process, joined by an in-process bus.
 * The same code as a cluster runs, messages and all. The default way to run a query
 * (frontend/local-cluster.ts hands it this machine's providers).
 */
export class EmbeddedCluster {
  private readonly client: ClusterClient;

  constructor(readonly agent: Agent, options: Pick<AgentServiceOptions, 'store'> = {}) {
    const bus = new InProcessBus();
    new AgentService(bus, agent, { version: VERSION, ...options }).start();
    this.client = new ClusterClient(bus, agent.registry);
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

  /** For a history query (stored:<log>), learns which logs this machine's store keeps, for plan() and explain(). */
  prepare(query: string): Promise<void> {
    return this.client.prepare(query, 1);
  }

  /** run(), for any query: a history query first learns which logs this machine's store keeps. */
  async start(query: string, options: RunOptions = {}): Promise<ClusterQueryRun> {
    await this.prepare(query);
    return this.run(query, options);
  }

  run(query: string, options: RunOptions = {}): ClusterQueryRun {
    if (query.trim() === '') throw new UsageError('the query is empty', { hint: 'e.g. fay query "syscall:openat | count() by comm"' });
    return this.client.run(query, { ...options, expectAgents: 1 });
  }
}
