import { hostname } from 'node:os';
import type { ProbeProgramText } from '../plan/explain.js';
import type { StagedPlan } from '../plan/planner.js';
import type { CompiledProbe, Provider, ProviderOptions, RunningProbe } from '../probes/provider.js';
import type { ProbeRegistry } from '../probes/registry.js';
import type { TraceStore } from '../store/trace-store.js';
import { MachineStage, type MachineSink } from './machine-stage.js';

export interface AgentRunOptions {
  /** How often partials are read; with `windowed`, the window length. */
  readonly flushPeriodMs: number;
  readonly windowed: boolean;
  /** Groups a table keeps (the memory cap already applied). */
  readonly maxGroups: number;
  readonly maxEventsPerSecond: number;
  /** Each provider's own options of the query, by provider name; each provider gets its entry. */
  readonly providerOptions: ProviderOptions;
  /** This machine's trace store, for a history query's scan. */
  readonly store?: () => Promise<TraceStore>;
}

/** A query compiled for this machine's providers, ready to start. */
export interface CompiledQuery {
  readonly programs: readonly ProbeProgramText[];
  start(sink: MachineSink): RunningQuery;
}

/** A query running on this machine: attached, finished and stopped as one, like each of its probes. */
export type RunningQuery = RunningProbe;

/**
 * The agent of one machine: compiles a plan's probe stage for each provider
 * it involves, runs them, and feeds their output through the machine stage.
 */
export class Agent {
  constructor(
    readonly registry: ProbeRegistry,
    readonly host: string = hostname(),
    /** When set, this agent's probes see only the processes of this cgroup (v2, absolute path). */
    readonly cgroup?: string,
  ) {}

  compile(plan: StagedPlan, options: AgentRunOptions): CompiledQuery {
    const byProvider = new Map<Provider, StagedPlan['probe']['sources'][number][]>();
    for (const source of plan.probe.sources) {
      const provider = this.registry.providerOf(source.schema.point);
      if (!provider) throw new Error(`no provider for ${source.schema.point}`);
      byProvider.set(provider, [...(byProvider.get(provider) ?? []), source]);
    }
    const { providerOptions, ...generic } = options;
    const compileOptions = { ...generic, host: this.host, ...(this.cgroup !== undefined && { cgroup: this.cgroup }) };
    const probes: CompiledProbe[] = [...byProvider].map(([provider, sources]) =>
      provider.compile({ ...plan.probe, sources }, { ...compileOptions, providerOptions: Object.hasOwn(providerOptions, provider.name) ? providerOptions[provider.name] : undefined }),
    );
    return {
      programs: probes.map((p) => p.program),
      start: (sink) => this.start(plan, probes, sink, options),
    };
  }

  private start(plan: StagedPlan, probes: readonly CompiledProbe[], sink: MachineSink, options: AgentRunOptions): RunningQuery {
    const stage = new MachineStage(plan, this.host, sink, Date.now() * 1e6, { maxGroups: options.maxGroups });
    const running: RunningProbe[] = probes.map((p) => p.start(stage));
    let timer: NodeJS.Timeout | undefined;
    // A probe that keeps time itself (a scan of stored data) closes the periods; else the clock does.
    const clocked = stage.ticksItself && !probes.some((p) => p.keepsTime);
    if (clocked) timer = setInterval(() => stage.tick(Date.now() * 1e6), options.flushPeriodMs);
    const attached = Promise.all(running.map((r) => r.attached)).then(() => undefined);
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        await Promise.allSettled(running.map((r) => r.stop()));
        if (timer) clearInterval(timer);
        if (clocked) stage.tick(Date.now() * 1e6);
      })());
    // One probe failing to attach stops the others: a query runs whole or not at all.
    attached.catch(() => void stop());
    const finished = (async () => {
      const results = await Promise.allSettled(running.map((r) => r.finished));
      await stop();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })();
    return { attached, finished, stop };
  }
}
