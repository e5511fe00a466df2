import type { BroadcastChannel } from 'node:worker_threads';
import { OWN_URL, RUNTIME_VERSION, type HandlerFactory, type ProbeReport } from './contract.js';
import { inspectorSession, post } from './debugger.js';
import { fromJson, mod, NativePromise, noop, sessions, toJson, workerOnly, type PartialMessage, type RuntimeSession, type SessionThreads, type WorkerThread } from './state.js';

/**
 * Worker threads. Each runs JavaScript of its own, in an isolate of its own, which this thread's
 * probes do not reach. This runtime sees them through NodeWorker, its inspector session's view of
 * the workers (enabled while anything here needs them: ~1 ms, and every worker started meanwhile
 * gets an inspector session), installs itself in each by evaluating its own source there, and
 * relays: a session's workers read their scripts' sources for it, take its probes, and answer its
 * flushes on a BroadcastChannel, on their own event loops.
 */

/** How long a worker may take to answer an evaluation. */
const WORKER_TIMEOUT_MS = 5000;
/** How long a flush waits for the workers' partials; a query's last one, longer. */
const WORKER_WAIT_MS = 20;
const FINAL_WORKER_WAIT_MS = 1000;
/** How long after a worker's end its last counts may still come (they were sent before it ended). */
const LAST_WORD_WAIT_MS = 100;

/** A flush as the agent asks it. */
export interface FlushMessage {
  type: 'flush';
  period: number;
  capPerSecond: number;
  seconds: number;
  final?: boolean;
}

/** A worker's answer to an evaluation. */
interface WorkerAnswer {
  id?: number;
  error?: { message?: string };
  result?: { result?: { value?: unknown }; exceptionDetails?: { exception?: { description?: string }; text?: string } };
}

const workerWatch = {
  users: 0,
  ready: undefined as Promise<unknown> | undefined,
  calls: 0,
  pending: new Map<number, { sessionId: string; settle: (error: Error | undefined, value?: unknown) => void }>(),
  workers: new Map<string, WorkerThread>(),
  listeners: new Set<(worker: WorkerThread) => void>(),
};

/** The runtime's own source (main.ts sets it): what a worker evaluates to get the same runtime. */
let runtimeSource = '';
export function setRuntimeSource(source: string): void {
  runtimeSource = source;
}

/** Every worker there is now. */
export function workers(): WorkerThread[] {
  return [...workerWatch.workers.values()];
}

/**
 * Worker threads. Each runs JavaScript of its own, in an isolate of its own, which this thread's
 * probes do not reach. This runtime sees them through NodeWorker, its inspector session's view of
 * the workers (enabled while anything here needs them: ~1 ms, and every worker started meanwhile
 * gets an inspector session), installs itself in each by evaluating its own source there, and
 * relays: a session's workers read their scripts' sources for it, take its probes, and answer its
 * flushes on a BroadcastChannel, on their own event loops.
 */
export function watchWorkers(): Promise<unknown> {
  const inspector = inspectorSession();
  if (workerWatch.users++ === 0) {
    workerWatch.ready = post(inspector, 'NodeWorker.enable', { waitForDebuggerOnStart: false }).catch(() => undefined);
  }
  return workerWatch.ready ?? NativePromise.resolve();
}

export function unwatchWorkers(): void {
  if (--workerWatch.users > 0) return;
  workerWatch.ready = undefined;
  // Their sessions end with it: the next watch sees them under new session ids.
  workerWatch.workers.clear();
  for (const call of workerWatch.pending.values()) call.settle(new Error('no longer watching the workers'));
  void post(inspectorSession(), 'NodeWorker.disable').catch(() => undefined);
}

/** Evaluates an expression in a worker (awaited, its value returned); rejects if the worker goes or takes too long. */
export function inWorker<T = unknown>(sessionId: string, expression: string): Promise<T> {
  const id = ++workerWatch.calls;
  return new NativePromise<T>((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error(`no answer within ${WORKER_TIMEOUT_MS} ms`)), WORKER_TIMEOUT_MS);
    timer.unref();
    const settle = (error: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      workerWatch.pending.delete(id);
      if (error) reject(error);
      else resolve(value as T);
    };
    workerWatch.pending.set(id, { sessionId, settle });
    const message = { id, method: 'Runtime.evaluate', params: { expression: `${expression}\n//# sourceURL=${OWN_URL}`, awaitPromise: true, returnByValue: true } };
    // In ASCII: the way to a worker mangles other characters (its inspector then reads no JSON).
    const ascii = toJson(message).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    post(inspectorSession(), 'NodeWorker.sendMessageToWorker', { sessionId, message: ascii }).catch((e: Error) => settle(e));
  });
}

/** A worker's answer to inWorker, or its end. */
export function fromWorkers(event: { method: string; params: Record<string, unknown> }): void {
  if (event.method === 'NodeWorker.detachedFromWorker') {
    const sessionId = String(event.params.sessionId);
    const gone = workerWatch.workers.get(sessionId);
    workerWatch.workers.delete(sessionId);
    for (const p of workerWatch.pending.values()) if (p.sessionId === sessionId) p.settle(new Error('the worker ended'));
    // A worker that ends sends its last counts as it exits; one terminated cannot (see lastWordFrom()).
    if (gone) for (const session of sessions.values()) if (session.threads?.live.has(gone)) lastWordFrom(session, gone);
    return;
  }
  if (event.method === 'NodeWorker.attachedToWorker') {
    const { sessionId, workerInfo } = event.params as { sessionId: string; workerInfo: { title: string; workerId: string } };
    // Its title is "[worker <threadId>] <name>": the program knows it by that threadId (NodeWorker's own id differs).
    const titled = /^\[worker (\d+)\] ?(.*)$/.exec(String(workerInfo.title));
    const thread = titled ? Number(titled[1]) : Number(workerInfo.workerId);
    const worker: WorkerThread = { sessionId, thread, name: `worker thread ${thread}${titled?.[2] ? ` (${titled[2]})` : ''}`, runtime: undefined };
    workerWatch.workers.set(sessionId, worker);
    for (const listener of workerWatch.listeners) listener(worker);
    return;
  }
  if (event.method !== 'NodeWorker.receivedMessageFromWorker') return;
  let answer: WorkerAnswer | null;
  try {
    answer = fromJson(String(event.params.message)) as WorkerAnswer | null;
  } catch {
    return;
  }
  if (answer === null || typeof answer !== 'object' || answer.id === undefined) return;
  const call = workerWatch.pending.get(answer.id);
  if (!call) return;
  const { result, error } = answer;
  const thrown = result?.exceptionDetails;
  if (error || thrown) call.settle(new Error(String(error?.message ?? thrown?.exception?.description ?? thrown?.text)));
  else call.settle(undefined, result?.result?.value);
}

/** Installs this runtime in a worker (once): undefined, or why it could not. */
function runtimeIn(worker: WorkerThread): Promise<string | undefined> {
  worker.runtime ??= inWorker(worker.sessionId, `(globalThis.__fay$?.version === ${RUNTIME_VERSION} ? ${RUNTIME_VERSION} : (${runtimeSource})(null))`).then(
    (installed) => (installed === RUNTIME_VERSION ? undefined : String(installed)),
    (error: Error) => `its runtime could not be installed: ${error.message}`,
  );
  return worker.runtime;
}

/** The sources the filters name in the workers' scripts that this thread does not have (see sources()). */
export async function workerSources<T>(filters: readonly (string | null)[], own: Record<string, T | string>): Promise<Record<string, T | string>> {
  await watchWorkers();
  try {
    const read = await NativePromise.all(
      [...workerWatch.workers.values()].map(async (worker) =>
        (await runtimeIn(worker)) === undefined ? inWorker<Record<string, string>>(worker.sessionId, `__fay$.sources(${toJson(filters)})`).catch(() => ({})) : {},
      ),
    );
    for (const sources of read) {
      for (const [url, source] of Object.entries(sources)) {
        if (url in own) continue;
        own[url] = source as string;
        workerOnly.add(url);
      }
    }
    return own;
  } finally {
    unwatchWorkers();
  }
}

/**
 * Opens a session in every worker, and in each worker that starts while it runs: `relayed` is
 * its config for them (before anything here changed it), `factory` its handler factory.
 * Resolves with the workers' reports once those there now have answered.
 */
export async function openInWorkers(session: RuntimeSession, relayed: string, factory: HandlerFactory): Promise<ProbeReport[]> {
  await watchWorkers();
  const channel = channelNamed(`fay:${session.id}`);
  const threads: SessionThreads = { channel, live: new Set(), waiting: undefined, late: [], closed: false, stop: noop };
  session.threads = threads;
  channel.onmessage = ({ data }: { data: unknown }) => fromThread(session, threads, data);
  const open = async (worker: WorkerThread) => {
    const refused = await runtimeIn(worker);
    if (refused !== undefined) throw new Error(refused);
    const reports = await inWorker<ProbeReport[]>(worker.sessionId, `__fay$.open(${relayed}, (${factory.toString()}))`);
    threads.live.add(worker);
    // A session that ended meanwhile: the worker's probes go off again.
    if (session.closed) relay(session, { type: 'detach' });
    return reports;
  };
  const later = (worker: WorkerThread) => {
    open(worker).then(
      () => {
        if (!session.closed) session.notice(`${worker.name} started after the attach: probed from now on`);
      },
      (error: Error) => {
        if (!session.closed) session.notice(`${worker.name} started after the attach and is not probed: ${error.message}`);
      },
    );
  };
  workerWatch.listeners.add(later);
  threads.stop = () => workerWatch.listeners.delete(later);
  const lists = await NativePromise.all(
    [...workerWatch.workers.values()].map((worker) =>
      open(worker).catch((error: Error) => {
        session.notice(`${worker.name} is not probed: ${error.message}`);
        return [] as ProbeReport[];
      }),
    ),
  );
  // Ended while the workers were being opened: what the detach could not reach yet goes now.
  if (session.closed) closeInWorkers(session);
  return lists.flat();
}

/** A channel between the threads of this process that keeps none of them alive. */
export function channelNamed(name: string): BroadcastChannel {
  const channel = new (mod<typeof import('node:worker_threads')>('worker_threads').BroadcastChannel)(name);
  channel.unref();
  return channel;
}

/** Posts to a session's workers (through a channel of its own once the session's is closed). */
export function relay(session: RuntimeSession, message: unknown): void {
  if (session.threads && !session.threads.closed) return session.threads.channel.postMessage(message);
  const channel = channelNamed(`fay:${session.id}`);
  channel.postMessage(message);
  channel.close();
}

/** What a session's worker sent: a partial (answering a flush, or its last, as it exits) or a notice. */
function fromThread(session: RuntimeSession, threads: SessionThreads, data: unknown): void {
  if (data === null || typeof data !== 'object') return;
  const message = data as { type?: unknown; thread?: number; message?: string; sources?: Record<string, string>; period?: number };
  if (message.type === 'notice') session.notice(`worker thread ${message.thread}: ${message.message}`);
  else if (message.type === 'scripts' && message.sources && typeof message.sources === 'object') session.askEdits(message.sources);
  else if (message.type === 'exiting') {
    for (const worker of threads.live) if (worker.thread === message.thread) threads.live.delete(worker);
    // Its last counts: in the flush under way, which no longer waits for it, or the next.
    if (threads.waiting) threads.waiting.arrived(message as PartialMessage);
    else threads.late.push(message as PartialMessage);
  } else if (message.type === 'partial') {
    if (threads.waiting && threads.waiting.period === message.period) threads.waiting.arrived(message as PartialMessage);
    else threads.late.push(message as PartialMessage);
  }
}

/**
 * A session's worker has ended: its last counts come (as it exits, see open()) unless it was
 * terminated, which stops a thread without running anything more. Whether they came is known
 * shortly after: if not, the query says that some calls may be missing, never a silent zero.
 */
function lastWordFrom(session: RuntimeSession, worker: WorkerThread): void {
  const timer = setTimeout(() => {
    const { threads } = session;
    if (!threads?.live.delete(worker)) return;
    if (!session.closed) {
      session.notice(
        `${worker.name} was terminated before it could send its last counts (worker.terminate() stops a thread at once): ` +
          'its calls since the last read, if any, are not counted',
      );
    }
    threads.waiting?.gaveUp(worker.thread);
  }, LAST_WORD_WAIT_MS);
  timer.unref();
}

/**
 * Asks a session's workers for their partials, and waits for them a little (a worker that keeps
 * its event loop busy answers into the next flush): those that came, and those that came late before.
 */
export function workerPartials(session: RuntimeSession, message: FlushMessage): Promise<PartialMessage[]> {
  const threads = session.threads!;
  // Each worker answers, or sends its last counts as it ends, or is found terminated (lastWordFrom()).
  const expected = new Set([...threads.live].map((worker) => worker.thread));
  relay(session, { type: 'flush', period: message.period, capPerSecond: message.capPerSecond, seconds: message.seconds, final: message.final });
  return new NativePromise<PartialMessage[]>((resolve) => {
    const got = threads.late.splice(0);
    const done = () => {
      clearTimeout(timer);
      threads.waiting = undefined;
      resolve(got);
    };
    const timer = setTimeout(done, message.final ? FINAL_WORKER_WAIT_MS : WORKER_WAIT_MS);
    threads.waiting = {
      period: message.period,
      arrived(partial) {
        got.push(partial);
        this.gaveUp(partial.thread ?? -1);
      },
      gaveUp(thread) {
        if (expected.delete(thread) && expected.size === 0) done();
      },
    };
    if (expected.size === 0) done();
  });
}

/** A partial with its workers' beside it (the agent merges groups by key). */
export function withThreads(own: PartialMessage, theirs: readonly PartialMessage[]): PartialMessage {
  if (theirs.length === 0) return own;
  const all = [own, ...theirs];
  const sum = (field: 'dropped' | 'folded') => all.reduce((n, p) => n + (p[field] || 0), 0);
  return {
    ...own,
    groups: all.flatMap((p) => p.groups ?? []),
    rows: all.flatMap((p) => p.rows ?? []),
    dropped: sum('dropped'),
    folded: sum('folded'),
    sampling: all.flatMap((p) => p.sampling ?? []),
    pending: all.flatMap((p) => p.pending ?? []),
    published: summed(all.map((p) => p.published)),
    inFlight: summed(all.map((p) => p.inFlight)),
  };
}

/** A session's workers take their probes out (or keep their edits, as the session does). */
export function closeInWorkers(session: RuntimeSession): void {
  const { threads } = session;
  if (!threads || threads.closed) return;
  threads.stop();
  relay(session, { type: 'detach' });
  threads.closed = true;
  threads.channel.close();
  unwatchWorkers();
}

/** One report per function: probed if any thread probed it. */
export function mergeReports(lists: readonly (readonly ProbeReport[])[]): ProbeReport[] {
  const byName = new Map<string, ProbeReport>();
  for (const r of lists.flat()) {
    const had = byName.get(r.name);
    if (!had || (!had.probed && r.probed)) byName.set(r.name, r);
  }
  return [...byName.values()];
}

/** Counts by name, summed over the threads that have them; undefined where none does. */
function summed(counts: readonly (Record<string, number> | undefined)[]): Record<string, number> | undefined {
  const present = counts.filter((c): c is Record<string, number> => c !== undefined);
  if (present.length === 0) return undefined;
  const sum: Record<string, number> = {};
  for (const c of present) for (const [name, n] of Object.entries(c)) sum[name] = (sum[name] ?? 0) + n;
  return sum;
}
