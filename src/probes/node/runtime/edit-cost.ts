import { breathe, heapFigures, inspectorSession, pauses, post, stalled } from './debugger.js';
import { clock, type EditedScript } from './state.js';

/** An edit's estimated stop (ms), and the figures behind it. */
export interface EditCost {
  ms: number;
  /** How many of the script's functions are compiled, where that was counted. */
  compiled: number | undefined;
  heapMb: number;
  scriptMb: number;
  functions: number;
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
export async function editCost(script: EditedScript, limitMs: number): Promise<EditCost> {
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
export function costFigures(cost: EditCost): string {
  const size = cost.scriptMb >= 1 ? `${cost.scriptMb.toFixed(1)} MB` : `${Math.max(1, Math.round(cost.scriptMb * 1024))} KB`;
  const compiled = cost.compiled === undefined ? '' : ` (${cost.compiled} compiled)`;
  return `a ${size} script of ${cost.functions} functions${compiled} in a ${cost.heapMb} MB heap`;
}

/**
 * How many of a script's functions have been compiled (they have bytecode, so an edit discards
 * their code): the inspector's best-effort coverage, which walks the heap once. One walk answers
 * for every script: it is kept for a second.
 */
async function compiledFunctionsOf(url: string): Promise<number> {
  if (pauses.coverage === undefined || clock.now() - pauses.coverage.at > 1000) {
    const inspector = inspectorSession();
    const started = clock.now();
    await post(inspector, 'Profiler.enable');
    const { result } = await post<{ result?: { url: string; functions: { ranges: { count: number }[] }[] }[] }>(inspector, 'Profiler.getBestEffortCoverage');
    await post(inspector, 'Profiler.disable');
    stalled('counting the compiled functions (a walk of the heap)', clock.now() - started);
    const byUrl = new Map<string, number>();
    for (const entry of result || []) byUrl.set(entry.url, entry.functions.filter((f) => (f.ranges[0]?.count ?? 0) > 0).length);
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
export function learnedEdit(estimateMs: number, ms: number): void {
  if (!(estimateMs > 0) || !(ms >= 0)) return;
  pauses.edits = Math.max(0.02, (pauses.edits * (ms * 1.25)) / estimateMs);
}

