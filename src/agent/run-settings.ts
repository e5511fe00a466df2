import { DEFAULT_LIMITS, effectiveMaxGroups, type QueryLimits } from '../plan/limits.js';
import type { Windowing } from '../plan/logical.js';
import type { StagedPlan } from '../plan/planner.js';
import type { ProviderOptions } from '../probes/provider.js';
import type { AgentRunOptions } from './agent.js';

/** How a query is timed and capped, beyond its text: what the client and every agent must agree on. */
export interface QuerySettings {
  /** How often a running result (a query without `every`) is refreshed. Default 1000 ms. */
  readonly refreshMs?: number;
  /** Emit a result every this many ms, overriding the query's period (tumbling windows if it has none). */
  readonly everyMs?: number;
  /** Caps on groups, shipped events and memory; defaults in DEFAULT_LIMITS. */
  readonly limits?: Partial<QueryLimits>;
  /** Settings of particular providers (name → its options), which each checks itself. */
  readonly providerOptions?: ProviderOptions;
  /** Each host keeps what the query produces in its trace store: the log's name, and how long it keeps it (ms). */
  readonly persist?: { readonly name: string; readonly retainMs?: number };
}

export const DEFAULT_REFRESH_MS = 1000;

/** The plan with the command line's timing: --every sets the period (tumbling windows when the query has none). */
export function withWindowing(plan: StagedPlan, settings: QuerySettings): StagedPlan {
  if (settings.everyMs === undefined) return plan;
  const periodNs = settings.everyMs * 1e6;
  const windowing: Windowing = { periodNs, coverNs: plan.cluster.windowing.coverNs ?? periodNs };
  return { ...plan, cluster: { ...plan.cluster, windowing } };
}

/**
 * How an agent runs a plan: how often it reads partials, whether each read closes
 * a period of its own (any window), and the caps, the memory cap turned into groups.
 */
export function agentSettings(plan: StagedPlan, settings: QuerySettings): AgentRunOptions {
  const { windowing, output } = plan.cluster;
  const periodMs = windowing.periodNs === undefined ? (settings.refreshMs ?? DEFAULT_REFRESH_MS) : windowing.periodNs / 1e6;
  const limits = { ...DEFAULT_LIMITS, ...settings.limits };
  return {
    flushPeriodMs: Math.max(1, Math.round(periodMs)),
    windowed: windowing.coverNs !== undefined,
    maxGroups: effectiveMaxGroups(output.kind === 'Aggregate' ? output.aggregates : [], limits),
    maxEventsPerSecond: limits.maxEventsPerSecond,
    providerOptions: settings.providerOptions ?? {},
  };
}
