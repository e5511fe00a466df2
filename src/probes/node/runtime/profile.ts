import type { Profiler, Runtime as V8Runtime } from 'node:inspector';
import { OWN_URL, type InstallConfig, type ProbeReport } from './contract.js';
import { enableCost, learnedWalk, post, stalled } from './debugger.js';
import { hooks } from './hooks.js';
import { clock, mod, type RuntimeSession } from './state.js';
import { reserve, type AddProbe, type HandlerFor } from './wrappers.js';

/** A session's CPU profile of this thread: one event per sample, its stack as the probe's args[0]. */

/** Fay's own work in a CPU profile's stack (see ownWork). */
const OWN_WORK = '(fay)';

/**
 * Starts the session's profiler, through an inspector session of its own: two queries' profiles at
 * once each get every sample, at their own rates. It needs no debugger. Starting it walks the heap
 * for the code there is (as turning the debugger on does): estimated first alike, and not started
 * over the query's --max-pause.
 */
export async function startProfile(session: RuntimeSession, cfg: InstallConfig, handlerFor: HandlerFor, addProbe: AddProbe, report: ProbeReport[]): Promise<void> {
  const { profile } = cfg;
  if (!profile) return;
  const cost = enableCost();
  if (cost.ms > cfg.maxPauseMs && cfg.maxPauseMs > 0) {
    report.push({
      name: profile.probe,
      probed: false,
      reason: `starting the CPU profiler could stop the process for ~${cost.ms} ms (a ${cost.heapMb} MB heap), over the --max-pause of ${cfg.maxPauseMs} ms`,
    });
    return;
  }
  const fid = reserve(1);
  addProbe(fid, profile.probe, false, handlerFor(profile.probe));
  const inspector = new (mod<typeof import('node:inspector')>('inspector').Session)();
  inspector.connect();
  session.profile = { fid, inspector };
  const started = clock.now();
  await post(inspector, 'Profiler.enable');
  await post(inspector, 'Profiler.setSamplingInterval', { interval: Math.max(1, Math.round(1e6 / profile.hz)) });
  await post(inspector, 'Profiler.start');
  const ms = clock.now() - started;
  stalled('starting the CPU profiler', ms);
  learnedWalk(cost.ms, ms);
  report.push({ name: profile.probe, probed: true });
}

/** Feeds the profile of the period to its probe, one event per sample, and starts the next one. */
export async function samples(session: RuntimeSession): Promise<void> {
  if (!session.profile || session.closed) return;
  const { inspector } = session.profile;
  const { profile } = await post<{ profile?: Profiler.Profile }>(inspector, 'Profiler.stop');
  if (!session.closed) await post(inspector, 'Profiler.start');
  const { run } = hooks[session.profile.fid]!;
  if (!profile) return;
  const parent = new Map<number, number>();
  const byId = new Map<number, Profiler.ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const stacks = new Map<number, string>();
  const stackOf = (id: number) => {
    let stack = stacks.get(id);
    if (stack === undefined) {
      const frames: V8Runtime.CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const frame = byId.get(at)!.callFrame;
        if (frame.functionName !== '(root)') frames.push(frame);
      }
      stack = ownWork(frames).join('\n');
      stacks.set(id, stack);
    }
    return stack;
  };
  for (const id of profile.samples ?? []) run([stackOf(id)], undefined, false, undefined, 0);
}

/**
 * A profile's frame as a stack line: V8's name of its function, and where the function is (its
 * script's URL, line and column, tab-separated), which the agent turns into the name a js: probe
 * gives it and the script's short name (the agent's frames.ts). A frame with no script, (idle) or
 * (garbage collector), is its name alone.
 */
function frameName(frame: V8Runtime.CallFrame): string {
  return frame.url ? `${frame.functionName}\t${frame.url}\t${frame.lineNumber}\t${frame.columnNumber}` : frame.functionName || '(anonymous)';
}

/**
 * A stack's lines (innermost frame first), Fay's own work in it as one line, "(fay)": where the
 * innermost of Fay's frames has only Node's internals and native code above it (its hooks, its
 * flushes, this very profile's reading), those and the run of Fay's frames under them. The
 * application's code that Fay calls (a wrapper calls the original) stays as it is.
 */
function ownWork(frames: readonly V8Runtime.CallFrame[]): string[] {
  const first = frames.findIndex((f) => f.url === OWN_URL);
  if (first < 0 || frames.slice(0, first).some((f) => f.scriptId !== '0' && !f.url.startsWith('node:'))) return frames.map(frameName);
  let last = first;
  while (last + 1 < frames.length && frames[last + 1]!.url === OWN_URL) last++;
  return [OWN_WORK, ...frames.slice(last + 1).map(frameName)];
}
