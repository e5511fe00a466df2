import { RUNTIME_VERSION, type AttachStalls, type HandlerFactory, type InstallConfig, type ProbeHooks, type ProbeReport } from './contract.js';
import { linkToAgent, type AgentLinkConfig } from './agent-link.js';
import { exclusive, idle, pauses, watchAttach } from './debugger.js';
import { hooks } from './hooks.js';
import { dropKept } from './kept-edits.js';
import { describeScripts, readSource, readSources, type ScriptDescription } from './scripts.js';
import { openSession } from './session.js';
import { editedScripts, filePath, isMainThread, NativePromise, scriptIds, sessions, toJson, type LeftEdit, type RuntimeSession } from './state.js';
import { inWorker, setRuntimeSource, unwatchWorkers, watchWorkers, workers, workerSources } from './workers.js';
import { aroundCall } from './wrappers.js';

/**
 * Fay's runtime inside a traced Node.js process (and each of its worker threads): what the agent
 * evaluates through the inspector, bundled from these modules into one function expression (see
 * runtime-script.ts), with a JSON config and a handler factory that its code generator produced
 * from the checked plan; no text a user wrote is evaluated. It stands alone: no imports, only
 * globals and process.getBuiltinModule. One runtime per thread, as globalThis.__fay$.
 */

/** What `__fay$` offers the agent (and, in a worker, the main thread's runtime). */
export interface Runtime {
  readonly version: number;
  /** fid → the hooks live-edited code calls. */
  readonly h: ProbeHooks[];
  /** Entry and return around a call (wrappers). */
  readonly x: typeof aroundCall;
  readonly sessions: Map<string, RuntimeSession>;
  sources(filters: readonly (string | null)[], link?: AgentLinkConfig): Promise<Record<string, string>>;
  scriptsOf(filters: readonly (string | null)[], link?: AgentLinkConfig, limitMs?: number): Promise<Record<string, ScriptDescription>>;
  source(url: string): Promise<string | null>;
  attachStalls(): AttachStalls;
  scripts(): string[];
  open(cfg: InstallConfig, factory: HandlerFactory): Promise<ProbeReport[]>;
  dropKeptEdits(limitMs?: number | null): Promise<{ functions: number; left: LeftEdit[] }>;
}

type Global = { __fay$?: Partial<Runtime> & { version?: number; sessions?: unknown; dropKeptEdits?: unknown } };

/**
 * Installs this runtime (unless this version is there), then opens a session with `config`; with a
 * null config, answers the version or, as a string, why it cannot be installed. `self` is the
 * function the agent evaluated, whose text a worker evaluates to get the same runtime.
 */
export function install(self: { toString(): string }, config: InstallConfig | null, makeHandlers: HandlerFactory): unknown {
  setRuntimeSource(self.toString());
  const held = (globalThis as Global).__fay$;
  // Another version's kept edits (inert) come out first: they call its hooks.
  if (held && held.version !== RUNTIME_VERSION && typeof held.dropKeptEdits === 'function') {
    return (held.dropKeptEdits as () => Promise<unknown>)().then(() => setUp(config, makeHandlers));
  }
  return setUp(config, makeHandlers);
}

function setUp(config: InstallConfig | null, makeHandlers: HandlerFactory): unknown {
  const global = globalThis as Global;
  let runtime = global.__fay$;
  if (!runtime || runtime.version !== RUNTIME_VERSION) {
    // Code that another runtime's sessions instrumented calls __fay$.h until their edits are out again
    // (a session leaves the map only then): it must keep finding that runtime.
    if (runtime && runtime.sessions instanceof Map && runtime.sessions.size > 0) {
      // Said, not thrown: the agent reports it as a reason, not as a failure of its own.
      const refused = `this process holds live probes of another Fay version (runtime ${runtime.version})`;
      if (config === null) return refused;
      throw new Error(refused);
    }
    runtime = createRuntime();
    Object.defineProperty(global, '__fay$', { value: runtime, configurable: true, enumerable: false, writable: false });
  }
  // With a null config, installing is all: the version, or (above) why not.
  return config === null ? runtime.version : (runtime as Runtime).open(config, makeHandlers);
}

function createRuntime(): Runtime {
  return {
    version: RUNTIME_VERSION,
    h: hooks,
    x: aroundCall,
    sessions,
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
      if (filters.length === 0) return NativePromise.resolve({});
      const own = exclusive(() => readSources(filters));
      // The main thread's runtime also reads what only its workers have.
      return isMainThread() ? own.then((sources) => workerSources(filters, sources)) : own;
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
      return isMainThread() ? own.then((scripts) => workerSources(filters, scripts)) : own;
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
     * How the attach under way stopped the program, and ends watching it: the runtime's own stops,
     * longest first; the garbage collections meanwhile, ms each; the longest the event loop was
     * held up, whatever held it.
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
      return [...scriptIds.keys()].map(filePath).filter((path): path is string => path !== undefined);
    },
    open: (cfg, factory) =>
      openSession(cfg, factory).catch(async (error: unknown) => {
        // What was installed before the failure comes out again before the agent hears of it.
        const session = sessions.get(cfg.session);
        if (session && !session.socket) await session.detach('its probes could not all be installed');
        throw error;
      }),
    /**
     * Takes every kept edit out now, the workers' too (fay release; and a runtime of another version,
     * before it replaces this one), each as long as taking it out stops the process no longer than
     * `limitMs` (none: no limit): how many functions' edits went (one per thread it was in), and the
     * scripts whose edits stay, with what taking them out would cost.
     */
    async dropKeptEdits(limitMs) {
      const limit = typeof limitMs === 'number' && limitMs >= 0 ? limitMs : Infinity;
      const here = await dropKept(Infinity, limit);
      if (!isMainThread()) return here;
      await watchWorkers();
      try {
        const there = await NativePromise.all(
          workers().map((worker) =>
            inWorker<number | { functions?: number; left?: LeftEdit[] }>(
              worker.sessionId,
              `globalThis.__fay$?.dropKeptEdits ? globalThis.__fay$.dropKeptEdits(${toJson(Number.isFinite(limit) ? limit : null)}) : 0`,
            ).catch(() => 0),
          ),
        );
        // A worker's runtime of an older version answers with a number.
        const functions = there.reduce<number>((n, k) => n + (typeof k === 'number' ? k : Number(k?.functions) || 0), here.functions);
        const left = [...here.left, ...there.flatMap((k) => (typeof k === 'object' && Array.isArray(k?.left) ? k.left : []))];
        return { functions, left };
      } finally {
        unwatchWorkers();
      }
    },
  };
}
