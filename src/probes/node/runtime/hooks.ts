import type { KeptAggregate } from '../codegen.js';
import { OWN_URL, type ProbeHooks } from './contract.js';
import { clock, log2, NativePromise, noop, promiseResolve, promiseThen, resolved, utilTypes, type Probe } from './state.js';

/** An async call's check: (frame, step, error), run once its synchronous part or an await is over. */
type Check = (frame: unknown, step: number, error: unknown) => void;

/** check(frame, step, error), where nothing it throws reaches the program. */
const checked = (check: Check, frame: unknown, step: number, error: unknown): void => {
  try {
    check(frame, step, error);
  } catch {
    // A probe's failure is reported where it runs its handler.
  }
};
/** Runs the check in a microtask of its own. */
const later = (check: Check, frame: unknown, step: number, error: unknown): void => {
  void promiseThen.call(resolved, () => checked(check, frame, step, error));
};
/** Async calls begun since the last check (step 0), checked once their synchronous parts have run: one microtask for all. */
const begun: unknown[] = [];
const checkBegun = (): void => {
  const list = begun.splice(0);
  for (let i = 0; i < list.length; i += 2) checked(list[i] as Check, list[i + 1], 0, undefined);
};

/** What compiled hooks share (R in their text). busy: set while a handler runs, so that calls it makes to probed functions are not probed again. */
export const R = {
  busy: false,
  fail,
  log2,
  isPromise: (v: unknown): v is Promise<unknown> => v !== null && typeof v === 'object' && utilTypes.isPromise(v),
  then: promiseThen,
  resolve: (v: unknown): Promise<unknown> => promiseResolve.call<PromiseConstructor, [unknown], Promise<unknown>>(NativePromise, v),
  later,
  afterSync(check: Check, frame: unknown): void {
    if (begun.push(check, frame) === 2) void promiseThen.call(resolved, checkBegun);
  },
};

/**
 * The hooks of one probe, which instrumented code calls as __fay$.h[fid].e/b/r/t/a. Compiled
 * afresh for every probe from constant text (no text from outside the runtime): V8 keeps
 * type feedback per function literal, so each probe's calls stay monomorphic and inline,
 * however many probes and sessions came before. A probe's hooks are its frames (FRAMES) and
 * what a finished call does (a RUN): run the probe's handler, or keep its aggregates.
 */
const FRAMES = `
  // An async call's frame: an object, as it outlives its caller's. step counts its awaits.
  function beginAsync(args, self) {
    P.pending++;
    const frame = { args, self, start: clock.now(), done: false, step: 0 };
    if (P.awaits) R.afterSync(unseen, frame);
    return frame;
  }
  // A call of an async function whose awaits hand their operands to a() (P.awaits) that, once its
  // synchronous part ran or once it resumed from an await, reached neither a return, a throw
  // statement nor another await, ended by an exception: a callee's, or the awaited promise's
  // rejection (then its reason is the error). Its own promise rejected with it.
  function unseen(frame, step, error) {
    if (!frame.done && frame.step === step) finish(frame, undefined, true, error);
  }
  function finish(frame, value, threw, error) {
    frame.done = true;
    P.pending--;
    run(frame.args, value, threw, error, Math.round((clock.now() - frame.start) * 1e6), frame.self);
  }
  // A returned native promise ends its call when it settles (the function's own promise adopts it,
  // so it is handled already: a second reaction that swallows changes nothing the program can see).
  function returnAsync(frame, value) {
    if (!R.isPromise(value)) return finish(frame, value, false, undefined);
    frame.done = true;
    R.then.call(value, (v) => { frame.done = false; finish(frame, v, false, undefined); }, (e) => { frame.done = false; finish(frame, undefined, true, e); });
  }
  // Synchronous calls nest strictly: a frame is its depth, its start and arguments kept in arrays
  // (nothing allocated per call). Ending frame d ends the ones above it first: calls that a
  // callee's exception ended. A frame already ended (d >= P.depth) is not ended again.
  // Durations are whole nanoseconds: small integers, which V8 passes on without boxing.
  function end(d, value, threw, error) {
    const now = clock.now();
    for (let above = P.depth - 1; above > d; above--) {
      run(keepsArgs ? takeArgs(above) : undefined, undefined, true, undefined, Math.round((now - P.starts[above]) * 1e6), keepsSelf ? takeSelf(above) : undefined);
    }
    P.depth = d;
    run(keepsArgs ? takeArgs(d) : undefined, value, threw, error, Math.round((now - P.starts[d]) * 1e6), keepsSelf ? takeSelf(d) : undefined);
  }
  function takeArgs(d) {
    const args = P.args[d];
    P.args[d] = undefined;
    return args;
  }
  function takeSelf(d) {
    const self = P.selves[d];
    P.selves[d] = undefined;
    return self;
  }
  // The hot path (b, then r of the innermost frame) is kept short, so that V8 inlines all of it
  // into the instrumented function; everything else is a call away.
  return {
    run,
    // Ends every synchronous frame still open: between turns of the event loop, they were ended by an exception.
    endAll() {
      if (P.depth > 0) end(0, undefined, true, undefined);
    },
    // Entry-only probes: called first thing in an instrumented function.
    e(args, self) { run(args, undefined, false, undefined, 0, self); },
    // Begins a frame.
    b(args, self) {
      if (P.disabled || R.busy) return undefined;
      if (P.async) return beginAsync(args, self);
      const d = P.depth++;
      if (keepsArgs) P.args[d] = args;
      if (keepsSelf) P.selves[d] = self;
      P.starts[d] = clock.now();
      return d;
    },
    // A return hands the value through and ends the frame.
    r(frame, value) {
      if (typeof frame === 'number') {
        if (frame === P.depth - 1) {
          const ns = Math.round((clock.now() - P.starts[frame]) * 1e6);
          P.depth = frame;
          run(keepsArgs ? takeArgs(frame) : undefined, value, false, undefined, ns, keepsSelf ? takeSelf(frame) : undefined);
        } else if (frame < P.depth) end(frame, value, false, undefined);
      } else if (frame !== undefined && !frame.done) returnAsync(frame, value);
      return value;
    },
    // An await hands its operand through: resolved the way await resolves it (the same promise when
    // it is a native one), so the await takes as many turns as before, and watched from just
    // before the await's own reaction, so that the check runs right after the call resumes.
    a(frame, value) {
      if (frame === undefined || typeof frame === 'number' || frame.done) return value;
      const step = ++frame.step;
      const settled = R.resolve(value);
      try {
        R.then.call(settled, () => R.later(unseen, frame, step, undefined), (e) => R.later(unseen, frame, step, e));
      } catch {
        // A then() the program replaced before the runtime came, which throws: this await goes unwatched.
      }
      return settled;
    },
    // A throw statement hands the exception through and ends the frame.
    t(frame, error) {
      if (typeof frame === 'number') {
        if (frame < P.depth) end(frame, undefined, true, error);
      } else if (frame !== undefined && !frame.done) {
        finish(frame, undefined, true, error);
      }
      return error;
    },
  };`;
/** Runs the probe's handler, sampled 1 in P.every; a handler that throws disables its probe. */
const HANDLER_RUN = `'use strict';
  const handler = P.handler;
  function run(args, ret, threw, error, ns, self) {
    if (P.disabled || R.busy) return;
    P.calls++;
    if (P.every > 1 && P.calls % P.every !== 0) return;
    R.busy = true;
    try { handler(args, ret, threw, error, ns, self); } catch (e) { R.fail(P, e); } finally { R.busy = false; }
  }`;
/**
 * Keeps the probe's own aggregates of its calls' durations (see NodeProgram.kept): no handler, so nothing
 * can throw, and nothing is sampled (keeping costs less than deciding to skip). A call made by
 * another probe's handler is not counted.
 */
const KEEPING_RUN = `'use strict';
  const K = P.kept;
  const [sum, min, max, hist] = ['sum', 'min', 'max', 'hist'].map((k) => kept.includes(k) || (k === 'sum' && kept.includes('avg')));
  // Calls reach run() only through frames begun when the probe was on and not busy.
  function run(args, ret, threw, error, ns) {
    P.calls++;
    if (sum) K.sum += ns;
    if (min && ns < K.min) K.min = ns;
    if (max && ns > K.max) K.max = ns;
    // The bucket index, log2(ns) + 1, inline below 2^32 ns.
    if (hist) K.hist[ns < 4294967296 ? 33 - Math.clz32(ns) : R.log2(ns) + 1]++;
  }`;
/**
 * Hooks of a probe that only counts calls (kept count() without the return side): a call adds
 * one to P.calls, and each flush turns the calls since the last into its count() values.
 * Entry-only: no frames. Nothing disables such a probe (it runs no handler). A wrapped built-in
 * may be called by another probe's handler (JSON.stringify, Map.prototype.get): run() leaves
 * those calls out. Handlers never call the application's functions, so their entry hook, e(),
 * just counts.
 */
const COUNTING_HOOKS = `'use strict';
  function run() {
    if (!R.busy) P.calls++;
  }
  function e() {
    P.calls++;
  }
  return { run, e, endAll() {} };`;
const OWN = `\n//# sourceURL=${OWN_URL}`;
/** A probe's hooks, compiled for it (see FRAMES): a handler's run, kept aggregates, or counting alone. */
export function makeHooks(probe: Probe, kept: readonly KeptAggregate[], keepsArgs: boolean, keepsSelf: boolean): ProbeHooks {
  type Compiled = (...values: unknown[]) => ProbeHooks;
  /* eslint-disable @typescript-eslint/no-implied-eval -- constant text of this module, never a user's: compiled per probe so that V8 keeps each probe's type feedback apart */
  if (kept.length === 0) return (new Function('P', 'R', 'clock', 'keepsArgs', 'keepsSelf', HANDLER_RUN + FRAMES + OWN) as Compiled)(probe, R, clock, keepsArgs, keepsSelf);
  // Counts alone need no return side (the query reads no duration): no frames.
  if (kept.every((k) => k === 'count')) return (new Function('P', 'R', COUNTING_HOOKS + OWN) as Compiled)(probe, R);
  return (new Function('P', 'R', 'clock', 'keepsArgs', 'keepsSelf', 'kept', KEEPING_RUN + FRAMES + OWN) as Compiled)(probe, R, clock, false, false, kept);
  /* eslint-enable @typescript-eslint/no-implied-eval */
}

/** The hooks of a slot with no live probe: everything passes straight through. */
export const DETACHED: ProbeHooks = Object.freeze({
  run: noop,
  endAll: noop,
  e: noop,
  b: noop,
  r: <T>(_frame: unknown, value: T): T => value,
  t: <T>(_frame: unknown, error: T): T => error,
  a: (_frame: unknown, value: unknown): unknown => value,
});
/** fid → hooks, parallel to probes. */
export const hooks: ProbeHooks[] = [DETACHED];

/** A probe that throws is switched off and reported; the traced call goes on unchanged. */
export function fail(probe: Probe, e: unknown): void {
  probe.disabled = true;
  probe.session.notice(`probe ${probe.name} threw and was disabled: ${e instanceof Error && e.message ? e.message : String(e)}`);
}
