import type { GroupTable } from '../agg/group-table.js';
import type { ResolveFailure, SourceSchema } from '../plan/catalog.js';
import type { Row } from '../plan/evaluate.js';
import type { ProbeProgramText } from '../plan/explain.js';
import type { ProbeStage } from '../plan/planner.js';
import type { TraceStore } from '../store/trace-store.js';

/** One probe point `fay probes` lists. */
export interface ProbeListing {
  readonly point: string;
  readonly description: string;
  /** False when the point exists in the language but cannot run here; description says why. */
  readonly available: boolean;
}

export interface CompileOptions {
  /** How often the probe's partials are read. With `windowed`, this is also the window length. */
  readonly flushPeriodMs: number;
  /** Each partial covers exactly its own period (`every`), rather than being a running delta. */
  readonly windowed: boolean;
  /** This machine's name, the value of the `host` field. */
  readonly host: string;
  /** Groups a partial keeps before folding the rest into (other). */
  readonly maxGroups: number;
  /** Events this probe may ship per second; the rest are dropped where they fire and counted. */
  readonly maxEventsPerSecond: number;
  /** This provider's own options of the query (its entry in ProviderOptions), unchecked: the provider checks them. */
  readonly providerOptions?: unknown;
  /**
   * When set, the probes see only processes in this cgroup (v2; an absolute path under the
   * cgroup2 mount): an agent that stands for one container or slice of a machine.
   */
  readonly cgroup?: string;
  /** This machine's trace store, for a probe that reads it (a history query's scan). */
  readonly store?: () => Promise<TraceStore>;
}

/**
 * Aggregate states of one period, read from a probe. The states are deltas:
 * merging every partial of a run gives the run's whole aggregate.
 */
export interface ProbePartial {
  readonly table: GroupTable;
  /** Wall-clock ns since the epoch: the period this partial covers. */
  readonly startNs: number;
  readonly endNs: number;
  /** Events of this period that no group took: a kernel map was full (0 or absent: none). */
  readonly uncountedEvents?: number;
}

/** Where a running probe delivers what it reads. Providers never print: they report here. */
export interface ProbeSink {
  partial(partial: ProbePartial): void;
  /** Events shipped by the probe, with the values the plan asked for. */
  events(rows: readonly Row[]): void;
  /** Something the user must know about, e.g. events the kernel dropped. */
  notice(message: string): void;
  /** Events not shipped because of the events-per-second cap, since the last report. */
  dropped(events: number): void;
  /** The flight recorder's events, oldest first, when its trigger held (or at the end). */
  dump(dump: RecordingDump): void;
  /** Once stopping: the probe is removing its probes from the kernel, `left` of `total` still in. */
  detaching(left: number, total: number): void;
  /**
   * The events delivered so far close the period [startNs, endNs) (a probe that keeps time itself,
   * CompiledProbe.keepsTime: a scan of stored events, whose periods are the events' own).
   */
  period(startNs: number, endNs: number): void;
}

/** What a flight recorder wrote out. */
export interface RecordingDump {
  /** The recorded columns of each event, oldest first; the triggering event last. */
  readonly rows: readonly Row[];
  /** Wall-clock ns of the triggering event; undefined for the dump at the end of the query. */
  readonly triggerNs: number | undefined;
}

export interface RunningProbe {
  /**
   * Resolves once every probe is attached; rejects (with a user-facing error when it is one) if
   * attaching fails, or with StoppedBeforeAttaching if stop() came first (then `finished` resolves).
   */
  readonly attached: Promise<void>;
  /** Resolves after the final partial has been delivered and nothing is left attached. */
  readonly finished: Promise<void>;
  /** Detaches, delivering a final partial first. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Why `attached` rejects when the probes were stopped while they were being attached: no failure,
 * the query was stopped first (a fay stop, a client gone, another probe of the query refused).
 */
export class StoppedBeforeAttaching extends Error {
  constructor() {
    super('stopped before its probes were attached');
    this.name = 'StoppedBeforeAttaching';
  }
}

/** A probe stage compiled for one provider, ready to start. */
export interface CompiledProbe {
  readonly program: ProbeProgramText;
  /**
   * Its periods are its own (a scan of stored data, in the data's time), not the machine's clock:
   * the machine stage closes none itself, and the query ends when the probe finishes.
   */
  readonly keepsTime?: boolean;
  start(sink: ProbeSink): RunningProbe;
}

/**
 * What a query sets for particular providers beyond the generic caps: provider name → that
 * provider's own options (e.g. `{ node: { maxEditPauseMs: 100 } }`). Opaque to the plan, the agent
 * and the bus; each provider checks its entry against its own schema.
 */
export type ProviderOptions = Readonly<Record<string, unknown>>;

/** A source of events: resolves its probe points, lists them, compiles probe stages. */
export interface Provider {
  readonly name: string;
  /** The probe point prefixes it owns, e.g. `syscall`, `tracepoint`. */
  readonly prefixes: readonly string[];
  resolve(point: string): SourceSchema | ResolveFailure;
  /** Probe points matching a glob; may attach to processes to find them. */
  list(glob: string): Promise<ProbeListing[]>;
  /**
   * Checks this provider's options of a query (CompileOptions.providerOptions), before anything runs:
   * throws a UsageError saying which is wrong. A provider without it takes no options.
   */
  checkOptions?(options: unknown): void;
  compile(stage: ProbeStage, options: CompileOptions): CompiledProbe;
}
