import { mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvironmentError } from '../../errors.js';
import { lazy } from '../../lazy.js';
import type { InspectorClient } from './inspector-client.js';
import type { ChannelEnd, NetnsBridge } from './netns-bridge.js';
import { networkNamespace, pidInItsNamespace, processAgeMs, processStart } from './processes.js';

/** Node's default inspector port, which SIGUSR1 opens. */
export const INSPECTOR_PORT = 9229;
/** How long a process gets to open its inspector after SIGUSR1. */
const OPEN_TIMEOUT_MS = 2000;
/** How long to wait for another attach (from this or another Fay) to free the port. */
const LOCK_TIMEOUT_MS = 15000;

/** A process Fay cannot attach to, and why. */
export class AttachError extends EnvironmentError {}

/** A process was reached, but none of its functions matches the query's patterns. */
export class NoMatchingFunctionError extends AttachError {}

// Loaded on first use, like everything an attach needs: a query without js: probes starts without them.
const net = lazy(() => import('node:net'));
const inspectorClient = lazy(() => import('./inspector-client.js'));
const netnsBridge = lazy(() => import('./netns-bridge.js'));

/** The lock directory of the inspector port of this network namespace, or of another one (by its /proc name). */
const lockPathOf = (namespace: string | undefined) =>
  join(tmpdir(), `fay-inspector-${INSPECTOR_PORT}${namespace === undefined ? '' : `-${namespace.replace(/\D/g, '')}`}.lock`);

/**
 * Holds the inspector port for one attach at a time, across every Fay process
 * on the machine: a lock directory holding its owner's pid (a dead owner's lock is taken over).
 */
async function lockPort(lockPath: string): Promise<() => void> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  while (true) {
    try {
      mkdirSync(lockPath);
      writeFileSync(join(lockPath, 'pid'), String(process.pid));
      // Once only: a second call could remove the lock of whoever took the port next.
      let held = true;
      return () => {
        if (held) rmSync(lockPath, { recursive: true, force: true });
        held = false;
      };
    } catch {
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lockPath, 'pid'), 'utf8'));
      } catch {
        // Being created or removed right now.
      }
      if (Date.now() > deadline) {
        throw new AttachError(`another attach has held the inspector port ${INSPECTOR_PORT} for ${LOCK_TIMEOUT_MS / 1000} s`, {
          hint: `only one process can be attached through port ${INSPECTOR_PORT} at a time; try again`,
        });
      }
      if (owner && !alive(owner)) {
        // Left by a process that died while attached: taken over at once.
        rmSync(lockPath, { recursive: true, force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This process's attaches, one at a time per port: each waits for the one before it to release the port. */
const portQueues = new Map<string, Promise<void>>();

/**
 * Holds the port for one attach: after this process's earlier attaches (handed over the moment
 * the port is released, without polling the lock), and against other Fays through the lock directory.
 * The release it returns takes effect once.
 */
async function holdPort(namespace: string | undefined): Promise<() => void> {
  const lockPath = lockPathOf(namespace);
  const before = portQueues.get(lockPath) ?? Promise.resolve();
  let handOver!: () => void;
  const mine = new Promise<void>((resolve) => (handOver = resolve));
  portQueues.set(lockPath, mine);
  const free = () => {
    if (portQueues.get(lockPath) === mine) portQueues.delete(lockPath);
    handOver();
  };
  await before;
  try {
    const unlock = await lockPort(lockPath);
    return () => {
      try {
        unlock();
      } finally {
        free();
      }
    };
  } catch (error) {
    free();
    throw error;
  }
}

/**
 * What is on the port: nothing, or something, which is a Node.js inspector if it listed its
 * WebSocket URL; then the connection it answered on is handed over, open, for the WebSocket.
 */
type OnPort = { readonly open: false } | { readonly open: true; readonly url: undefined } | { readonly open: true; readonly url: string; readonly socket: Socket };

/** A TCP connection to the inspector port of this network namespace, or undefined if nothing listens there. */
async function connectToPort(): Promise<Socket | undefined> {
  const { connect } = await net();
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: INSPECTOR_PORT });
    const failed = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    };
    const timer = setTimeout(failed, 500);
    socket.once('error', failed);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      resolve(socket);
    });
  });
}

/**
 * Asks the port with one connection (`connectToPort`: TCP here, or through a bridge into another
 * network namespace): none means nothing listens; otherwise the inspector's target list comes from
 * a bare HTTP GET, and the inspector keeps the connection open for the WebSocket upgrade. node:http
 * would take ~9 ms to load (~40 ms under tsx) and 0.2–1 ms a request; fetch ~50 ms to load.
 */
async function askPort(connectToPort: () => Promise<Socket | undefined>): Promise<OnPort> {
  const socket = await connectToPort();
  if (socket === undefined) return { open: false };
  return new Promise((resolve) => {
    let response = Buffer.alloc(0);
    const onTimeout = () => done(undefined);
    const onData = (chunk: Buffer) => {
      response = Buffer.concat([response, chunk]);
      const url = listedUrl(response);
      if (url !== undefined || response.length > 1 << 20) done(url);
    };
    const onEnd = () => done(listedUrl(response));
    const onError = () => done(undefined);
    const done = (url: string | null | undefined) => {
      // Only this function's listeners: net.Socket has its own.
      socket.setTimeout(0, onTimeout).off('data', onData).off('end', onEnd).off('error', onError);
      // Its errors end in 'close'; none may go unhandled between here and the WebSocket.
      socket.on('error', () => undefined);
      if (typeof url === 'string') {
        // Held until the WebSocket reads it: the inspector sends nothing before the upgrade, but nothing read may be lost.
        socket.pause();
        return resolve({ open: true, url, socket });
      }
      socket.destroy();
      resolve({ open: true, url: undefined });
    };
    socket.setTimeout(500, onTimeout);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    socket.write(`GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:${INSPECTOR_PORT}\r\n\r\n`);
  });
}

/**
 * The first WebSocket URL in an inspector's answer to GET /json/list (it always sends a
 * Content-Length): undefined while the answer is incomplete, null if it is not such an answer.
 */
function listedUrl(response: Buffer): string | null | undefined {
  const headEnd = response.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const head = response.subarray(0, headEnd).toString('latin1');
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (!/^HTTP\/1\.[01] 200 /.test(head) || !length) return null;
  const body = response.subarray(headEnd + 4);
  if (body.length < Number(length[1])) return undefined;
  try {
    const url = (JSON.parse(body.subarray(0, Number(length[1])).toString('utf8')) as { webSocketDebuggerUrl?: unknown }[])[0]?.webSocketDebuggerUrl;
    return typeof url === 'string' ? url : null;
  } catch {
    return null;
  }
}

/** SIGUSR1's bit in the signal masks of /proc/<pid>/status. */
const SIGUSR1_BIT = 1n << 9n;

/** A process younger than this that cannot take SIGUSR1 yet is waited for: it may be a Node.js still starting. */
const YOUNG_MS = 2000;

/**
 * Whether SIGUSR1 is safe to send: the process catches it (SigCgt), or blocks it until it does
 * (Node.js, from a few ms into its start until its handler is in, ~70 ms: the signal waits, then
 * opens the inspector). Sent to a process that does neither, it is ignored or, by default, ends the
 * process: a young one is given until it is YOUNG_MS old. A process that is gone passes: signalling
 * it says that it is gone.
 */
async function sigusr1Safe(pid: number): Promise<boolean> {
  while (true) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      return true;
    }
    const mask = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '0'}`);
    if (((mask('SigCgt') | mask('SigBlk')) & SIGUSR1_BIT) !== 0n) return true;
    if ((processAgeMs(pid) ?? Infinity) >= YOUNG_MS) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** After SIGUSR1 the port is asked every 0.2 ms for this long, then every millisecond, then every few. */
const NAP_POLL_MS = 3;
const EAGER_POLL_MS = 30;

const napCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits for the port to open after SIGUSR1 and says what opened it. Node.js starts a thread that
 * listens 0.3–0.8 ms after the signal here, when a CPU is free for it: asked back to back, the
 * agent kept a CPU busy and the scheduler queued that thread behind it for 1–5 ms (traced with
 * sched_switch on 2 CPUs). So the agent sleeps between asks: for the first 3 ms in naps of 0.2 ms
 * that block its thread (a timer sleeps at least 1.1 ms), then on timers. A process that never
 * opens it (its own SIGUSR1 handler) is asked only every few ms after 30.
 */
async function portOpened(deadline: number, ask: () => Promise<OnPort>): Promise<OnPort> {
  const signalled = performance.now();
  while (Date.now() < deadline) {
    const onPort = await ask();
    if (onPort.open) return onPort;
    const waited = performance.now() - signalled;
    if (waited < NAP_POLL_MS) Atomics.wait(napCell, 0, 0, 0.2);
    else await new Promise((r) => setTimeout(r, waited < EAGER_POLL_MS ? 1 : 3));
  }
  return { open: false };
}

/** An inspector session with one process, holding the port until released. */
export interface Attachment<T = undefined> {
  readonly client: InspectorClient;
  /** What the attach's first expression gave, once the pid was verified. */
  readonly first: T;
  /** Closes the target's inspector (its probes stay, talking to the agent on their own channel) and frees the port; once. */
  release(): Promise<void>;
}

/** How long a target keeps the inspector Fay opened without hearing from Fay (see WATCHDOG). */
const WATCH_MS = 15_000;
/** How often Fay tells the target it is still there while attached. */
const WATCH_RENEW_MS = 5_000;

/**
 * Evaluated in a target whose inspector Fay opened, with the pid check: the target closes that
 * inspector by itself when Fay stops renewing (it died or was killed between SIGUSR1 and the end
 * of its install), or at once when Fay's process is gone, where the target can see it (the same
 * pid namespace: OWNER is Fay's pid there, else 0). A tick that comes late (the program was busy,
 * or an edit stopped it) waits one more: Fay's renewals may be queued behind it. Marked on the
 * global, unenumerable, so that a later Fay knows this inspector is a Fay's and may close it.
 */
const WATCHDOG = `(() => {
  const arm = (w) => {
    try {
      w.timer = setInterval(() => {
        const now = Date.now();
        const late = now - w.tick > 3000;
        w.tick = now;
        if (late) return;
        let gone = now > w.until;
        if (!gone && w.owner) { try { process.kill(w.owner, 0); } catch (e) { gone = e.code === 'ESRCH'; } }
        if (!gone) return;
        clearInterval(w.timer);
        delete globalThis.__fay$opened;
        try { process.getBuiltinModule('inspector').close(); } catch {}
      }, 1000);
      w.timer.unref();
    } catch {
      // A process still starting has no timers yet: armed by a later renewal.
      w.timer = undefined;
    }
  };
  const old = globalThis.__fay$opened;
  if (old) { old.until = Date.now() + ${WATCH_MS}; old.tick = Date.now(); if (!old.timer) arm(old); return old; }
  const w = { until: Date.now() + ${WATCH_MS}, owner: OWNER, tick: Date.now(), timer: undefined };
  Object.defineProperty(globalThis, '__fay$opened', { value: w, configurable: true, writable: true });
  arm(w);
  return w;
})()`;

/**
 * Evaluated in the target before anything else Fay does there, where its heap is large (over 64 MB):
 * the program and small allocations run for 300 ms, in which the garbage collector finishes, step
 * by step, a marking it may have under way. Else the first allocation of code (compiling Fay's
 * runtime) finishes it in one stop: 217–382 ms in a heap of 390 MB, measured, against under 20 ms so.
 */
const SETTLE = `(async () => {
  if (process.getBuiltinModule('v8').getHeapStatistics().used_heap_size < 64 * 1048576) return;
  let sink;
  const until = Date.now() + 300;
  while (Date.now() < until) {
    for (let i = 0; i < 16; i++) sink = new Array(1024).fill(i);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return sink === undefined;
})()`;

/**
 * Starts watching what stops the target's JavaScript while Fay attaches (evaluated in the target,
 * first thing after the pid check; the runtime's attachStalls() reads and ends it): the event loop's
 * delays, by a native timer every 5 ms (a stop of any cause shows as its lateness), and the garbage
 * collections. Native both: they allocate nothing in the program's heap. A watch no runtime takes
 * (Fay gone mid-attach) ends by itself after a minute.
 */
const WATCH_STOPS = `(() => {
  try {
    const perf = process.getBuiltinModule('perf_hooks');
    const end = (w) => { clearTimeout(w.timer); w.observer.disconnect(); w.delay.disable(); };
    if (globalThis.__fay$stops) end(globalThis.__fay$stops);
    const delay = perf.monitorEventLoopDelay({ resolution: 5 });
    const gcs = [];
    const observer = new perf.PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e.duration); });
    observer.observe({ entryTypes: ['gc'] });
    delay.enable();
    const watch = { delay, observer, gcs, end };
    watch.timer = setTimeout(() => { end(watch); if (globalThis.__fay$stops === watch) delete globalThis.__fay$stops; }, 60000);
    watch.timer.unref();
    globalThis.__fay$stops = watch;
    return true;
  } catch {
    return false;
  }
})()`;

/** Closes a target's inspector that a Fay opened, and its watchdog with it (evaluated in the target). */
const CLOSE_FAYS_INSPECTOR =
  "(() => { const w = globalThis.__fay$opened; if (w) { clearInterval(w.timer); delete globalThis.__fay$opened; } process.getBuiltinModule('inspector').close(); })()";

/** Where a Fay notes the inspector it opened, until it has closed it again: a later Fay knows a leftover of a killed one by it. */
const openedRecordOf = (lockPath: string) => `${lockPath}.opened`;

interface OpenedRecord {
  /** The process whose inspector it opened, and when that process started (a reused pid is another process). */
  readonly pid: number;
  readonly start: number | undefined;
  /** The Fay that opened it. */
  readonly by: number;
}

function readOpenedRecord(path: string): OpenedRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as Partial<OpenedRecord>;
    return typeof record.pid === 'number' && typeof record.by === 'number' ? { pid: record.pid, start: record.start, by: record.by } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether two processes share a pid namespace, in which one can see the other's pid. */
function samePidNamespace(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`) === readlinkSync('/proc/self/ns/pid');
  } catch {
    return false;
  }
}

/** How to attach: the agent's channel (a bridge into another network namespace hands connections over it), and whether to watch what stops the target meanwhile (WATCH_STOPS). */
export interface AttachOptions {
  readonly channel?: ChannelEnd;
  readonly watchStops?: boolean;
}

/**
 * Attaches to a running Node.js process: SIGUSR1 opens its inspector on
 * 127.0.0.1:9229 (its own network namespace's: in a container, reached through a
 * bridge there, which also hands the runtime's connection to `options.channel`,
 * the agent's), and the pid behind the port is checked before anything is
 * installed. A process that handles SIGUSR1 itself never opens it, and is
 * refused with that reason. `first`, an expression, is evaluated (and awaited)
 * in the target in the same round trip as the pid check, and only if the pid is
 * the one asked for. An inspector that a Fay opened and left behind (it was
 * killed mid-attach) is closed first, and the attach tried again.
 */
export async function attach<T = undefined>(pid: number, first = 'undefined', options: AttachOptions = {}): Promise<Attachment<T>> {
  // A process in another network namespace (a container) opens its inspector on that namespace's
  // 127.0.0.1: reached through a bridge there, which also hands its runtime's connection back over.
  const theirs = networkNamespace(pid);
  const elsewhere = theirs !== undefined && theirs !== networkNamespace(process.pid) ? theirs : undefined;
  const unlock = await holdPort(elsewhere);
  try {
    return await attachHolding<T>(pid, first, options, elsewhere, unlock, true);
  } catch (error) {
    unlock();
    throw error;
  }
}

/** The attach, with the port held (see attach): `retry` once, after a Fay's leftover inspector is closed. */
async function attachHolding<T>(pid: number, first: string, options: AttachOptions, elsewhere: string | undefined, unlock: () => void, retry: boolean): Promise<Attachment<T>> {
  const record = openedRecordOf(lockPathOf(elsewhere));
  const bridge = elsewhere === undefined ? undefined : await bridgeInto(pid, elsewhere, options.channel);
  const ask = bridge ? () => askPort(() => bridge.connectToPort()) : () => askPort(connectToPort);
  const where = bridge ? ` in the network namespace of process ${pid}` : '';
  // An inspector already listening (another debugger, or a process started with --inspect) is used as it is.
  const onPort = await ask();
  if (onPort.open && onPort.url === undefined) {
    throw new AttachError(`port ${INSPECTOR_PORT} on 127.0.0.1${where} is taken by something that is not a Node.js inspector`, {
      hint: `SIGUSR1 makes Node.js open its inspector on that port; free it, then try again`,
    });
  }
  if (!onPort.open) {
    // SIGUSR1 ends a process that does not catch it (a node built without the inspector).
    if (!(await sigusr1Safe(pid))) {
      throw new AttachError(`process ${pid} does not catch SIGUSR1, which opens a Node.js inspector (a node built without one, or a process that ignores the signal)`, {
        hint: 'Fay attaches only through that inspector, and does not send the signal where it could end the process',
      });
    }
    // Noted first: if this Fay dies before it closes the inspector again, the next one knows whose it is.
    writeFileSync(record, JSON.stringify({ pid, start: processStart(pid), by: process.pid } satisfies OpenedRecord));
    try {
      process.kill(pid, 'SIGUSR1');
    } catch (error) {
      rmSync(record, { force: true });
      const code = (error as NodeJS.ErrnoException).code;
      throw new AttachError(
        code === 'ESRCH' ? `process ${pid} is gone` : `cannot signal process ${pid} (${code ?? 'error'})`,
        code === 'EPERM' ? { hint: 'attach as root or as the user the process runs as' } : {},
      );
    }
  }
  const signalled = !onPort.open;
  const listed = onPort.open ? onPort : await portOpened(Date.now() + OPEN_TIMEOUT_MS, ask);
  if (!listed.open || listed.url === undefined) {
    if (signalled) rmSync(record, { force: true });
    throw new AttachError(`process ${pid} did not open its inspector after SIGUSR1`, {
      hint: 'it handles SIGUSR1 itself (process.on("SIGUSR1")) or runs with --disable-sigusr1; Fay cannot attach to it',
    });
  }
  const { InspectorClient } = await inspectorClient();
  // Through a bridge, the connection it answered on is the only way there.
  const client = await InspectorClient.connect(listed.url, listed.socket, { reconnect: bridge === undefined }).catch((error: Error) => {
    throw new AttachError(`process ${pid} opened its inspector, but its WebSocket failed: ${error.message}`, {
      hint: 'try again: the next attach uses the inspector that is now open',
    });
  });
  // A call that gets no answer: the process's JavaScript is stopped or busy. Its own runtime undoes
  // whatever it installs for an agent that went away, and its inspector closes by itself (WATCHDOG).
  client.onTimeout = (method, ms) =>
    new AttachError(`process ${pid} did not answer the inspector (${method}) within ${ms / 1000} s: its JavaScript is busy or stopped`, {
      hint: 'whatever Fay installed there comes out by itself, and its inspector closes; try again when it is less busy, or with a lower --max-pause',
    });
  // In its own pid namespace (a container) the process knows itself by another pid.
  const itsPid = pidInItsNamespace(pid);
  const watch = WATCHDOG.replace('OWNER', String(samePidNamespace(pid) ? process.pid : 0));
  let checked: { pid: number; value?: T; fays?: boolean };
  let fays = signalled;
  let renewal: NodeJS.Timeout | undefined;
  let releasing: Promise<void> | undefined;
  const release = () =>
    // Never rejects: it often runs with nobody waiting for it, behind the probes.
    (releasing ??= (async () => {
      clearInterval(renewal);
      try {
        // Only an inspector a Fay opened is closed: one that was open before (a debugger, --inspect) stays.
        if (fays) {
          // inspector.close() ends this very connection, so its reply may never come: wait for the close instead.
          client.evaluate(CLOSE_FAYS_INSPECTOR).catch(() => undefined);
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([client.closed, new Promise((r) => (timer = setTimeout(r, 2000)))]);
          clearTimeout(timer);
        }
        client.close();
        if (fays) rmSync(record, { force: true });
      } finally {
        unlock();
      }
    })().catch(() => undefined));
  try {
    checked = await client.evaluate(
      `(async () => process.pid === ${itsPid} ? { pid: ${itsPid}, fays: ${signalled ? `(${watch}, true)` : 'globalThis.__fay$opened !== undefined'}, watching: ${options.watchStops ? WATCH_STOPS : 'false'}, settled: await ${SETTLE}, value: await (${first}) } : { pid: process.pid, fays: globalThis.__fay$opened !== undefined })()`,
      { awaitPromise: true },
    );
  } catch (error) {
    // The pid was right (nothing else runs there) but the first expression failed: close what was opened.
    await release();
    throw error;
  }
  if (checked.pid !== itsPid) {
    const leftover = readOpenedRecord(record);
    const ours = checked.fays === true || (leftover !== undefined && leftover.pid === checked.pid && !alive(leftover.by));
    if (ours && retry) {
      // A Fay opened it and is gone (with this port's lock held, no Fay is attaching through it now): closed, then again.
      client.evaluate(CLOSE_FAYS_INSPECTOR).catch(() => undefined);
      await Promise.race([client.closed, new Promise((r) => setTimeout(r, 2000))]);
      client.close();
      rmSync(record, { force: true });
      await portClosed(ask);
      return attachHolding<T>(pid, first, options, elsewhere, unlock, false);
    }
    client.close();
    throw new AttachError(`port ${INSPECTOR_PORT}${where} is held by the inspector of process ${checked.pid}, not ${pid}`, {
      hint: ours
        ? `it was left open by a Fay that is gone, and would not close; fay release "js:pid=${checked.pid}" closes it`
        : `a debugger (or a process started with --inspect) holds it: stop that first; Fay attaches through port ${INSPECTOR_PORT} one process at a time. If a Fay opened it, fay release "js:pid=${checked.pid}" closes it`,
    });
  }
  // A leftover of a killed Fay on this very process (it died before the pid check could mark it) is Fay's too.
  const leftover = signalled ? undefined : readOpenedRecord(record);
  fays ||= checked.fays === true || (leftover !== undefined && leftover.pid === pid && leftover.start === processStart(pid) && !alive(leftover.by));
  if (process.env.FAY_DEBUG_ATTACH === '1') process.stderr.write(`fay: attach: process ${pid} checked\n`);
  // While attached, the target hears that Fay is there: its inspector stays open.
  if (fays) {
    renewal = setInterval(() => void client.evaluate(WATCHDOG.replace('OWNER', '0')).catch(() => undefined), WATCH_RENEW_MS);
    renewal.unref();
  }
  return { client, first: checked.value as T, release };
}

/** Waits (at most 2 s) until nothing listens on the port any more. */
async function portClosed(ask: () => Promise<OnPort>): Promise<void> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    const onPort = await ask();
    if (!onPort.open) return;
    if (onPort.url !== undefined) onPort.socket.destroy();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A bridge into the network namespace of process `pid` (see NetnsBridge), or an AttachError saying why not. */
async function bridgeInto(pid: number, namespace: string, channel: ChannelEnd | undefined): Promise<NetnsBridge> {
  const { NetnsBridge } = await netnsBridge();
  return NetnsBridge.into(pid, namespace, INSPECTOR_PORT, channel).catch((error: Error) => {
    throw new AttachError(`process ${pid} runs in another network namespace (a container, or ip netns exec), which Fay could not enter to reach its inspector: ${error.message}`, {
      hint: 'Fay enters it with nsenter, as root; or run a Fay agent in that namespace',
    });
  });
}
