import type { Session as InspectorSession } from 'node:inspector';
import type { Insertion } from '../functions.js';
import type { EditedFunction } from './contract.js';
import { post } from './debugger.js';
import { clock, NativePromise, noop, toJson, type EditedScript } from './state.js';

/**
 * A script's source set to its pristine text plus insertion lists, as V8's live edit will take
 * them: its lines (V8 diffs a run of changed lines token by token only below LONG_LINE
 * characters), an edit in two steps where changed lines run together that long, and the functions
 * it would leave unedited.
 */

/** V8's live edit diffs a run of changed lines token by token only below this many characters. */
const LONG_LINE = 800;
export const ON_A_LONG_LINE = `it starts or ends on a line of ${LONG_LINE} characters or more (minified code?), whose functions V8's live edit leaves as they were`;

/**
 * V8 diffs an edited script line by line, then each run of changed lines token by token, but
 * only a run under LONG_LINE characters (before and after the edit): a longer run is one change,
 * and every function starting or ending in it silently keeps its old code. Insertions never add
 * a line, so an edit changes the lines its insertions go in. editLines() makes each changed line
 * a run of its own where needed, which leaves one case out: a function starting or ending on a
 * changed line that long by itself (minified code). Returns the functions V8 will edit, and those left out.
 */
export function outOfLongLines(script: EditedScript, functions: readonly EditedFunction[]): { kept: EditedFunction[]; cut: EditedFunction[] } {
  const { lineOf, lengths } = lineInfo(script, script.applied);
  const added = tally(lineOf, functions.map((f) => f.insertions));
  const long = (line: number) => added.has(line) && lengths(line) + added.get(line)! >= LONG_LINE;
  const cut: EditedFunction[] = [];
  const kept = functions.filter((f) => {
    const broken = long(lineOf(f.start)) || long(lineOf(Math.max(f.start, f.end - 1)));
    if (broken) cut.push(f);
    return !broken;
  });
  return { kept, cut };
}

/** A script's lines: the line of an offset, and a line's length with the given insertions in it. */
function lineInfo(script: EditedScript, lists: readonly (readonly Insertion[])[]): { lineOf: (offset: number) => number; lengths: (line: number) => number } {
  const source = script.pristine ?? '';
  if (script.lineStarts === undefined) {
    script.lineStarts = [0];
    for (let at = source.indexOf('\n'); at >= 0; at = source.indexOf('\n', at + 1)) script.lineStarts.push(at + 1);
  }
  const starts = script.lineStarts;
  const lineOf = (offset: number) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  };
  const inserted = tally(lineOf, lists);
  const lengths = (line: number) => (line + 1 < starts.length ? starts[line + 1]! : source.length + 1) - starts[line]! + (inserted.get(line) ?? 0);
  return { lineOf, lengths };
}

/** line → characters the lists insert in it. */
function tally(lineOf: (offset: number) => number, lists: readonly (readonly Insertion[])[]): Map<number, number> {
  const chars = new Map<number, number>();
  for (const list of lists) {
    for (const i of list) {
      const line = lineOf(i.offset);
      chars.set(line, (chars.get(line) ?? 0) + i.text.length);
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
export async function editLines(inspector: InspectorSession, scriptId: string, script: EditedScript, to: Insertion[][], stopped: (ms: number) => void = noop): Promise<string | undefined> {
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
    run = k > 0 && lines[k] === lines[k - 1]! + 1 ? run : 0;
    run += lengths(lines[k]!);
    longRun = run >= LONG_LINE && k > 0 && lines[k] === lines[k - 1]! + 1;
  }
  const timed = async (lists: Insertion[][]) => {
    const started = clock.now();
    const refused = await setSource(inspector, scriptId, script, lists);
    stopped(clock.now() - started);
    if (refused === undefined) script.applied = lists;
    return refused;
  };
  if (!longRun) return timed(to);
  // Odd lines first: what goes in on them goes in, what goes out of them goes out.
  const odd = (i: Insertion) => lineOf(i.offset) % 2 === 1;
  const halfway = [...after].filter((i) => before.has(i) || odd(i)).concat([...before].filter((i) => !after.has(i) && !odd(i)));
  const refused = await timed([halfway]);
  if (refused !== undefined) return refused;
  await new NativePromise((resolve) => setImmediate(resolve));
  const last = await timed(to);
  // Back to where it was, rather than halfway with nobody knowing what is in it.
  if (last !== undefined) await timed(from);
  return last;
}

/**
 * Sets a script to its pristine source plus insertions; undefined when V8 took it, else why not.
 * At one offset openers come first, then one copy of each value, then closers, so wrappings nest,
 * then statements that come after them all.
 */
async function setSource(inspector: InspectorSession, scriptId: string, script: EditedScript, insertionLists: readonly (readonly Insertion[])[]): Promise<string | undefined> {
  const atOffset = new Map<number, Record<Insertion['place'], string[]>>();
  for (const list of insertionLists) {
    for (const insertion of list) {
      let at = atOffset.get(insertion.offset);
      if (!at) atOffset.set(insertion.offset, (at = { open: [], value: [], close: [], after: [] }));
      if (insertion.place !== 'value' || !at.value.includes(insertion.text)) at[insertion.place].push(insertion.text);
    }
  }
  const offsets = [...atOffset.keys()].sort((a, b) => a - b);
  const pristine = script.pristine ?? '';
  const parts: string[] = [];
  let from = 0;
  for (const offset of offsets) {
    const at = atOffset.get(offset)!;
    parts.push(pristine.slice(from, offset), ...at.open, ...at.value, ...at.close, ...at.after);
    from = offset;
  }
  parts.push(pristine.slice(from));
  const result = await post<{ status?: string; error?: undefined }>(inspector, 'Debugger.setScriptSource', { scriptId, scriptSource: parts.join('') }).catch((e: unknown) => ({ error: e, status: undefined }));
  if (result.error === undefined && (!result.status || result.status === 'Ok')) return undefined;
  return result.error !== undefined ? (result.error instanceof Error ? result.error.message : (toJson(result.error) ?? 'an error')) : result.status;
}
