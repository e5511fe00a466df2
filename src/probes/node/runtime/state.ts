import type { Socket } from 'node:net';
import type { Session as InspectorSession } from 'node:inspector';
import type { BroadcastChannel } from 'node:worker_threads';
import type { Insertion } from '../functions.js';
import type { KeptAggregate } from '../codegen.js';
import type { InstallConfig, PairSpec, ProbeHandler, ProbeHooks, SessionState } from './contract.js';

/**
 * The runtime's state in one process (one thread), and the built-ins it uses, taken when the
 * runtime is created: before any probe can wrap them, so that its own use is never counted. The
 * bundle is evaluated at every attach, but only the first evaluation's runtime is kept
 * (globalThis.__fay$): this module's values are that runtime's.
 */

export const mod = <T = unknown>(name: string): T => process.getBuiltinModule(name) as T;
export const utilTypes = process.getBuiltinModule('util').types;
export const clock = globalThis.performance;
/** Date.now as it was (probes on it, or fake timers installed later, are not this runtime's clock). */
export const wallNow = Date.now;
export const toJson = JSON.stringify;
export const fromJson = JSON.parse as (text: string) => unknown;
/** The intrinsic Promise, which await uses, even where the program replaced the global one. */
export const NativePromise = (Object.getPrototypeOf((async () => {})()) as { constructor: PromiseConstructor }).constructor;
// Taken off the intrinsic Promise to be called on it (and on its promises) with call(): never wrapped, never replaced.
// eslint-disable-next-line @typescript-eslint/unbound-method
export const promiseResolve = NativePromise.resolve;
// eslint-disable-next-line @typescript-eslint/unbound-method
export const promiseThen = NativePromise.prototype.then;
export const resolved: Promise<void> = promiseResolve.call(NativePromise, undefined) as Promise<void>;
export const noop = (): undefined => undefined;
export const isMainThread = (): boolean => process.getBuiltinModule('worker_threads').isMainThread;

/** A probe's own aggregates of its calls' durations since the last flush (see NodeProgram.kept). */
export interface KeptStates {
  sum: number;
  min: number;
  max: number;
  hist: number[];
}

/** One live probe: a function, a wrapped built-in, a channel or a profile. */
export interface Probe {
  name: string;
  async: boolean;
  awaits: boolean;
  handler: ProbeHandler;
  session: RuntimeSession;
  disabled: boolean;
  calls: number;
  /** Handles 1 call in `every` (over --max-calls). */
  every: number;
  /** Calls counted at the last flush. */
  seen: number;
  depth: number;
  starts: number[];
  args: (ArrayLike<unknown> | undefined)[];
  /** The open synchronous frames' `this`, where the handler reads it. */
  selves: unknown[];
  /** Async calls not settled yet. */
  pending: number;
  kept: KeptStates | undefined;
  hooks: ProbeHooks;
}

/** One function's instrumentation in a script: its probe id, what identifies it, its insertions. */
export interface EditEntry {
  fid: number;
  key: string;
  insertions: Insertion[];
}

/** A script with any session's edits in it. */
export interface EditedScript {
  url: string;
  chars: number;
  /** Its source before any edit (read once an edit of it is decided on). */
  pristine: string | undefined;
  functions: number;
  /** session id → its entries (one per function). An ended session's entries stay while its edits are kept. */
  bySession: Map<string, EditEntry[]>;
  /** The insertion lists in the source now. */
  applied: Insertion[][];
  lineStarts?: number[];
}

/** A wrapper put on a property, and what to put back. */
export interface Wrap {
  owner: Record<PropertyKey, unknown>;
  key: string;
  own: boolean;
  original: unknown;
  wrapper: unknown;
  descriptor?: PropertyDescriptor;
}

/** An edit kept after its session that taking out would stop the process too long. */
export interface LeftEdit {
  url: string;
  ms: number;
  limitMs: number;
  figures: string;
}

/** A worker thread as the runtime's inspector session sees it. */
export interface WorkerThread {
  sessionId: string;
  thread: number;
  name: string;
  runtime: Promise<string | undefined> | undefined;
}

/** A flush's wait for the workers' partials. */
export interface WorkerWait {
  period: number;
  arrived(partial: PartialMessage): void;
  gaveUp(thread: number): void;
}

/** A partial as a session sends it (to the agent, or from a worker to its main thread). */
export interface PartialMessage {
  type: 'partial' | 'exiting';
  period: number;
  groups: unknown[];
  rows: unknown[][];
  dropped: number;
  folded: number;
  sampling: { name: string; every: number; rate: number }[];
  pending: { name: string; calls: number; awaitsSeen: boolean }[];
  /** Each channel probe's messages since the session opened (so that one nobody publishes on can be said). */
  published?: Record<string, number>;
  /** Each paired probe's pairs begun and not ended, now. */
  inFlight?: Record<string, number>;
  thread?: number;
}

/** A session's workers, seen from the main thread. */
export interface SessionThreads {
  channel: BroadcastChannel;
  live: Set<WorkerThread>;
  waiting: WorkerWait | undefined;
  late: PartialMessage[];
  closed: boolean;
  stop: () => void;
}

/** One query's probes in this process (one attach's session). */
export interface RuntimeSession {
  id: string;
  /** How long taking its edits out may stop the process (its query's --max-pause). */
  maxPauseMs: number;
  fids: number[];
  wraps: Wrap[];
  /** The scripts it edited. */
  edits: string[];
  /** Its diagnostics_channel subscriptions, each with its probe. */
  channels: { name: string; probe: string; fid: number; listener: (message: unknown) => void }[];
  /** Its paired probes (pairs.ts), with the pairs begun and not ended. */
  pairs: { pair: PairSpec; inFlight: number }[];
  socket: Socket | undefined;
  /** In a worker: the channel to the main thread's session, which relays (see openInWorkers()). */
  relay: BroadcastChannel | undefined;
  /** In the main thread: the session's workers (see openInWorkers()). */
  threads: SessionThreads | undefined;
  /** The scripts there were at the attach (see lookForScripts()); those sent for edits since. */
  known: Set<string> | undefined;
  asked: Set<string>;
  modules: number;
  looking: Promise<unknown> | undefined;
  state: SessionState;
  closed: boolean;
  profile?: { fid: number; inspector: InspectorSession };
  onExit?: () => void;
  /** When its kept edits come out (ms since the epoch); Infinity: only by fay release. */
  keptUntil?: number;
  stuck?: LeftEdit[];
  config: InstallConfig;
  notice(message: string): void;
  askEdits(sources: Record<string, string>): void;
  detach(reason: string): Promise<void>;
}

/** fid → live probe, or null once detached. Kept dense: a sparse array makes V8 look each id up in a dictionary, on every call. */
export const probes: (Probe | null)[] = [null];
export const sessions = new Map<string, RuntimeSession>();
/** token → a connection to the agent opened for an attach whose session has not opened yet. */
export const links = new Map<string, Socket>();
/** url → script id, as the runtime's inspector session first saw it. */
export const scriptIds = new Map<string, string>();
/** url → { length, hash } of its source as V8 reported it (hash: SHA-256 of its UTF-8), without reading it. */
export const scriptInfo = new Map<string, { length: number; hash: string }>();
/** script id → the script while any session's edits are in it. */
export const editedScripts = new Map<string, EditedScript>();
/** Scripts only workers have. */
export const workerOnly = new Set<string>();

/** The kept aggregates a probe's hooks keep (see NodeProgram.kept). */
export type Kept = readonly KeptAggregate[];

/** A probe's own aggregates, empty. */
export function emptyKept(): KeptStates {
  return { sum: 0, min: Infinity, max: -Infinity, hist: Array.from({ length: 66 }, () => 0) };
}

/**
 * The power-of-two bucket of a value, as the query's hist() has it (as bpftrace's): -1 for
 * negatives, 0 for 0, k for 2^(k-1) ≤ v < 2^k. The one definition for hooks and handlers.
 */
export function log2(v: number): number {
  if (v < 0) return -1;
  if (v < 1) return 0;
  if (v < 4294967296) return 32 - Math.clz32(v);
  let k = 33;
  for (let bound = 8589934592; v >= bound; bound *= 2) k++;
  return k;
}

/** A value down a path of own data properties; never a getter, never through a proxy. */
export function ownPath(value: unknown, steps: readonly string[]): unknown {
  for (const step of steps) {
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || utilTypes.isProxy(value)) return undefined;
    const d = Object.getOwnPropertyDescriptor(value, step);
    if (!d || !('value' in d)) return undefined;
    value = d.value as unknown;
  }
  return value;
}

/** The file a script URL names (file:// or a path), or undefined (node:, evaluated code). */
export function filePath(url: string): string | undefined {
  return url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url.startsWith('/') ? url : undefined;
}

/** How many CommonJS modules are loaded. */
export function moduleCount(): number {
  const cache = commonJsCache();
  return cache ? Object.keys(cache).length : 0;
}

/** The CommonJS module cache (path → module), if any. */
export function commonJsCache(): Record<string, { exports?: unknown } | undefined> | undefined {
  return (mod<{ _cache?: Record<string, { exports?: unknown }> }>('module'))._cache;
}
