import type { Session as InspectorSession } from 'node:inspector';
import type { HeapSpaceInfo } from 'node:v8';
import type { AttachStall } from './contract.js';
import { clock, mod, NativePromise, scriptIds, scriptInfo } from './state.js';
import { fromWorkers } from './workers.js';

/**
 * The runtime's own inspector session (in-process, one for its whole life: within a session a
 * script keeps its id across live edits, whereas a new session also lists the stale versions each
 * edit leaves), the debugger on it, and what its stops of the program cost.
 */

let debug: InspectorSession | undefined;
/**
 * Whether its debugger is enabled. While it is, every await and promise reaction in the process
 * costs ~15× as much (V8 reports each to the inspector: ~4 µs instead of ~0.25 for a call with one
 * await, measured). Reading the sources and applying the edits follow each other within
 * milliseconds (enabling costs 2–5 ms), so after reading it stays on until the edits, at most
 * 50 ms by a timer (idle()); after editing or undoing it goes off at once (disabling costs ~0.1
 * ms): a timer fires only when the event loop turns, which a chain of awaits can put off for
 * as long as it runs.
 */
let debuggerOn = false;
let debuggerOff: NodeJS.Timeout | undefined;
/** Debugger work (reading sources, editing, undoing) runs one piece at a time, in order. */
let debuggerQueue: Promise<unknown> = NativePromise.resolve();

/** What the agent started watching at the pid check (WATCH_STOPS in attach.ts), for this runtime to read and end. */
export interface StopWatch {
  observer: { takeRecords(): { duration: number }[] };
  gcs: number[];
  delay: { max: number };
  end(watch: StopWatch): void;
}

/**
 * What the runtime's stops cost here: `edits` and `walks` scale the models of a live edit and of a
 * walk of the heap (learnt from each one made), `stalls` are the steps of the attach under way,
 * `coverage` the last count of compiled functions.
 */
export const pauses: {
  edits: number;
  walks: number;
  stalls: AttachStall[];
  watch: StopWatch | undefined;
  coverage: { at: number; byUrl: Map<string, number> } | undefined;
} = { edits: 1.25, walks: 1.25, stalls: [], watch: undefined, coverage: undefined };

/** Above this much heap in use, the program's garbage collector is let finish its marking before each stop (see breathe()). */
const SETTLE_ABOVE_BYTES = 64 * 1048576;
const SETTLE_MS = 300;

/** A stop that would be longer than the query allows. */
export class TooCostly extends Error {}

/** Runs debugger work after what is queued. */
export function exclusive<T>(work: () => T | Promise<T>): Promise<T> {
  const result = debuggerQueue.then(work);
  debuggerQueue = result.catch(() => undefined);
  return result;
}

/** An inspector method's result. */
export function post<T = Record<string, unknown>>(session: InspectorSession, method: string, params?: object): Promise<T> {
  return new NativePromise<T>((resolve, reject) => {
    const callback = (error: Error | null, result?: object) => (error ? reject(error) : resolve((result ?? {}) as T));
    (session.post as (method: string, params: object, callback: (error: Error | null, result?: object) => void) => void)(method, params ?? {}, callback);
  });
}

/** The runtime's inspector session (in-process, one for its whole life). */
export function inspectorSession(): InspectorSession {
  if (debug === undefined) {
    const session = new (mod<typeof import('node:inspector')>('inspector').Session)();
    session.connect();
    session.on('Debugger.scriptParsed', (message: { params: { url: string; scriptId: string; length: number; hash: string } }) => {
      const { url, scriptId } = message.params;
      if (url && !scriptIds.has(url)) {
        scriptIds.set(url, scriptId);
        scriptInfo.set(url, { length: message.params.length, hash: message.params.hash });
      }
    });
    for (const event of ['NodeWorker.attachedToWorker', 'NodeWorker.detachedFromWorker', 'NodeWorker.receivedMessageFromWorker']) {
      session.on(event, fromWorkers);
    }
    debug = session;
  }
  return debug;
}

/** Whether the debugger is on now. */
export function debuggerIsOn(): boolean {
  return debuggerOn;
}

/** The runtime's inspector session with the debugger enabled, unless that would stop the process longer than `limitMs` (TooCostly). */
export async function debugging(limitMs = Infinity): Promise<InspectorSession> {
  const session = inspectorSession();
  clearTimeout(debuggerOff);
  if (!debuggerOn) {
    // V8 walks the heap for the scripts, and reports each (and hashes them all, the first time).
    const estimate = enableCost();
    if (estimate.ms > limitMs) throw new TooCostly(`turning the debugger on could stop the process for ~${estimate.ms} ms (a ${estimate.heapMb} MB heap), over the --max-pause of ${limitMs} ms`);
    const started = clock.now();
    await post(session, 'Debugger.enable');
    const ms = clock.now() - started;
    stalled('turning the debugger on', ms);
    learnedWalk(estimate.ms, ms);
    debuggerOn = true;
    await breathe();
  }
  return session;
}

/** The sources are read: the debugger goes off unless the edits come within 50 ms. */
export function idle(): void {
  clearTimeout(debuggerOff);
  debuggerOff = setTimeout(() => void debuggerNowOff().catch(() => undefined), 50);
  debuggerOff.unref();
}

export function debuggerNowOff(): Promise<unknown> {
  clearTimeout(debuggerOff);
  if (!debug || !debuggerOn) return NativePromise.resolve();
  debuggerOn = false;
  return post(debug, 'Debugger.disable');
}

/**
 * The heap as the model of an edit's cost reads it (MB): in use in all, and in the spaces of small
 * objects (old and new space), which a walk of the heap visits one by one; large objects cost
 * a walk next to nothing.
 */
export function heapFigures(): { used: number; small: number } {
  let used = 0;
  let small = 0;
  for (const space of mod<{ getHeapSpaceStatistics(): HeapSpaceInfo[] }>('v8').getHeapSpaceStatistics()) {
    const mb = space.space_used_size / 1048576;
    used += mb;
    if (space.space_name === 'old_space' || space.space_name === 'new_space') small += mb;
  }
  return { used, small };
}

/**
 * How long turning the debugger on (or starting the profiler) would stop this process (ms),
 * estimated first: 20 + 0.3 per MB of heap (measured up to 600 MB: 181 ms in a 470 MB heap), times `pauses.walks`.
 */
export function enableCost(): { ms: number; heapMb: number } {
  const heap = heapFigures();
  return { ms: Math.round(pauses.walks * (20 + 0.3 * heap.used)), heapMb: Math.round(heap.used) };
}

/** A walk of the heap (turning the debugger on, starting the profiler) took longer than estimated: later ones are estimated higher. */
export function learnedWalk(estimateMs: number, ms: number): void {
  if (estimateMs > 0 && ms > estimateMs) pauses.walks *= ms / estimateMs;
}

/**
 * An attach starts: its steps' stops are counted from now, and what the agent started watching at
 * the pid check (WATCH_STOPS in attach.ts: the event loop's delays, the garbage collections) is
 * this runtime's to read and end (see attachStalls()).
 */
export function watchAttach(): void {
  pauses.stalls = [];
  try {
    if (pauses.watch) pauses.watch.end(pauses.watch);
  } catch {
    // Ended already.
  }
  const global = globalThis as { __fay$stops?: StopWatch };
  pauses.watch = global.__fay$stops;
  delete global.__fay$stops;
}

/** A stop of the program's JavaScript by the runtime's own work, kept for the attach's report. */
export function stalled(what: string, ms: number): void {
  pauses.stalls.push({ what, ms: Math.round(ms) });
}

/**
 * Lets the program run (its timers, its I/O) before the next stop: each stop is then one step
 * long. In a large heap, it also lets the garbage collector finish a marking it has under way
 * (see SETTLE in attach.ts): a walk of the heap, or the next allocation of code, would otherwise
 * finish it in one stop (~0.7 ms per MB: 380 ms in a 390 MB heap, measured).
 */
export async function breathe(): Promise<boolean | undefined> {
  await new NativePromise((resolve) => setImmediate(resolve));
  if (mod<typeof import('node:v8')>('v8').getHeapStatistics().used_heap_size < SETTLE_ABOVE_BYTES) return undefined;
  let sink: number[] | undefined;
  const until = clock.now() + SETTLE_MS;
  while (clock.now() < until) {
    for (let i = 0; i < 16; i++) sink = new Array<number>(1024).fill(i);
    await new NativePromise((resolve) => setImmediate(resolve));
  }
  return sink === undefined;
}
