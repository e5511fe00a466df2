// Fay's runtime inside a traced Node.js process. The agent evaluates this function
// expression through the inspector with a JSON config and a handler factory that its
// code generator produced from the checked plan; no text a user wrote is evaluated.
// It must stand alone: no imports, only globals and process.getBuiltinModule.
(function faySetup(config, makeHandlers) {
  'use strict';
  const VERSION = 14;
  /**
   * The URL of Fay's own code in this process (what the agent evaluates, the hooks it compiles): its
   * frames in a CPU profile, and in errors' stacks, say it. The agent's inspector client gives the same.
   */
  const OWN_URL = 'fay:runtime';
  const G = globalThis;
  const held = G.__fay$;
  // Another version's kept edits (inert) come out first: they call its hooks.
  if (held && held.version !== VERSION && typeof held.dropKeptEdits === 'function') return held.dropKeptEdits().then(setUp);
  return setUp();

  function setUp() {
    let runtime = G.__fay$;
    if (!runtime || runtime.version !== VERSION) {
      // Code that another runtime's sessions instrumented calls __fay$.h until their edits are out again
      // (a session leaves the map only then): it must keep finding that runtime.
      if (runtime && runtime.sessions instanceof Map && runtime.sessions.size > 0) {
        // Said, not thrown: the agent reports it as a reason, not as a failure of its own.
        const refused = `this process holds live probes of another Fay version (runtime ${runtime.version})`;
        if (config === null) return refused;
        throw new Error(refused);
      }
      runtime = createRuntime();
      Object.defineProperty(G, '__fay$', { value: runtime, configurable: true, enumerable: false, writable: false });
    }
    // With a null config, installing is all: the version, or (above) why not.
    return config === null ? runtime.version : runtime.open(config, makeHandlers);
  }

  function createRuntime() {
    const mod = (name) => process.getBuiltinModule(name);
    const utilTypes = mod('util').types;
    const clock = G.performance;
    // Captured before any probe can wrap them, so that the runtime's own use is never counted.
    const toJson = JSON.stringify;
    const fromJson = JSON.parse;
    /**
     * fid → live probe, or null once detached (instrumented code then passes straight through).
     * Kept dense (every slot filled, ids handed out in order): a sparse array would make V8 look
     * each id up in a dictionary, on every call of every probed function.
     */
    const probes = [null];
    const sessions = new Map();
    /** token → a connection to the agent opened for an attach whose session has not opened yet. */
    const links = new Map();
    /**
     * One in-process inspector session for the runtime's whole life: within a session a script keeps
     * its id across live edits, whereas a new session also lists the stale versions each edit leaves.
     */
    let debug;
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
    let debuggerOff;
    /** url → script id, as this session first saw it. */
    const scriptIds = new Map();
    /** url → { length, hash } of its source as V8 reported it (hash: SHA-256 of its UTF-8), without reading it. */
    const scriptInfo = new Map();
    /**
     * script id → { pristine source, session id → its entries ({ fid, key, insertions }, one per
     * function), applied: the insertion lists in the source now } while any session's edits are in it.
     * An ended session's entries stay while its edits are kept (see keepEditsMs), its probes off.
     */
    const editedScripts = new Map();
    /** Debugger work (reading sources, editing, undoing) runs one piece at a time, in order. */
    let debuggerQueue = Promise.resolve();
    /** Fires when the first kept edit's time is up. */
    let sweepTimer;
    /**
     * What stopping this process costs: `edits` and `walks`, what its edits and other walks of the
     * heap took against the model (see editCost, enableCost; 1.25 at first: the model's margin);
     * `stalls`, the stops of the program by the attach under way, for its report; `watch`, what the
     * event loop and the garbage collector showed meanwhile (see watchAttach()); `coverage`, the last
     * count of compiled functions (see editCost).
     */
    const pauses = { edits: 1.25, walks: 1.25, stalls: [], watch: undefined, coverage: undefined };
    /** Above this heap, a marking under way is settled before each stop (see breathe()), for this long. */
    const SETTLE_ABOVE_BYTES = 64 * 1048576;
    const SETTLE_MS = 300;
    /** Work that would stop the process longer than its limit allows, and was therefore not done (its message says why). */
    class TooCostly extends Error {}
    /** The worker threads, as NodeWorker shows them while anything here watches (see watchWorkers()). */
    const workerWatch = { users: 0, ready: undefined, calls: 0, pending: new Map(), workers: new Map(), listeners: new Set() };
    /** Scripts that only workers have: the agent read them there, and this thread leaves them out without a word. */
    const workerOnly = new Set();
    const WORKER_TIMEOUT_MS = 5000;
    /** How long a flush waits for the workers' partials; a query's last one, longer. */
    const WORKER_WAIT_MS = 20;
    const FINAL_WORKER_WAIT_MS = 1000;
    /** How long after a worker's end its last counts may still come (they were sent before it ended). */
    const LAST_WORD_WAIT_MS = 100;
    const exclusive = (work) => {
      const result = debuggerQueue.then(work);
      debuggerQueue = result.catch(() => undefined);
      return result;
    };
    // The intrinsic Promise, which await uses, even where the program replaced the global one.
    const NativePromise = Object.getPrototypeOf((async () => {})()).constructor;
    const promiseResolve = NativePromise.resolve;
    const promiseThen = NativePromise.prototype.then;
    const resolved = promiseResolve.call(NativePromise);
    /** check(frame, step, error), where nothing it throws reaches the program. */
    const checked = (check, frame, step, error) => {
      try {
        check(frame, step, error);
      } catch {
        // A probe's failure is reported where it runs its handler.
      }
    };
    /** Runs the check in a microtask of its own. */
    const later = (check, frame, step, error) => {
      promiseThen.call(resolved, () => checked(check, frame, step, error));
    };
    /** Async calls begun since the last check (step 0), checked once their synchronous parts have run: one microtask for all. */
    const begun = [];
    const checkBegun = () => {
      const list = begun.splice(0);
      for (let i = 0; i < list.length; i += 2) checked(list[i], list[i + 1], 0, undefined);
    };
    /** busy: set while a handler runs, so that calls it makes to probed functions are not probed again. */
    const R = {
      busy: false,
      fail,
      log2,
      isPromise: (v) => v !== null && typeof v === 'object' && utilTypes.isPromise(v),
      then: promiseThen,
      resolve: (v) => promiseResolve.call(NativePromise, v),
      later,
      afterSync(check, frame) {
        if (begun.push(check, frame) === 2) promiseThen.call(resolved, checkBegun);
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
      function beginAsync(args) {
        P.pending++;
        const frame = { args, start: clock.now(), done: false, step: 0 };
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
        run(frame.args, value, threw, error, Math.round((clock.now() - frame.start) * 1e6));
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
          run(keepsArgs ? takeArgs(above) : undefined, undefined, true, undefined, Math.round((now - P.starts[above]) * 1e6));
        }
        P.depth = d;
        run(keepsArgs ? takeArgs(d) : undefined, value, threw, error, Math.round((now - P.starts[d]) * 1e6));
      }
      function takeArgs(d) {
        const args = P.args[d];
        P.args[d] = undefined;
        return args;
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
        e(args) { run(args, undefined, false, undefined, 0); },
        // Begins a frame.
        b(args) {
          if (P.disabled || R.busy) return undefined;
          if (P.async) return beginAsync(args);
          const d = P.depth++;
          if (keepsArgs) P.args[d] = args;
          P.starts[d] = clock.now();
          return d;
        },
        // A return hands the value through and ends the frame.
        r(frame, value) {
          if (typeof frame === 'number') {
            if (frame === P.depth - 1) {
              const ns = Math.round((clock.now() - P.starts[frame]) * 1e6);
              P.depth = frame;
              run(keepsArgs ? takeArgs(frame) : undefined, value, false, undefined, ns);
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
      function run(args, ret, threw, error, ns) {
        if (P.disabled || R.busy) return;
        P.calls++;
        if (P.every > 1 && P.calls % P.every !== 0) return;
        R.busy = true;
        try { handler(args, ret, threw, error, ns); } catch (e) { R.fail(P, e); } finally { R.busy = false; }
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
    const makeHooks = (probe, kept, keepsArgs) => {
      if (kept.length === 0) return new Function('P', 'R', 'clock', 'keepsArgs', HANDLER_RUN + FRAMES + OWN)(probe, R, clock, keepsArgs);
      // Counts alone need no return side (the query reads no duration): no frames.
      if (kept.every((k) => k === 'count')) return new Function('P', 'R', COUNTING_HOOKS + OWN)(probe, R);
      return new Function('P', 'R', 'clock', 'keepsArgs', 'kept', KEEPING_RUN + FRAMES + OWN)(probe, R, clock, false, kept);
    };
    const noop = () => undefined;
    /** Fay's own work in a CPU profile's stack (see ownWork). */
    const OWN_WORK = '(fay)';
    /** V8's live edit diffs a run of changed lines token by token only below this many characters. */
    const LONG_LINE = 800;
    /**
     * A getter that only reads a name, as bundlers write exports (esbuild: `get: () => transpileModule`;
     * tsc and babel: `get: function () { return m.foo; }` reads a property, which may run code: not those).
     * Calling it runs nothing but that read.
     */
    const READS_A_NAME = /^(?:\(\)\s*=>\s*[A-Za-z_$][\w$]*|function\s*[\w$]*\s*\(\)\s*\{\s*return\s+[A-Za-z_$][\w$]*;?\s*\})$/;

    const ON_A_LONG_LINE = `it starts or ends on a line of ${LONG_LINE} characters or more (minified code?), whose functions V8's live edit leaves as they were`;
    /** The hooks of a slot with no live probe: everything passes straight through. */
    const DETACHED = Object.freeze({ run: noop, endAll: noop, e: noop, b: noop, r: (frame, value) => value, t: (frame, error) => error, a: (frame, value) => value });
    /** fid → hooks, parallel to probes. */
    const hooks = [DETACHED];

    /**
     * The power-of-two bucket of a value, as the query's hist() has it (as bpftrace's): -1 for
     * negatives, 0 for 0, k for 2^(k-1) ≤ v < 2^k. The one definition for hooks (R) and handlers (H).
     */
    function log2(v) {
      if (v < 0) return -1;
      if (v < 1) return 0;
      if (v < 4294967296) return 32 - Math.clz32(v);
      let k = 33;
      for (let bound = 8589934592; v >= bound; bound *= 2) k++;
      return k;
    }

    /** A probe's own aggregates of its calls' durations since the last flush (see NodeProgram.kept). */
    function emptyKept() {
      return { sum: 0, min: Infinity, max: -Infinity, hist: Array.from({ length: 66 }, () => 0) };
    }

    /** A probe that throws is switched off and reported; the traced call goes on unchanged. */
    function fail(probe, e) {
      probe.disabled = true;
      probe.session.notice(`probe ${probe.name} threw and was disabled: ${e && e.message ? e.message : String(e)}`);
    }

    const rt = {
      version: VERSION,
      h: hooks,
      /** Entry and return around a call (wrappers of built-ins, which are not live-edited). */
      x(fid, args, body) {
        const probe = probes[fid];
        if (!probe || probe.disabled || R.busy) return body();
        const { run } = hooks[fid];
        const start = clock.now();
        let result;
        try {
          result = body();
        } catch (error) {
          run(args, undefined, true, error, Math.round((clock.now() - start) * 1e6));
          throw error;
        }
        if (probe.async && result !== null && typeof result === 'object' && typeof result.then === 'function') {
          // An async function's own promise is never seen by its caller, so a mirror changes nothing;
          // it settles with the same value or reason, once the settle time is taken.
          return result.then(
            (value) => {
              run(args, value, false, undefined, Math.round((clock.now() - start) * 1e6));
              return value;
            },
            (error) => {
              run(args, undefined, true, error, Math.round((clock.now() - start) * 1e6));
              throw error;
            },
          );
        }
        run(args, result, false, undefined, Math.round((clock.now() - start) * 1e6));
        return result;
      },
      /**
       * The source of the scripts whose path one of `filters` matches (a regular expression's source,
       * which the agent made from a checked file pattern; null: the application's scripts, all but
       * node_modules), as they were before any probe edited them. With `link` (the agent's socket
       * and this attach's token), the channel to the agent opens meanwhile.
       */
      sources(filters, link) {
        // An attach starts here: the stops of the program it causes are counted from now.
        watchAttach();
        if (link) linkToAgent(link);
        // Built-ins, channels and the profiler need no source: the debugger stays off.
        if (filters.length === 0) return Promise.resolve({});
        const own = exclusive(() => readSources(filters));
        // The main thread's runtime also reads what only its workers have.
        return mod('worker_threads').isMainThread ? own.then((sources) => workerSources(filters, sources)) : own;
      },
      /**
       * What the agent needs to read the scripts the filters name (see sources()) without this process
       * sending them: for a script that is a file, its length and hash as V8 reported them (the agent
       * reads the file and checks both: a 9 MB script's source through the inspector stopped the
       * program for ~250 ms); for others, the source itself.
       */
      scriptsOf(filters, link, limitMs) {
        watchAttach();
        if (link) linkToAgent(link);
        if (filters.length === 0) return NativePromise.resolve({});
        const own = exclusive(() => describeScripts(filters, typeof limitMs === 'number' ? limitMs : Infinity));
        return mod('worker_threads').isMainThread ? own.then((scripts) => workerSources(filters, scripts)) : own;
      },
      /** One script's live source (when its file is not what the process runs: edited since, or gone). */
      source(url) {
        const scriptId = scriptIds.get(url);
        if (scriptId === undefined) return NativePromise.resolve(null);
        // As it was before Fay's edits: what the agent computes edits on.
        const edited = editedScripts.get(scriptId);
        return edited?.pristine !== undefined ? NativePromise.resolve(edited.pristine) : exclusive(() => readSource(scriptId).finally(idle));
      },
      /**
       * How the attach under way stopped the program, and ends watching it: { steps: the runtime's own
       * stops, longest first, [{ what, ms }]; gcs: the garbage collections meanwhile, ms each; heldMs:
       * the longest the event loop was held up, whatever held it }.
       */
      attachStalls() {
        const steps = [...pauses.stalls].sort((a, b) => b.ms - a.ms);
        const watch = pauses.watch;
        pauses.watch = undefined;
        if (watch === undefined) return { steps, gcs: [], heldMs: 0 };
        let heldMs = 0;
        try {
          for (const entry of watch.observer.takeRecords()) watch.gcs.push(entry.duration);
          watch.end(watch);
          heldMs = Number.isFinite(watch.delay.max) ? watch.delay.max / 1e6 : 0;
        } catch {
          // Nothing more to say than the steps.
        }
        return { steps, gcs: watch.gcs.filter((ms) => ms >= 1).map(Math.round), heldMs: Math.round(heldMs) };
      },
      /** The paths of the scripts the debugger has listed (for suggestions when a file pattern matches none). */
      scripts() {
        return [...scriptIds.keys()].map(filePath).filter((path) => path !== undefined);
      },
      open: (cfg, factory) =>
        open(cfg, factory).catch(async (error) => {
          // What was installed before the failure comes out again before the agent hears of it.
          const session = sessions.get(cfg.session);
          if (session && !session.socket) await session.detach('its probes could not all be installed');
          throw error;
        }),
      sessions,
      /**
       * Takes every kept edit out now, the workers' too (fay release; and a runtime of another version,
       * before it replaces this one), each as long as taking it out stops the process no longer than
       * `limitMs` (none: no limit): { functions: how many functions' edits went (one per thread it was
       * in), left: the scripts whose edits stay, with what taking them out would cost }.
       */
      async dropKeptEdits(limitMs) {
        const limit = typeof limitMs === 'number' && limitMs >= 0 ? limitMs : Infinity;
        const here = await dropKept(Infinity, limit);
        if (!mod('worker_threads').isMainThread) return here;
        await watchWorkers();
        try {
          const there = await NativePromise.all(
            [...workerWatch.workers.values()].map((worker) =>
              inWorker(worker.sessionId, `globalThis.__fay$?.dropKeptEdits ? globalThis.__fay$.dropKeptEdits(${toJson(Number.isFinite(limit) ? limit : null)}) : 0`).catch(() => 0),
            ),
          );
          // A worker's runtime of an older version answers with a number.
          const functions = there.reduce((n, k) => n + (typeof k === 'number' ? k : Number(k?.functions) || 0), here.functions);
          const left = [...here.left, ...there.flatMap((k) => (Array.isArray(k?.left) ? k.left : []))];
          return { functions, left };
        } finally {
          unwatchWorkers();
        }
      },
    };
    return rt;

    /**
     * Connects to the agent for one attach and says hello with its token, ahead of the session
     * that will use the connection: the agent accepts it while it works out the probes.
     */
    function linkToAgent(link) {
      const socket = mod('net').connect({ path: link.socket });
      socket.unref();
      socket.on('error', () => undefined);
      links.set(link.token, socket);
      socket.on('close', () => links.delete(link.token));
      // The pid the agent knows it by (in a container's pid namespace, process.pid is another).
      socket.write(`${toJson({ type: 'hello', token: link.token, pid: link.pid ?? process.pid })}\n`);
      return socket;
    }

    /** How many CommonJS modules are loaded. */
    function moduleCount() {
      const cache = mod('module')._cache;
      return cache ? Object.keys(cache).length : 0;
    }

    /** The file a script URL names (file:// or a path), or undefined (node:, evaluated code). */
    function filePath(url) {
      return url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url.startsWith('/') ? url : undefined;
    }

    /** The sources of the scripts the filters name (see sources()), but those in `skip`. */
    async function readSources(filters, skip, limitMs = Infinity) {
      const session = await debugging(limitMs);
      const tests = filters.map((f) => (f === null ? (path) => !path.includes('/node_modules/') : RegExp.prototype.test.bind(new RegExp(f, 's'))));
      const out = {};
      const started = clock.now();
      try {
        for (const [url, scriptId] of scriptIds) {
          const path = filePath(url);
          if (path === undefined || skip?.has(url) || !tests.some((test) => test(path))) continue;
          const edited = editedScripts.get(scriptId);
          out[url] = edited ? edited.pristine : (await post(session, 'Debugger.getScriptSource', { scriptId })).scriptSource;
        }
      } finally {
        const chars = Object.values(out).reduce((n, s) => n + s.length, 0);
        stalled(`reading the sources of ${Object.keys(out).length} scripts (${(chars / 1048576).toFixed(1)} MB)`, clock.now() - started);
        idle();
      }
      return out;
    }

    /**
     * The scripts the filters name (see scriptsOf()): url → { length, hash }, or the source where it
     * is no file. Where turning the debugger on would stop the process longer than `limitMs`, the
     * CommonJS modules it has loaded instead (their paths need no debugger): url → { why }, for the
     * agent to read their files and probe their exports (nothing can be edited without the debugger).
     */
    async function describeScripts(filters, limitMs) {
      const tests = filters.map((f) => (f === null ? (path) => !path.includes('/node_modules/') : RegExp.prototype.test.bind(new RegExp(f, 's'))));
      let session;
      try {
        session = await debugging(limitMs);
      } catch (error) {
        if (!(error instanceof TooCostly)) throw error;
        const out = {};
        // A CommonJS module's script is known to V8 by its file URL.
        for (const path of Object.keys(mod('module')._cache || {})) {
          if (path.startsWith('/') && tests.some((test) => test(path))) out[mod('url').pathToFileURL(path).href] = { why: error.message };
        }
        return out;
      }
      const out = {};
      try {
        for (const [url, scriptId] of scriptIds) {
          const path = filePath(url);
          if (path === undefined || !tests.some((test) => test(path))) continue;
          // What V8 reported when this runtime first saw the script: its source before any of Fay's edits.
          const info = scriptInfo.get(url);
          const edited = editedScripts.get(scriptId);
          if (info && typeof info.hash === 'string') out[url] = { length: info.length, hash: info.hash };
          else out[url] = edited?.pristine ?? (await post(session, 'Debugger.getScriptSource', { scriptId })).scriptSource;
        }
      } finally {
        idle();
      }
      return out;
    }

    /** One script's source, read through the debugger: a stop as long as the script is large, measured. */
    async function readSource(scriptId) {
      const session = await debugging();
      const started = clock.now();
      const { scriptSource } = await post(session, 'Debugger.getScriptSource', { scriptId });
      stalled(`reading the source of a script (${(scriptSource.length / 1048576).toFixed(1)} MB)`, clock.now() - started);
      await breathe();
      return scriptSource;
    }

    /** Reserves function ids for instrumentation. */
    function reserve(n) {
      const base = probes.length;
      for (let i = 0; i < n; i++) {
        probes.push(null);
        hooks.push(DETACHED);
      }
      return base;
    }

    async function open(cfg, factory) {
      const session = {
        id: cfg.session,
        /** How long taking its edits out may stop the process (its query's --max-pause). */
        maxPauseMs: cfg.maxPauseMs,
        fids: [],
        wraps: [],
        edits: [],
        channels: [],
        socket: undefined,
        /** In a worker: the channel to the main thread's session, which relays (see openInWorkers()). */
        relay: undefined,
        /** In the main thread: the session's workers (see openInWorkers()). */
        threads: undefined,
        /** The scripts there were at the attach, and how many CommonJS modules (see lookForScripts()); those sent for edits since. */
        known: undefined,
        asked: new Set(),
        modules: 0,
        looking: undefined,
        state: { groups: new Map(), rows: [], dropped: 0, folded: 0, epoch: 0 },
        closed: false,
        notice(message) {
          send({ type: 'notice', message });
        },
        /** Sends the agent scripts loaded after the attach (this thread's or, relayed, a worker's): it answers with their edits. */
        askEdits(sources) {
          send({ type: 'scripts', sources });
        },
      };
      session.detach = detach;
      sessions.set(session.id, session);
      const dc = mod('diagnostics_channel');
      const S = session.state;
      S.maxGroups = cfg.maxGroups;
      S.maxRows = cfg.maxRows;
      // The workers' config, as the agent sent it (applying the edits below changes cfg.edits).
      const relayed = cfg.relay ? undefined : toJson({ ...cfg, relay: `fay:${cfg.session}`, token: undefined, socket: undefined });
      const handlerFor = factory(helpers(cfg), S);
      const report = [];

      // Built-ins: wrap the property, verify it took, keep the original.
      for (const target of cfg.builtins) {
        const found = resolveBuiltin(target);
        if (typeof found === 'string') {
          report.push({ name: target.name, probed: false, reason: found });
          continue;
        }
        if (!wrapProperty(session, found, target, handlerFor, addProbe)) {
          report.push({ name: target.name, probed: false, reason: 'its object is frozen or the property is read-only' });
          continue;
        }
        // A built-in module's own export: its ES modules' imports get the wrapper too (syncBuiltinESMExports, below).
        const imported = target.module !== undefined && target.path.length === 0 ? "; ES modules' imports of it are counted" : '';
        report.push({
          name: target.name,
          probed: true,
          note: found.own
            ? `a wrapper on the property: references taken before the attach by CommonJS code (e.g. destructured at load) call the original and are not counted${imported}`
            : 'an inherited method, wrapped on this object: only calls through it (e.g. on its instances) are counted',
        });
      }
      if (session.wraps.length > 0) {
        try {
          mod('module').syncBuiltinESMExports();
        } catch {
          // Older Node.js: ES modules keep the original bindings.
        }
      }

      // User code: live edits the agent computed, applied through an in-process inspector session
      // so that they can be undone here even if the agent disappears.
      if (cfg.edits.length > 0) await exclusive(() => applyEdits(cfg, session, report, handlerFor, addProbe));

      // diagnostics_channel: one event per message, the message as args[0].
      for (const channel of cfg.channels) {
        const fid = reserve(1);
        addProbe(fid, channel.probe, false, handlerFor(channel.probe));
        const listener = (message) => hooks[fid].run([message], undefined, false, undefined, 0);
        dc.subscribe(channel.name, listener);
        session.channels.push({ name: channel.name, listener });
        report.push({ name: channel.probe, probed: true });
      }

      // CPU samples of this thread, through the runtime's own inspector session. Starting the profiler
      // walks the heap for the code there is (as turning the debugger on does): estimated first alike.
      const profilerCost = cfg.profile ? enableCost() : undefined;
      if (cfg.profile && profilerCost.ms > cfg.maxPauseMs && cfg.maxPauseMs > 0) {
        report.push({
          name: cfg.profile.probe,
          probed: false,
          reason: `starting the CPU profiler could stop the process for ~${profilerCost.ms} ms (a ${profilerCost.heapMb} MB heap), over the --max-pause of ${cfg.maxPauseMs} ms`,
        });
      } else if (cfg.profile) {
        const fid = reserve(1);
        addProbe(fid, cfg.profile.probe, false, handlerFor(cfg.profile.probe));
        // A profiler of its own (an inspector session's): two queries' profiles at once each get every
        // sample, at their own rates. It needs no debugger.
        const inspector = new (mod('inspector').Session)();
        inspector.connect();
        session.profile = { fid, inspector };
        const started = clock.now();
        await post(inspector, 'Profiler.enable');
        await post(inspector, 'Profiler.setSamplingInterval', { interval: Math.max(1, Math.round(1e6 / cfg.profile.hz)) });
        await post(inspector, 'Profiler.start');
        const ms = clock.now() - started;
        stalled('starting the CPU profiler', ms);
        learnedWalk(profilerCost.ms, ms);
        report.push({ name: cfg.profile.probe, probed: true });
      }

      function addProbe(fid, name, async, handler, awaits = false) {
        const probe = { name, async, awaits, handler, session, disabled: false, calls: 0, every: 1, seen: 0, depth: 0, starts: [], args: [], pending: 0, kept: cfg.kept.length > 0 ? emptyKept() : undefined, hooks: DETACHED };
        probes[fid] = probe;
        // Its own hooks: hooks[fid] goes back to DETACHED when the probe goes off, before its last read.
        hooks[fid] = probe.hooks = makeHooks(probe, cfg.kept, cfg.args);
        session.fids.push(fid);
      }

      // Scripts that load later are looked for where the query names files (in each thread: a worker's
      // go to the agent through the main thread's session, and their edits come back the same way).
      if (cfg.filters && cfg.filters.length > 0) {
        session.known = new Set(scriptIds.keys());
        session.modules = moduleCount();
      }

      // The channel to the agent, opened while the agent read the sources: partials on request; if it
      // closes, everything is undone. A worker's session talks to the main thread's instead.
      if (cfg.relay) {
        session.relay = channelNamed(cfg.relay);
        session.relay.onmessage = ({ data }) => receive(data);
      } else {
        session.socket = links.get(cfg.token) || linkToAgent({ socket: cfg.socket, token: cfg.token, pid: cfg.pid });
        links.delete(cfg.token);
        let buffer = '';
        session.socket.on('data', (chunk) => {
          buffer += chunk.toString('utf8');
          let at;
          while ((at = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, at);
            buffer = buffer.slice(at + 1);
            let message;
            try {
              message = fromJson(line);
            } catch {
              continue;
            }
            receive(message);
          }
        });
        session.socket.on('close', () => detach('the agent disconnected'));
      }
      // A process that exits while probed sends what it counted since the last flush with its last
      // breath (a write to a Unix socket goes out at once); one killed by a signal cannot.
      session.onExit = () => {
        if (session.closed) return;
        probesOff();
        // Nothing about sampling: there is no next period for it to apply to.
        send({ ...flush(0, 0, 1), sampling: [], type: 'exiting' });
      };
      process.on('exit', session.onExit);
      // Worker threads get the session's probes too: the main thread's runtime installs them there.
      if (relayed !== undefined && !session.closed) return mergeReports([report, await openInWorkers(session, relayed, factory)]);
      return report;

      /** A flush or a detach, from the agent (or, in a worker, from the main thread's session). */
      function receive(message) {
        if (message === null || typeof message !== 'object') return;
        if (message.type === 'flush') {
          if (!message.final) lookForScripts();
          // The query's last flush: its probes go off as it is read, so that no call is counted
          // after it (a call between it and the detach would be counted and never sent).
          const theirs = session.threads ? workerPartials(session, message) : [];
          const reply = (partials) => {
            if (message.final) probesOff();
            const own = flush(message.period, message.capPerSecond, message.seconds);
            send(session.relay ? own : withThreads(own, Array.isArray(partials) ? partials : []));
          };
          NativePromise.all([theirs, samples()]).then(([partials]) => reply(partials), () => reply([]));
        } else if (message.type === 'detach') detach('detach');
        else if (message.type === 'edits' && Array.isArray(message.edits)) {
          // The edits of every thread's late scripts come through the main thread: each thread applies
          // those of the scripts it asked about (a module loaded in two threads is edited in each).
          if (session.threads && !session.threads.closed) relay(session, message);
          const mine = message.edits.filter((edit) => edit && session.asked.delete(edit.url));
          if (mine.length > 0) lateEdits(mine);
        }
      }

      /**
       * Scripts loaded since the attach (or the last look) that the query's files name: their sources
       * go to the agent, which sends their edits back. Looked for when a read comes and more CommonJS
       * modules are loaded than before (counting them costs microseconds; listing the scripts takes
       * the debugger, a few ms): an ES module that loads alone is not seen.
       */
      function lookForScripts() {
        if (!session.known || session.closed || session.looking) return;
        const modules = moduleCount();
        if (modules === session.modules) return;
        session.modules = modules;
        session.looking = exclusive(() => readSources(cfg.filters, session.known, session.maxPauseMs))
          .then((sources) => {
            for (const url of Object.keys(sources)) {
              session.known.add(url);
              session.asked.add(url);
            }
            if (Object.keys(sources).length > 0 && !session.closed) session.askEdits(sources);
          })
          .catch(() => undefined)
          .finally(() => (session.looking = undefined));
      }

      /** Applies the edits the agent made for scripts loaded after the attach, and says what they probe. */
      function lateEdits(edits) {
        const late = [];
        exclusive(() => (session.closed ? undefined : applyEdits({ ...cfg, edits }, session, late, handlerFor, addProbe)))
          .then(() => {
            const probed = late.filter((r) => r.probed).map((r) => r.name);
            if (probed.length > 0) session.notice(`${probed.join(', ')}: loaded after the attach, probed from now on`);
            for (const r of late) if (!r.probed) session.notice(`${r.name}: loaded after the attach, not probed: ${r.reason}`);
          })
          .catch((error) => session.notice(`scripts loaded after the attach are not probed: ${error && error.message}`));
      }

      /** The session's probes pass straight through from now on (their state stays, to be read). */
      function probesOff() {
        for (const fid of session.fids) hooks[fid] = DETACHED;
      }

      function send(message) {
        if (session.relay) session.relay.postMessage({ ...message, thread: mod('worker_threads').threadId });
        else if (session.socket && !session.socket.destroyed) session.socket.write(`${toJson(message)}\n`);
      }

      function flush(period, capPerSecond, seconds) {
        // Between turns of the event loop no synchronous call is running: frames still open were ended by an exception.
        for (const fid of session.fids) {
          const probe = probes[fid];
          if (!probe) continue;
          probe.hooks.endAll();
        }
        if (cfg.kept.length > 0) keptGroup();
        const groups = [...S.groups.values()];
        S.groups = new Map();
        S.epoch++;
        const rows = S.rows;
        S.rows = [];
        const dropped = S.dropped;
        S.dropped = 0;
        const folded = S.folded;
        S.folded = 0;
        // A probe called more often than the cap is sampled next period, and says so.
        const sampling = [];
        for (const fid of session.fids) {
          const probe = probes[fid];
          // Keeping aggregates in the hooks costs less than checking whether to sample would save.
          if (!probe || cfg.kept.length > 0) continue;
          const rate = (probe.calls - probe.seen) / Math.max(seconds, 1e-3);
          probe.seen = probe.calls;
          const every = capPerSecond > 0 && rate > capPerSecond ? Math.ceil(rate / capPerSecond) : 1;
          // While sampling, small swings of the rate keep the step (and say nothing): within a factor of 1.5.
          const steady = every > 1 && probe.every > 1 && every <= probe.every * 1.5 && every * 1.5 >= probe.every;
          if (every === probe.every || steady) continue;
          sampling.push({ name: probe.name, every, rate: Math.round(rate) });
          probe.every = every;
        }
        // Calls of async functions not settled yet: still pending, or, in one whose awaits are not
        // handed over (see a()), rejected through an await, which live-edited code cannot see (it has no catch).
        const pending = [];
        for (const fid of session.fids) {
          const probe = probes[fid];
          if (probe && probe.pending > 0) pending.push({ name: probe.name, calls: probe.pending, awaitsSeen: probe.awaits });
        }
        return { type: 'partial', period, groups, rows, dropped, folded, sampling, pending };
      }

      /**
       * Probes whose hooks keep their aggregates: the calls since the last flush, their durations'
       * sum, extremes and buckets, summed over the session's probes, are the one group's states.
       */
      function keptGroup() {
        let calls = 0;
        const all = emptyKept();
        for (const fid of session.fids) {
          const probe = probes[fid];
          if (!probe) continue;
          calls += probe.calls - probe.seen;
          probe.seen = probe.calls;
          // Emptied in place: the probe's hooks hold this object.
          const k = probe.kept;
          all.sum += k.sum;
          all.min = Math.min(all.min, k.min);
          all.max = Math.max(all.max, k.max);
          k.hist.forEach((n, i) => (all.hist[i] += n));
          k.sum = 0;
          k.min = Infinity;
          k.max = -Infinity;
          k.hist.fill(0);
        }
        if (calls === 0) return;
        const state = { count: calls, sum: all.sum, min: all.min, max: all.max, avg: [all.sum, calls], hist: all.hist };
        S.groups.set('', { key: [], s: cfg.kept.map((k) => state[k]) });
      }

      /** Feeds the profile of the period to its probe, one event per sample, and starts the next one. */
      async function samples() {
        if (!session.profile || session.closed) return;
        const { inspector } = session.profile;
        const { profile } = await post(inspector, 'Profiler.stop');
        if (!session.closed) await post(inspector, 'Profiler.start');
        const { run } = hooks[session.profile.fid];
        if (!profile) return;
        const parent = new Map();
        const byId = new Map();
        for (const node of profile.nodes) {
          byId.set(node.id, node);
          for (const child of node.children || []) parent.set(child, node.id);
        }
        const stacks = new Map();
        const stackOf = (id) => {
          let stack = stacks.get(id);
          if (stack === undefined) {
            const frames = [];
            for (let at = id; at !== undefined; at = parent.get(at)) {
              const frame = byId.get(at).callFrame;
              if (frame.functionName !== '(root)') frames.push(frame);
            }
            stack = ownWork(frames).join('\n');
            stacks.set(id, stack);
          }
          return stack;
        };
        for (const id of profile.samples || []) run([stackOf(id)], undefined, false, undefined, 0);
      }

      /** A profile's frame as a stack line: its function, and its script's name and line. */
      function frameName(frame) {
        const where = frame.url ? ` (${frame.url.slice(frame.url.lastIndexOf('/') + 1)}:${frame.lineNumber + 1})` : '';
        return `${frame.functionName || '(anonymous)'}${where}`;
      }

      /**
       * A stack's lines (innermost frame first), Fay's own work in it as one line, "(fay)": where the
       * innermost of Fay's frames has only Node's internals and native code above it (its hooks, its
       * flushes, this very profile's reading), those and the run of Fay's frames under them. The
       * application's code that Fay calls (a wrapper calls the original) stays as it is.
       */
      function ownWork(frames) {
        const first = frames.findIndex((f) => f.url === OWN_URL);
        if (first < 0 || frames.slice(0, first).some((f) => f.scriptId !== '0' && !f.url.startsWith('node:'))) return frames.map(frameName);
        let last = first;
        while (last + 1 < frames.length && frames[last + 1].url === OWN_URL) last++;
        return [OWN_WORK, ...frames.slice(last + 1).map(frameName)];
      }

      /** Switches the session's probes off at once, and resolves once its edits are out of the source too. */
      function detach(reason) {
        if (session.closed) return Promise.resolve();
        session.closed = true;
        // From here every probe of the session passes straight through; undoing the edits can come after.
        for (const fid of session.fids) {
          probes[fid] = null;
          hooks[fid] = DETACHED;
        }
        if (reason === 'detach') send({ type: 'detached' });
        closeInWorkers(session);
        session.relay?.close();
        if (session.onExit) process.removeListener('exit', session.onExit);
        for (const c of session.channels) dc.unsubscribe(c.name, c.listener);
        if (session.profile) {
          const { inspector } = session.profile;
          post(inspector, 'Profiler.stop')
            .catch(() => undefined)
            .finally(() => inspector.disconnect());
        }
        for (const w of session.wraps) {
          // Only put the original back if nobody replaced our wrapper since.
          if (w.owner[w.key] === w.wrapper) {
            try {
              if (w.descriptor) Object.defineProperty(w.owner, w.key, w.descriptor);
              else if (w.own) w.owner[w.key] = w.original;
              else delete w.owner[w.key];
            } catch {
              // Left in place: it passes straight through now.
            }
          }
        }
        if (session.wraps.length > 0) {
          try {
            mod('module').syncBuiltinESMExports();
          } catch {
            // As above.
          }
        }
        // Its live edits stay a while, inert, when the query asks for that: the next query that
        // probes the same functions the same way takes them over instead of stopping the process
        // to edit again. The timer that takes them out runs here, whether or not any agent is left.
        if (session.edits.length > 0 && cfg.keepEditsMs > 0 && (reason === 'detach' || reason === 'the agent disconnected')) {
          session.keptUntil = Date.now() + cfg.keepEditsMs;
          sweepLater();
          if (reason === 'detach') session.socket?.end();
          return Promise.resolve();
        }
        const undo = session.edits.length > 0 ? exclusive(() => revert(session, session.maxPauseMs)) : NativePromise.resolve([]);
        // Never rejects: nothing in the target may be left with an unhandled rejection.
        return undo
          .then((left) => {
            settleReverted(session, left);
            for (const l of left) {
              send({
                type: 'notice',
                message:
                  `the live edit of ${filePath(l.url) ?? l.url} stays in the process, inert (its probes are off: ~2 ns a call): taking it out ` +
                  `would stop the process for ~${l.ms} ms (${l.figures}), over the --max-pause of ${l.limitMs} ms; ` +
                  `fay release "js:pid=${cfg.pid}" --max-pause ${Math.ceil(l.ms / 1000)}s takes it out`,
              });
            }
          })
          .catch(() => sessions.delete(session.id))
          .finally(() => {
            if (reason === 'detach') session.socket?.end();
          });
      }
    }

    /** Takes out the kept edits whose time is up, once it is (a timer that does not keep the process alive). */
    function sweepLater() {
      clearTimeout(sweepTimer);
      const due = Math.min(...[...sessions.values()].map((s) => (s.keptUntil === undefined ? Infinity : s.keptUntil)));
      if (due === Infinity) return;
      sweepTimer = setTimeout(() => void dropKept(Date.now()), Math.max(0, due - Date.now()));
      sweepTimer.unref();
    }

    /**
     * Takes out the edits kept until `until` or earlier, each as long as taking it out would stop the
     * process no longer than `limitMs` (by default, the --max-pause of the query that made it).
     * Resolves with how many functions' edits went, and the scripts whose edits stay, inert (with
     * what taking them out would cost): they stay until `fay release` allows a longer stop.
     */
    function dropKept(until, limitMs) {
      const due = [...sessions.values()].filter((s) => s.keptUntil !== undefined && s.keptUntil <= until);
      for (const s of due) s.keptUntil = undefined;
      sweepLater();
      const count = (s) => [...editedScripts.values()].reduce((n, script) => n + (script.bySession.get(s.id)?.length ?? 0), 0);
      return NativePromise.all(
        due.map((s) => {
          const before = count(s);
          return exclusive(() => revert(s, limitMs ?? s.maxPauseMs))
            .then((left) => {
              settleReverted(s, left);
              return { functions: before - count(s), left };
            })
            .catch(() => {
              sessions.delete(s.id);
              return { functions: before, left: [] };
            });
        }),
      ).then((results) => ({ functions: results.reduce((n, r) => n + r.functions, 0), left: results.flatMap((r) => r.left) }));
    }

    /**
     * After a session's edits were taken out: gone, or, where taking one out would have stopped the
     * process too long, kept for good (inert: its probes are off) until fay release takes it out.
     */
    function settleReverted(session, left) {
      if (left.length === 0) {
        sessions.delete(session.id);
        return;
      }
      session.keptUntil = Infinity;
      session.stuck = left;
    }

    /**
     * Applies the agent's live edits, all at once or, when V8 refuses, function by function. The agent
     * computed them on the pristine source; the script gets them on top of other sessions' edits.
     * A function that an ended session's kept edit instruments the same way is taken over as it is:
     * where every function is, the script is not edited, and the process does not stop at all.
     */
    async function applyEdits(cfg, session, report, handlerFor, addProbe) {
      // The debugger goes on only where an edit needs it (taking a kept edit over does not), and only
      // where turning it on is within the limit: else each function gets a wrapper on its export, if any.
      let inspector;
      let offLimits;
      const withDebugger = async () => {
        if (offLimits === undefined && inspector === undefined) {
          try {
            inspector = await debugging(cfg.maxPauseMs);
          } catch (error) {
            if (!(error instanceof TooCostly)) throw error;
            offLimits = cfg.maxPauseMs === 0 ? 'not live-edited (--max-pause 0)' : `not live-edited: ${error.message}`;
          }
        }
        return inspector !== undefined;
      };
      /** Where a function is not edited: a wrapper on its export (found by its text, which the agent sends), else reported. */
      const wrapOrReport = (edit, f, why, source) => {
        const text = f.text ?? source?.slice(f.start, f.end);
        const found = text === undefined ? undefined : exportOf(edit.url, text);
        const wrapped = found && !found.refusal && wrapExport(found, f, why, session, handlerFor, addProbe);
        report.push(wrapped || { name: f.name, probed: false, reason: found?.refusal ? `${why}; ${found.refusal}` : why });
      };
      try {
        for (const edit of cfg.edits) {
          let scriptId = scriptIds.get(edit.url);
          // A script this runtime's debugger has not seen yet (it has not been on here since the script
          // loaded, as in a new worker; or it could not be turned on to read the sources): it tells.
          if (scriptId === undefined && !debuggerOn && !workerOnly.has(edit.url)) {
            if (!(await withDebugger())) {
              if (!cfg.relay) for (const f of edit.functions) wrapOrReport(edit, f, f.unedited ?? offLimits);
              continue;
            }
            scriptId = scriptIds.get(edit.url);
          }
          // A script only workers have (or, in a worker, only other threads): theirs to report.
          if (scriptId === undefined && (cfg.relay || workerOnly.has(edit.url))) continue;
          // Its source is read here only once an edit of it is decided on: reading a large script is a stop of its own.
          const script =
            scriptId === undefined
              ? undefined
              : editedScripts.get(scriptId) || {
                  url: edit.url,
                  chars: scriptInfo.get(edit.url)?.length ?? edit.length,
                  pristine: undefined,
                  functions: edit.functionCount || 0,
                  bySession: new Map(),
                  applied: [],
                };
          const changed = (functions) => {
            for (const f of functions) report.push({ name: f.name, probed: false, reason: 'its script changed since it was read' });
          };
          if (script === undefined || script.chars !== edit.length) {
            changed(edit.functions);
            continue;
          }
          // Functions V8 would leave unedited without a word (the agent names them, f.unedited: why).
          for (const f of edit.functions.filter((f) => f.unedited)) wrapOrReport(edit, f, f.unedited, script.pristine);
          const candidates = edit.functions.filter((f) => !f.unedited);
          if (candidates.length === 0) continue;
          const taken = takeOver(script, candidates);
          const { adopted } = taken;
          let fresh = taken.fresh;
          // Kept edits not taken over go out with this one: the edit is estimated, as every edit, before it starts.
          const cost = fresh.length > 0 ? await editCost(script, cfg.maxPauseMs) : undefined;
          if (cost && (cfg.maxPauseMs === 0 || cost.ms > cfg.maxPauseMs)) {
            // Not edited: a wrapper on the export where there is one (it stops nothing), else reported.
            const why =
              cfg.maxPauseMs === 0
                ? 'not live-edited (--max-pause 0)'
                : `live-editing its script could stop the process for ~${cost.ms} ms (${costFigures(cost)}), ` +
                  `over the --max-pause of ${cfg.maxPauseMs} ms (raise it to probe every call)`;
            for (const f of fresh) wrapOrReport(edit, f, why, script.pristine);
            fresh = [];
          }
          if (fresh.length > 0 && !(await withDebugger())) {
            for (const f of fresh) wrapOrReport(edit, f, offLimits, script.pristine);
            fresh = [];
          }
          if (fresh.length > 0 && script.pristine === undefined) {
            script.pristine = await readSource(scriptId);
            if (script.pristine.length !== edit.length) {
              changed(fresh);
              fresh = [];
            }
          }
          // V8 leaves unedited, without a word, a function that starts or ends on a long changed line.
          if (fresh.length > 0) {
            const { kept, cut } = outOfLongLines(script, fresh);
            for (const f of cut) wrapOrReport(edit, f, ON_A_LONG_LINE, script.pristine);
            fresh = kept;
          }
          // The agent wrote "@fid" where each function's probe id goes.
          for (const f of fresh) {
            f.fid = reserve(1);
            f.insertions = f.insertions.map((i) => ({ offset: i.offset, place: i.place, text: i.text.split('@fid').join(String(f.fid)) }));
          }
          // Each edit stops this thread for as long as V8 walks the heap: the longest stop is reported, and
          // when V8 refuses the edit and it is retried function by function, the program runs in between.
          // Kept edits not taken over go out with the same edit: the process stops no longer for them.
          let longest = 0;
          const others = [...liveEntries(script), ...adopted.map((a) => a.entry)].map((e) => e.insertions);
          const apply = async (some) => {
            // Each edit is a stop of its own: the program runs before it.
            await breathe();
            return editLines(inspector, scriptId, script, [...others, ...some.map((f) => f.insertions)], (ms) => {
              longest = Math.max(longest, ms);
            });
          };
          const programRuns = () => new Promise((resolve) => setImmediate(resolve));
          let accepted = fresh;
          if (fresh.length > 0 && (await apply(accepted)) !== undefined) {
            accepted = [];
            for (const f of fresh) {
              await programRuns();
              const refused = await apply([...accepted, f]);
              if (refused === undefined) accepted.push(f);
              else report.push({ name: f.name, probed: false, reason: `V8 refused the live edit: ${refused}` });
            }
            if (accepted.length > 0 && accepted.length < fresh.length) {
              await programRuns();
              await apply(accepted);
            }
          }
          // What the longest step took teaches the next estimates (a second step costs less: the first discarded the code).
          if (longest > 0 && cost) learnedEdit(cost.ms, longest);
          const mine = [...adopted.map((a) => a.entry), ...accepted.map((f) => ({ fid: f.fid, key: f.key, insertions: f.insertions }))];
          settleOwners(scriptId, script);
          if (mine.length > 0) {
            script.bySession.set(session.id, mine);
            editedScripts.set(scriptId, script);
            session.edits.push(scriptId);
          }
          // V8 walks the whole heap for each live edit (0.5–1.5 ms per MB): said when that is long.
          const paused = Math.round(longest);
          for (const { f, entry } of adopted) {
            f.fid = entry.fid;
            addProbe(f.fid, f.name, f.async, handlerFor(f.name), f.awaits);
            report.push({ name: f.name, probed: true });
          }
          accepted.forEach((f, i) => {
            addProbe(f.fid, f.name, f.async, handlerFor(f.name), f.awaits);
            let note;
            if (i === 0 && paused > cfg.maxPauseMs && cost) {
              note =
                `live-editing its script stopped the process's JavaScript for ${paused} ms, over the --max-pause of ${cfg.maxPauseMs} ms ` +
                `(estimated at ${cost.ms} ms: ${costFigures(cost)}); this process's edits are estimated from what it took from now on`;
            } else if (i === 0 && paused >= cfg.pauseNoticeMs) {
              note = `live-editing its script stopped the process's JavaScript for ${paused} ms (${cost ? costFigures(cost) : 'V8 walks the heap'}; taking the edit out costs as much; --max-pause 0 never stops it, probing only through the exports)`;
            }
            report.push(note === undefined ? { name: f.name, probed: true } : { name: f.name, probed: true, note });
          });
        }
      } finally {
        debuggerNowOff().catch(() => undefined);
      }
    }

    /**
     * Splits a session's functions into those an ended session's kept edit of the script
     * instruments exactly as this session would (the same place, the same insertions: `adopted`,
     * each with the kept entry, which leaves its owner) and those that need an edit (`fresh`).
     */
    function takeOver(script, functions) {
      const kept = [...script.bySession].flatMap(([id, entries]) => (sessions.get(id)?.closed ? entries : []));
      const adopted = [];
      const fresh = [];
      for (const f of functions) {
        f.key = toJson([f.start, f.end, f.async, f.awaits, f.insertions]);
        const at = kept.findIndex((entry) => entry.key === f.key);
        if (at < 0) fresh.push(f);
        else adopted.push({ f, entry: kept.splice(at, 1)[0] });
      }
      for (const { entry } of adopted) {
        for (const [id, entries] of script.bySession) {
          if (!entries.includes(entry)) continue;
          script.bySession.set(id, entries.filter((e) => e !== entry));
          const owner = sessions.get(id);
          owner.fids = owner.fids.filter((fid) => fid !== entry.fid);
        }
      }
      return { adopted, fresh };
    }

    /**
     * After a script was edited (or not) and kept entries were taken over: the ended sessions keep
     * only the entries still in its source, and one with none left anywhere is gone.
     */
    function settleOwners(scriptId, script) {
      const inSource = new Set(script.applied);
      for (const [id, entries] of script.bySession) {
        const owner = sessions.get(id);
        if (!owner || !owner.closed) continue;
        const left = entries.filter((e) => inSource.has(e.insertions));
        if (left.length > 0) {
          script.bySession.set(id, left);
          continue;
        }
        script.bySession.delete(id);
        owner.edits = owner.edits.filter((s) => s !== scriptId);
        if (owner.edits.length === 0) sessions.delete(owner.id);
      }
    }

    /**
     * V8 diffs an edited script line by line, then each run of changed lines token by token, but
     * only a run under LONG_LINE characters (before and after the edit): a longer run is one change,
     * and every function starting or ending in it silently keeps its old code. Insertions never add
     * a line, so an edit changes the lines its insertions go in. editLines() makes each changed line
     * a run of its own where needed, which leaves one case out: a function starting or ending on a
     * changed line that long by itself (minified code). Returns the functions V8 will edit, and those left out.
     */
    function outOfLongLines(script, functions) {
      const { lineOf, lengths } = lineInfo(script, script.applied);
      const added = tally(lineOf, functions.map((f) => f.insertions));
      const long = (line) => added.has(line) && lengths(line) + added.get(line) >= LONG_LINE;
      const cut = [];
      const kept = functions.filter((f) => {
        const broken = long(lineOf(f.start)) || long(lineOf(Math.max(f.start, f.end - 1)));
        if (broken) cut.push(f);
        return !broken;
      });
      return { kept, cut };
    }

    /** The value an accessor property exports, where its getter only reads a name (READS_A_NAME); else undefined. */
    function exportedThrough(descriptor) {
      const get = descriptor?.get;
      if (typeof get !== 'function' || utilTypes.isProxy(get) || !READS_A_NAME.test(Function.prototype.toString.call(get))) return undefined;
      try {
        return get();
      } catch {
        return undefined;
      }
    }

    /**
     * Where a CommonJS module exports the function with this source (found by its text, up to two
     * objects below module.exports, through data properties, never a proxy, at most 10,000 keys an
     * object; and through getters that only read a name, as bundlers export a namespace):
     * { owner, key } (a data property), { owner, key, descriptor } (a getter that can be redefined),
     * { refusal } (a getter that cannot: why no wrapper can go there), or undefined.
     */
    function exportOf(url, text) {
      const path = filePath(url);
      if (path === undefined) return undefined;
      const loaded = mod('module')._cache?.[path];
      const exported = loaded && loaded.exports;
      // Not arrays or typed arrays: their elements are no place for an export, and may be millions.
      const searchable = (v) =>
        v !== null && (typeof v === 'object' || typeof v === 'function') && !utilTypes.isProxy(v) && !Array.isArray(v) && !ArrayBuffer.isView(v);
      // Breadth first: the exports themselves, then what they hold, then what that holds. A module of
      // 8,000 exported functions is then one pass over its exports (each function's own properties
      // and prototype searched first took ~60 ms there, in one stop).
      const seen = new Set();
      let level = [exported];
      for (let depth = 0; depth <= 2 && level.length > 0; depth++) {
        const next = [];
        for (const owner of level) {
          if (!searchable(owner) || seen.has(owner)) continue;
          seen.add(owner);
          for (const key of Object.getOwnPropertyNames(owner).slice(0, 10000)) {
            const descriptor = Object.getOwnPropertyDescriptor(owner, key);
            const value = descriptor && 'value' in descriptor ? descriptor.value : undefined;
            if (typeof value === 'function' && !utilTypes.isProxy(value) && Function.prototype.toString.call(value) === text) return { owner, key };
            const got = exportedThrough(descriptor);
            if (typeof got === 'function' && !utilTypes.isProxy(got) && Function.prototype.toString.call(got) === text) {
              return descriptor.configurable
                ? { owner, key, descriptor }
                : { refusal: `its export ${key} is a getter that cannot be redefined (non-configurable, as bundlers define exports), so no wrapper can go there either` };
            }
            if (depth < 2 && searchable(value)) next.push(value);
          }
        }
        level = next;
      }
      return undefined;
    }

    /**
     * Wraps a function V8 will not live-edit (`why`) on the property that exports it; its report, or
     * undefined if the property will not take it.
     */
    function wrapExport({ owner, key, descriptor }, f, why, session, handlerFor, addProbe) {
      const wrapped = descriptor ? wrapGetter(session, { owner, key, descriptor }, f, handlerFor, addProbe) : wrapProperty(session, { owner, key, own: true }, f, handlerFor, addProbe);
      if (!wrapped) return undefined;
      return {
        name: f.name,
        probed: true,
        note:
          `${why}: a wrapper on its export ${key} ` +
          'counts the calls through the exports, not those from inside its module or through references taken before the attach',
      };
    }

    /** A script's lines: the line of an offset, and a line's length with the given insertions in it. */
    function lineInfo(script, lists) {
      const source = script.pristine;
      if (script.lineStarts === undefined) {
        script.lineStarts = [0];
        for (let at = source.indexOf('\n'); at >= 0; at = source.indexOf('\n', at + 1)) script.lineStarts.push(at + 1);
      }
      const starts = script.lineStarts;
      const lineOf = (offset) => {
        let low = 0;
        let high = starts.length - 1;
        while (low < high) {
          const mid = (low + high + 1) >> 1;
          if (starts[mid] <= offset) low = mid;
          else high = mid - 1;
        }
        return low;
      };
      const inserted = tally(lineOf, lists);
      const lengths = (line) => (line + 1 < starts.length ? starts[line + 1] : source.length + 1) - starts[line] + (inserted.get(line) || 0);
      return { lineOf, lengths };
    }

    /** line → characters the lists insert in it. */
    function tally(lineOf, lists) {
      const chars = new Map();
      for (const list of lists) {
        for (const i of list) {
          const line = lineOf(i.offset);
          chars.set(line, (chars.get(line) || 0) + i.text.length);
        }
      }
      return chars;
    }

    /**
     * Sets a script to its pristine source plus the insertion lists `to`, from those in it now
     * (script.applied). When the lines that changes run together for LONG_LINE characters or more,
     * in two edits: its odd lines, then its even ones, so that each changed line is a run of its own.
     * In between, the probes are not on yet (or off already): their hooks pass straight through, and
     * the program runs, so that each stop is one heap walk long. `stopped` hears how long each edit
     * stopped the program. Undefined when V8 took it, else why not (and the script is as it was).
     */
    async function editLines(inspector, scriptId, script, to, stopped = noop) {
      const from = script.applied;
      const before = new Set(from.flat());
      const after = new Set(to.flat());
      const added = [...after].filter((i) => !before.has(i));
      const changed = [...[...before].filter((i) => !after.has(i)), ...added];
      // Line lengths with the insertions of before and after together: at least the longer of the two.
      const { lineOf, lengths } = lineInfo(script, [[...before, ...added]]);
      const lines = [...tally(lineOf, [changed]).keys()].sort((a, b) => a - b);
      let longRun = false;
      for (let k = 0, run = 0; k < lines.length && !longRun; k++) {
        run = k > 0 && lines[k] === lines[k - 1] + 1 ? run : 0;
        run += lengths(lines[k]);
        longRun = run >= LONG_LINE && k > 0 && lines[k] === lines[k - 1] + 1;
      }
      const timed = async (lists) => {
        const started = clock.now();
        const refused = await setSource(inspector, scriptId, script, lists);
        stopped(clock.now() - started);
        if (refused === undefined) script.applied = lists;
        return refused;
      };
      if (!longRun) return timed(to);
      // Odd lines first: what goes in on them goes in, what goes out of them goes out.
      const odd = (i) => lineOf(i.offset) % 2 === 1;
      const halfway = [...after].filter((i) => before.has(i) || odd(i)).concat([...before].filter((i) => !after.has(i) && !odd(i)));
      const refused = await timed([halfway]);
      if (refused !== undefined) return refused;
      await new Promise((resolve) => setImmediate(resolve));
      const last = await timed(to);
      // Back to where it was, rather than halfway with nobody knowing what is in it.
      if (last !== undefined) await timed(from);
      return last;
    }

    /**
     * The heap as the model of an edit's cost reads it (MB): in use in all, and in the spaces of small
     * objects (old and new space), which a walk of the heap visits one by one; large objects cost
     * a walk next to nothing.
     */
    function heapFigures() {
      let used = 0;
      let small = 0;
      for (const space of mod('v8').getHeapSpaceStatistics()) {
        const mb = space.space_used_size / 1048576;
        used += mb;
        if (space.space_name === 'old_space' || space.space_name === 'new_space') small += mb;
      }
      return { used, small };
    }

    /**
     * How long one live edit of a script (or taking one out, which costs the same) would stop this
     * process, estimated before it starts, in ms. The model, fitted to V8 11.3 (Node.js 20) on
     * scripts of 10 KB–9 MB with 10–20,000 functions in heaps of 5–500 MB (docs/live-edit-cost.md):
     *   25 + 0.2 per MB of heap (the debugger walks it)
     *   + 5 per MB of small objects (V8 finds the live ones from the roots, one hash-set insertion
     *     each: 150–200 ns for each of ~26,000 small objects in a MB, so 1.4 s for a live heap of
     *     390 MB, and next to nothing for one of large objects or garbage)
     *   + 37 per MB of script (parsed again) + 0.024 per function of the script + 0.000012 per
     *     function squared (V8 matches old and new)
     *   + 0.2 per MB of small objects for each function of the script that has been compiled
     *     (V8 discards each one's code with a walk of the whole heap: a warm 9 MB compiler in a
     *     170 MB heap stopped for 46 s),
     * all times `pauses.edits`: 1.25 at first, then what the last edit here took against its
     * estimate, with the same margin (a heap of large objects is learnt to cost less, an edit that
     * took longer makes the next estimates grow). Which functions are compiled takes a walk of the
     * heap to find out (a stop of its own, ~0.2 ms per MB, measured and said): it is asked only when
     * the answer turns on it.
     */
    async function editCost(script, limitMs) {
      const heap = heapFigures();
      const k = pauses.edits;
      const functions = script.functions;
      const base = k * (25 + 0.2 * heap.used + 5 * heap.small + (37 * script.chars) / 1048576 + 0.024 * functions + 1.2e-5 * functions * functions);
      const perCompiled = k * 0.2 * heap.small;
      const worst = base + perCompiled * functions;
      const figures = { heapMb: Math.round(heap.used), scriptMb: script.chars / 1048576, functions };
      if (limitMs <= 0 || worst <= limitMs || base > limitMs) return { ms: Math.round(base > limitMs ? base : worst), compiled: undefined, ...figures };
      const compiled = await compiledFunctionsOf(script.url);
      return { ms: Math.round(base + perCompiled * compiled), compiled, ...figures };
    }

    /** The figures behind an estimate, as a notice says them: "a 9.1 MB script of 23,456 functions (1,234 compiled) in a 170 MB heap". */
    function costFigures(cost) {
      const size = cost.scriptMb >= 1 ? `${cost.scriptMb.toFixed(1)} MB` : `${Math.max(1, Math.round(cost.scriptMb * 1024))} KB`;
      const compiled = cost.compiled === undefined ? '' : ` (${cost.compiled} compiled)`;
      return `a ${size} script of ${cost.functions} functions${compiled} in a ${cost.heapMb} MB heap`;
    }

    /**
     * How many of a script's functions have been compiled (they have bytecode, so an edit discards
     * their code): the inspector's best-effort coverage, which walks the heap once. One walk answers
     * for every script: it is kept for a second.
     */
    async function compiledFunctionsOf(url) {
      if (pauses.coverage === undefined || clock.now() - pauses.coverage.at > 1000) {
        const inspector = inspectorSession();
        const started = clock.now();
        await post(inspector, 'Profiler.enable');
        const { result } = await post(inspector, 'Profiler.getBestEffortCoverage');
        await post(inspector, 'Profiler.disable');
        stalled('counting the compiled functions (a walk of the heap)', clock.now() - started);
        const byUrl = new Map();
        for (const entry of result || []) byUrl.set(entry.url, entry.functions.filter((f) => f.ranges[0] && f.ranges[0].count > 0).length);
        pauses.coverage = { at: clock.now(), byUrl };
        await breathe();
      }
      return pauses.coverage.byUrl.get(url) ?? 0;
    }

    /**
     * An edit took `ms` against an estimate of `estimateMs`: this process's later edits are
     * estimated as this one would have been from what it took, with the 1.25 margin kept (never
     * below 2% of the model). An edit over its limit is thereby not made here again at that size.
     */
    function learnedEdit(estimateMs, ms) {
      if (!(estimateMs > 0) || !(ms >= 0)) return;
      pauses.edits = Math.max(0.02, (pauses.edits * (ms * 1.25)) / estimateMs);
    }

    /** A walk of the heap (turning the debugger on, starting the profiler) took longer than estimated: later ones are estimated higher. */
    function learnedWalk(estimateMs, ms) {
      if (estimateMs > 0 && ms > estimateMs) pauses.walks *= ms / estimateMs;
    }

    /**
     * An attach starts: its steps' stops are counted from now, and what the agent started watching at
     * the pid check (WATCH_STOPS in attach.ts: the event loop's delays, the garbage collections) is
     * this runtime's to read and end (see attachStalls()).
     */
    function watchAttach() {
      pauses.stalls = [];
      try {
        if (pauses.watch) pauses.watch.end(pauses.watch);
      } catch {
        // Ended already.
      }
      pauses.watch = globalThis.__fay$stops;
      delete globalThis.__fay$stops;
    }

    /** A stop of the program's JavaScript by the runtime's own work, kept for the attach's report. */
    function stalled(what, ms) {
      pauses.stalls.push({ what, ms: Math.round(ms) });
    }

    /**
     * Lets the program run (its timers, its I/O) before the next stop: each stop is then one step
     * long. In a large heap, it also lets the garbage collector finish a marking it has under way
     * (see SETTLE in attach.ts): a walk of the heap, or the next allocation of code, would otherwise
     * finish it in one stop (~0.7 ms per MB: 380 ms in a 390 MB heap, measured).
     */
    async function breathe() {
      await new NativePromise((resolve) => setImmediate(resolve));
      if (mod('v8').getHeapStatistics().used_heap_size < SETTLE_ABOVE_BYTES) return;
      let sink;
      const until = clock.now() + SETTLE_MS;
      while (clock.now() < until) {
        for (let i = 0; i < 16; i++) sink = new Array(1024).fill(i);
        await new NativePromise((resolve) => setImmediate(resolve));
      }
      return sink === undefined;
    }

    /**
     * Takes a session's edits out of its scripts, leaving other sessions' in place; but not where that
     * would stop the process longer than `limitMs` (see editCost): those stay in, inert, and are
     * returned ({ url, ms, limitMs }). A limit of Infinity takes everything out.
     */
    async function revert(session, limitMs = Infinity) {
      const left = [];
      let inspector;
      try {
        inspector = await debugging(limitMs);
      } catch (error) {
        if (!(error instanceof TooCostly)) throw error;
        const ms = enableCost().ms;
        for (const scriptId of session.edits) {
          const script = editedScripts.get(scriptId);
          if (script) left.push({ url: script.url, ms, limitMs, figures: error.message });
        }
        return left;
      }
      try {
        for (const scriptId of [...session.edits]) {
          const script = editedScripts.get(scriptId);
          if (!script) {
            session.edits = session.edits.filter((s) => s !== scriptId);
            continue;
          }
          const cost = Number.isFinite(limitMs) ? await editCost(script, limitMs) : undefined;
          if (cost && cost.ms > limitMs) {
            left.push({ url: script.url, ms: cost.ms, limitMs, figures: costFigures(cost) });
            continue;
          }
          script.bySession.delete(session.id);
          if (script.bySession.size === 0) editedScripts.delete(scriptId);
          await breathe();
          let longest = 0;
          await editLines(inspector, scriptId, script, [...script.bySession.values()].flatMap((entries) => entries.map((e) => e.insertions)), (ms) => {
            longest = Math.max(longest, ms);
          });
          if (cost) learnedEdit(cost.ms, longest);
          session.edits = session.edits.filter((s) => s !== scriptId);
        }
      } finally {
        debuggerNowOff().catch(() => undefined);
      }
      return left;
    }

    /** The entries of a script's sessions that are still running. */
    function liveEntries(script) {
      return [...script.bySession].flatMap(([id, entries]) => (sessions.get(id)?.closed ? [] : entries));
    }

    /**
     * Sets a script to its pristine source plus insertions; undefined when V8 took it, else why not.
     * At one offset openers come first, then one copy of each value, then closers, so wrappings nest,
     * then statements that come after them all.
     */
    async function setSource(inspector, scriptId, script, insertionLists) {
      const atOffset = new Map();
      for (const list of insertionLists) {
        for (const insertion of list) {
          let at = atOffset.get(insertion.offset);
          if (!at) atOffset.set(insertion.offset, (at = { open: [], value: [], close: [], after: [] }));
          if (insertion.place !== 'value' || !at.value.includes(insertion.text)) at[insertion.place].push(insertion.text);
        }
      }
      const offsets = [...atOffset.keys()].sort((a, b) => a - b);
      const parts = [];
      let from = 0;
      for (const offset of offsets) {
        const at = atOffset.get(offset);
        parts.push(script.pristine.slice(from, offset), ...at.open, ...at.value, ...at.close, ...at.after);
        from = offset;
      }
      parts.push(script.pristine.slice(from));
      const result = await post(inspector, 'Debugger.setScriptSource', { scriptId, scriptSource: parts.join('') }).catch((e) => ({ error: e }));
      if (!result.error && (!result.status || result.status === 'Ok')) return undefined;
      return result.error ? String(result.error.message || result.error) : result.status;
    }

    /** The runtime's inspector session (in-process, one for its whole life). */
    function inspectorSession() {
      if (debug === undefined) {
        debug = new (mod('inspector').Session)();
        debug.connect();
        debug.on('Debugger.scriptParsed', (message) => {
          const { url, scriptId } = message.params;
          if (url && !scriptIds.has(url)) {
            scriptIds.set(url, scriptId);
            scriptInfo.set(url, { length: message.params.length, hash: message.params.hash });
          }
        });
        for (const event of ['NodeWorker.attachedToWorker', 'NodeWorker.detachedFromWorker', 'NodeWorker.receivedMessageFromWorker']) {
          debug.on(event, fromWorkers);
        }
      }
      return debug;
    }

    /** The runtime's inspector session with the debugger enabled (disable it again when done). */
    async function debugging(limitMs = Infinity) {
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

    /**
     * How long turning the debugger on would stop this process (ms), estimated first: 20 + 0.3 per
     * MB of heap (measured up to 600 MB: 181 ms in a 470 MB heap), times `pauses.walks`.
     */
    function enableCost() {
      const heap = heapFigures();
      return { ms: Math.round(pauses.walks * (20 + 0.3 * heap.used)), heapMb: Math.round(heap.used) };
    }

    /**
     * Worker threads. Each runs JavaScript of its own, in an isolate of its own, which this thread's
     * probes do not reach. This runtime sees them through NodeWorker, its inspector session's view of
     * the workers (enabled while anything here needs them: ~1 ms, and every worker started meanwhile
     * gets an inspector session), installs itself in each by evaluating its own source there, and
     * relays: a session's workers read their scripts' sources for it, take its probes, and answer its
     * flushes on a BroadcastChannel, on their own event loops.
     */
    function watchWorkers() {
      const inspector = inspectorSession();
      if (workerWatch.users++ === 0) {
        workerWatch.ready = post(inspector, 'NodeWorker.enable', { waitForDebuggerOnStart: false }).catch(() => undefined);
      }
      return workerWatch.ready;
    }

    function unwatchWorkers() {
      if (--workerWatch.users > 0) return;
      workerWatch.ready = undefined;
      // Their sessions end with it: the next watch sees them under new session ids.
      workerWatch.workers.clear();
      for (const call of workerWatch.pending.values()) call.settle(new Error('no longer watching the workers'));
      post(inspectorSession(), 'NodeWorker.disable').catch(() => undefined);
    }

    /** Evaluates an expression in a worker (awaited, its value returned); rejects if the worker goes or takes too long. */
    function inWorker(sessionId, expression) {
      const id = ++workerWatch.calls;
      return new NativePromise((resolve, reject) => {
        const timer = setTimeout(() => settle(new Error(`no answer within ${WORKER_TIMEOUT_MS} ms`)), WORKER_TIMEOUT_MS);
        timer.unref();
        const settle = (error, value) => {
          clearTimeout(timer);
          workerWatch.pending.delete(id);
          if (error) reject(error);
          else resolve(value);
        };
        workerWatch.pending.set(id, { sessionId, settle });
        const message = { id, method: 'Runtime.evaluate', params: { expression: `${expression}\n//# sourceURL=${OWN_URL}`, awaitPromise: true, returnByValue: true } };
        // In ASCII: the way to a worker mangles other characters (its inspector then reads no JSON).
        const ascii = toJson(message).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
        post(inspectorSession(), 'NodeWorker.sendMessageToWorker', { sessionId, message: ascii }).catch((e) => settle(e));
      });
    }

    /** A worker's answer to inWorker, or its end. */
    function fromWorkers(event) {
      if (event.method === 'NodeWorker.detachedFromWorker') {
        const gone = workerWatch.workers.get(event.params.sessionId);
        workerWatch.workers.delete(event.params.sessionId);
        for (const p of workerWatch.pending.values()) if (p.sessionId === event.params.sessionId) p.settle(new Error('the worker ended'));
        // A worker that ends sends its last counts as it exits; one terminated cannot (see lastWordFrom()).
        if (gone) for (const session of sessions.values()) if (session.threads?.live.has(gone)) lastWordFrom(session, gone);
        return;
      }
      if (event.method === 'NodeWorker.attachedToWorker') {
        const { sessionId, workerInfo } = event.params;
        // Its title is "[worker <threadId>] <name>": the program knows it by that threadId (NodeWorker's own id differs).
        const titled = /^\[worker (\d+)\] ?(.*)$/.exec(String(workerInfo.title));
        const thread = titled ? Number(titled[1]) : Number(workerInfo.workerId);
        const worker = { sessionId, thread, name: `worker thread ${thread}${titled?.[2] ? ` (${titled[2]})` : ''}`, runtime: undefined };
        workerWatch.workers.set(sessionId, worker);
        for (const listener of workerWatch.listeners) listener(worker);
        return;
      }
      if (event.method !== 'NodeWorker.receivedMessageFromWorker') return;
      let answer;
      try {
        answer = fromJson(event.params.message);
      } catch {
        return;
      }
      const call = answer && workerWatch.pending.get(answer.id);
      if (!call) return;
      const { result, error } = answer;
      const thrown = result?.exceptionDetails;
      if (error || thrown) call.settle(new Error(String(error?.message ?? thrown?.exception?.description ?? thrown?.text)));
      else call.settle(undefined, result?.result?.value);
    }

    /** Installs this runtime in a worker (once): undefined, or why it could not. */
    function runtimeIn(worker) {
      worker.runtime ??= inWorker(worker.sessionId, `(globalThis.__fay$?.version === ${VERSION} ? ${VERSION} : (${faySetup.toString()})(null))`).then(
        (installed) => (installed === VERSION ? undefined : String(installed)),
        (error) => `its runtime could not be installed: ${error.message}`,
      );
      return worker.runtime;
    }

    /** The sources the filters name in the workers' scripts that this thread does not have (see sources()). */
    async function workerSources(filters, own) {
      await watchWorkers();
      try {
        const read = await NativePromise.all(
          [...workerWatch.workers.values()].map(async (worker) =>
            (await runtimeIn(worker)) === undefined ? inWorker(worker.sessionId, `__fay$.sources(${toJson(filters)})`).catch(() => ({})) : {},
          ),
        );
        for (const sources of read) {
          for (const [url, source] of Object.entries(sources)) {
            if (url in own) continue;
            own[url] = source;
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
    async function openInWorkers(session, relayed, factory) {
      await watchWorkers();
      const channel = channelNamed(`fay:${session.id}`);
      session.threads = { channel, live: new Set(), waiting: undefined, late: [], closed: false, stop: noop };
      channel.onmessage = ({ data }) => fromThread(session, data);
      const open = async (worker) => {
        const refused = await runtimeIn(worker);
        if (refused !== undefined) throw new Error(refused);
        const reports = await inWorker(worker.sessionId, `__fay$.open(${relayed}, (${factory.toString()}))`);
        session.threads.live.add(worker);
        // A session that ended meanwhile: the worker's probes go off again.
        if (session.closed) relay(session, { type: 'detach' });
        return reports;
      };
      const later = (worker) => {
        open(worker).then(
          () => {
            if (!session.closed) session.notice(`${worker.name} started after the attach: probed from now on`);
          },
          (error) => {
            if (!session.closed) session.notice(`${worker.name} started after the attach and is not probed: ${error.message}`);
          },
        );
      };
      workerWatch.listeners.add(later);
      session.threads.stop = () => workerWatch.listeners.delete(later);
      const lists = await NativePromise.all(
        [...workerWatch.workers.values()].map((worker) =>
          open(worker).catch((error) => {
            session.notice(`${worker.name} is not probed: ${error.message}`);
            return [];
          }),
        ),
      );
      // Ended while the workers were being opened: what the detach could not reach yet goes now.
      if (session.closed) closeInWorkers(session);
      return lists.flat();
    }

    /** A channel between the threads of this process that keeps none of them alive. */
    function channelNamed(name) {
      const channel = new (mod('worker_threads').BroadcastChannel)(name);
      channel.unref();
      return channel;
    }

    /** Posts to a session's workers (through a channel of its own once the session's is closed). */
    function relay(session, message) {
      if (!session.threads.closed) return session.threads.channel.postMessage(message);
      const channel = channelNamed(`fay:${session.id}`);
      channel.postMessage(message);
      channel.close();
    }

    /** What a session's worker sent: a partial (answering a flush, or its last, as it exits) or a notice. */
    function fromThread(session, message) {
      const { threads } = session;
      if (message === null || typeof message !== 'object') return;
      if (message.type === 'notice') session.notice(`worker thread ${message.thread}: ${message.message}`);
      else if (message.type === 'scripts' && message.sources && typeof message.sources === 'object') session.askEdits(message.sources);
      else if (message.type === 'exiting') {
        for (const worker of threads.live) if (worker.thread === message.thread) threads.live.delete(worker);
        // Its last counts: in the flush under way, which no longer waits for it, or the next.
        if (threads.waiting) threads.waiting.arrived(message);
        else threads.late.push(message);
      } else if (message.type === 'partial') {
        if (threads.waiting && threads.waiting.period === message.period) threads.waiting.arrived(message);
        else threads.late.push(message);
      }
    }

    /**
     * A session's worker has ended: its last counts come (as it exits, see open()) unless it was
     * terminated, which stops a thread without running anything more. Whether they came is known
     * shortly after: if not, the query says that some calls may be missing, never a silent zero.
     */
    function lastWordFrom(session, worker) {
      const timer = setTimeout(() => {
        const { threads } = session;
        if (!threads.live.delete(worker)) return;
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
    function workerPartials(session, message) {
      const { threads } = session;
      // Each worker answers, or sends its last counts as it ends, or is found terminated (lastWordFrom()).
      const expected = new Set([...threads.live].map((worker) => worker.thread));
      relay(session, { type: 'flush', period: message.period, capPerSecond: message.capPerSecond, seconds: message.seconds, final: message.final });
      return new NativePromise((resolve) => {
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
            this.gaveUp(partial.thread);
          },
          gaveUp(thread) {
            if (expected.delete(thread) && expected.size === 0) done();
          },
        };
        if (expected.size === 0) done();
      });
    }

    /** A partial with its workers' beside it (the agent merges groups by key). */
    function withThreads(own, theirs) {
      if (theirs.length === 0) return own;
      const all = [own, ...theirs];
      const sum = (field) => all.reduce((n, p) => n + (p[field] || 0), 0);
      return {
        ...own,
        groups: all.flatMap((p) => p.groups || []),
        rows: all.flatMap((p) => p.rows || []),
        dropped: sum('dropped'),
        folded: sum('folded'),
        sampling: all.flatMap((p) => p.sampling || []),
        pending: all.flatMap((p) => p.pending || []),
      };
    }

    /** A session's workers take their probes out (or keep their edits, as the session does). */
    function closeInWorkers(session) {
      const { threads } = session;
      if (!threads || threads.closed) return;
      threads.stop();
      relay(session, { type: 'detach' });
      threads.closed = true;
      threads.channel.close();
      unwatchWorkers();
    }

    /** One report per function: probed if any thread probed it. */
    function mergeReports(lists) {
      const byName = new Map();
      for (const r of lists.flat()) {
        const had = byName.get(r.name);
        if (!had || (!had.probed && r.probed)) byName.set(r.name, r);
      }
      return [...byName.values()];
    }

    /** The sources are read: the debugger goes off unless the edits come within 50 ms. */
    function idle() {
      clearTimeout(debuggerOff);
      debuggerOff = setTimeout(() => void debuggerNowOff().catch(() => undefined), 50);
      debuggerOff.unref();
    }

    function debuggerNowOff() {
      clearTimeout(debuggerOff);
      if (!debug || !debuggerOn) return Promise.resolve();
      debuggerOn = false;
      return post(debug, 'Debugger.disable');
    }

    function post(inspectorSession, method, params) {
      return new Promise((resolve, reject) => {
        inspectorSession.post(method, params || {}, (error, result) => (error ? reject(error) : resolve(result || {})));
      });
    }

    function resolveBuiltin(target) {
      let owner;
      if (target.module) {
        try {
          owner = mod(target.module);
        } catch {
          return `no built-in module ${target.module}`;
        }
      } else {
        owner = G[target.global];
        if (owner === undefined) return `no global ${target.global}`;
      }
      for (const step of target.path) {
        const next = owner === null || owner === undefined ? undefined : owner[step];
        if (next === undefined || next === null) return `${step} not found`;
        owner = next;
      }
      const value = owner[target.key];
      if (typeof value !== 'function') return `${target.key} is not a function`;
      return { owner, key: target.key, own: Object.prototype.hasOwnProperty.call(owner, target.key) };
    }

    /**
     * Puts the wrapper of a new probe (`probe`: its name, exit, async) on a property ({ owner, key,
     * own }) and keeps the original for detach. Whether it took: not on a frozen object or a read-only property.
     */
    function wrapProperty(session, { owner, key, own }, probe, handlerFor, addProbe) {
      const fid = reserve(1);
      const original = owner[key];
      const wrapper = makeWrapper(fid, original, probe.exit);
      try {
        owner[key] = wrapper;
      } catch {
        // Verified below.
      }
      if (owner[key] !== wrapper) return false;
      session.wraps.push({ owner, key, own, original, wrapper });
      addProbe(fid, probe.name, probe.async || isAsync(original), handlerFor(probe.name));
      return true;
    }

    /** As wrapProperty, for an export that a getter gives (it becomes a getter of the wrapper); the getter comes back at detach. */
    function wrapGetter(session, { owner, key, descriptor }, probe, handlerFor, addProbe) {
      const original = exportedThrough(descriptor);
      if (typeof original !== 'function') return false;
      const fid = reserve(1);
      const wrapper = makeWrapper(fid, original, probe.exit);
      try {
        Object.defineProperty(owner, key, { get: () => wrapper, set: descriptor.set, enumerable: descriptor.enumerable, configurable: true });
      } catch {
        return false;
      }
      if (owner[key] !== wrapper) return false;
      session.wraps.push({ owner, key, own: true, original, wrapper, descriptor });
      addProbe(fid, probe.name, probe.async || isAsync(original), handlerFor(probe.name));
      return true;
    }

    function makeWrapper(fid, original, exit) {
      const wrapper = exit
        ? function (...args) {
            return new.target
              ? rt.x(fid, args, () => Reflect.construct(original, args, new.target))
              : rt.x(fid, args, () => Reflect.apply(original, this, args));
          }
        : function () {
            hooks[fid].run(arguments, undefined, false, undefined, 0);
            return new.target ? Reflect.construct(original, arguments, new.target) : Reflect.apply(original, this, arguments);
          };
      try {
        Object.defineProperty(wrapper, 'name', { value: original.name });
        Object.defineProperty(wrapper, 'length', { value: original.length });
      } catch {
        // Cosmetic only.
      }
      return wrapper;
    }

    function isAsync(fn) {
      return Object.prototype.toString.call(fn) === '[object AsyncFunction]';
    }

    /** Safe projections of a value: they never call user code (no getters, no proxies, no toString). */
    function helpers(cfg) {
      const types = mod('util').types;
      const text = (v) => {
        switch (typeof v) {
          case 'string':
            return v.length > 64 ? v.slice(0, 64) : v;
          case 'number':
          case 'bigint':
          case 'boolean':
            return String(v);
          case 'undefined':
            return 'undefined';
          case 'symbol':
            return 'symbol';
          case 'function':
            return 'function';
          default:
            return v === null ? 'null' : isArray(v) ? 'array' : 'object';
        }
      };
      // Proxies first: Array.isArray throws on a revoked one.
      const isArray = (v) => typeof v === 'object' && v !== null && !types.isProxy(v) && Array.isArray(v);
      const type = (v) => (v === null ? 'null' : isArray(v) ? 'array' : typeof v);
      const length = (v) => (typeof v === 'string' || isArray(v) ? v.length : 0);
      const number = (v) => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : typeof v === 'bigint' ? Number(v) : 0);
      const message = (e) => {
        if (e !== null && typeof e === 'object' && !types.isProxy(e)) {
          const d = Object.getOwnPropertyDescriptor(e, 'message');
          if (d && 'value' in d && typeof d.value === 'string') return d.value.slice(0, 200);
        }
        return text(e);
      };
      /** A value down a path of own data properties; never a getter, never through a proxy. */
      const path = (v, steps) => {
        for (const step of steps) {
          if (v === null || (typeof v !== 'object' && typeof v !== 'function') || types.isProxy(v)) return undefined;
          const d = Object.getOwnPropertyDescriptor(v, step);
          if (!d || !('value' in d)) return undefined;
          v = d.value;
        }
        return v;
      };
      return {
        text,
        type,
        length,
        number,
        message,
        path,
        timeNs: () => Math.round((clock.timeOrigin + clock.now()) * 1e6),
        log2,
        pid: cfg.pid,
        comm: cfg.comm,
        host: cfg.host,
      };
    }
  }
});
