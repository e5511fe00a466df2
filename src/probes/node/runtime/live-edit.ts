import type { Session as InspectorSession } from 'node:inspector';
import type { Insertion } from '../functions.js';
import type { EditedFunction, InstallConfig, ProbeReport, ScriptEdit } from './contract.js';
import { breathe, debuggerIsOn, debuggerNowOff, debugging, enableCost, post, TooCostly } from './debugger.js';
import { costFigures, editCost, learnedEdit } from './edit-cost.js';
import { readSource } from './scripts.js';
import { clock, editedScripts, NativePromise, noop, scriptIds, scriptInfo, sessions, toJson, workerOnly, type EditEntry, type EditedScript, type LeftEdit, type RuntimeSession } from './state.js';
import { exportOf, reserve, wrapExport, type AddProbe, type HandlerFor } from './wrappers.js';

/**
 * Live edits: the agent's instrumentation applied to the program's scripts through the runtime's
 * own inspector session (so that they can be undone here even if the agent disappears), shared
 * between sessions, taken over from ended ones, and taken out again, each estimated first.
 */

/** V8's live edit diffs a run of changed lines token by token only below this many characters. */
const LONG_LINE = 800;
const ON_A_LONG_LINE = `it starts or ends on a line of ${LONG_LINE} characters or more (minified code?), whose functions V8's live edit leaves as they were`;

/** What identifies a function's instrumentation (before its probe id is written in): a kept edit with the same key is taken over as it is. */
function keyOf(f: EditedFunction): string {
  return toJson([f.start, f.end, f.async, f.awaits, f.insertions]);
}

/**
 * Applies the agent's live edits, all at once or, when V8 refuses, function by function. The agent
 * computed them on the pristine source; the script gets them on top of other sessions' edits.
 * A function that an ended session's kept edit instruments the same way is taken over as it is:
 * where every function is, the script is not edited, and the process does not stop at all.
 */
export async function applyEdits(cfg: InstallConfig, session: RuntimeSession, report: ProbeReport[], handlerFor: HandlerFor, addProbe: AddProbe): Promise<void> {
  // The debugger goes on only where an edit needs it (taking a kept edit over does not), and only
  // where turning it on is within the limit: else each function gets a wrapper on its export, if any.
  let inspector: InspectorSession | undefined;
  let offLimits: string | undefined;
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
  const wrapOrReport = (edit: ScriptEdit, f: EditedFunction, why: string | undefined, source?: string) => {
    const text = f.text ?? source?.slice(f.start, f.end);
    const found = text === undefined ? undefined : exportOf(edit.url, text);
    const wrapped = found && found.refusal === undefined ? wrapExport(found, f, why ?? '', session, handlerFor, addProbe) : undefined;
    report.push(wrapped ?? { name: f.name, probed: false, reason: found?.refusal !== undefined ? `${why}; ${found.refusal}` : (why ?? '') });
  };
  try {
    for (const edit of cfg.edits) {
      let scriptId = scriptIds.get(edit.url);
      // A script this runtime's debugger has not seen yet (it has not been on here since the script
      // loaded, as in a new worker; or it could not be turned on to read the sources): it tells.
      if (scriptId === undefined && !debuggerIsOn() && !workerOnly.has(edit.url)) {
        if (!(await withDebugger())) {
          if (!cfg.relay) for (const f of edit.functions) wrapOrReport(edit, f, f.unedited ?? offLimits);
          continue;
        }
        scriptId = scriptIds.get(edit.url);
      }
      // A script only workers have (or, in a worker, only other threads): theirs to report.
      if (scriptId === undefined && (cfg.relay || workerOnly.has(edit.url))) continue;
      // Its source is read here only once an edit of it is decided on: reading a large script is a stop of its own.
      const script: EditedScript | undefined =
        scriptId === undefined
          ? undefined
          : editedScripts.get(scriptId) ?? {
              url: edit.url,
              chars: scriptInfo.get(edit.url)?.length ?? edit.length,
              pristine: undefined,
              functions: edit.functionCount || 0,
              bySession: new Map(),
              applied: [],
            };
      const changed = (functions: readonly EditedFunction[]) => {
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
        script.pristine = await readSource(scriptId!);
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
      const fids = new Map<EditedFunction, number>();
      for (const f of fresh) {
        const fid = reserve(1);
        fids.set(f, fid);
        f.insertions = f.insertions.map((i) => ({ offset: i.offset, place: i.place, text: i.text.split('@fid').join(String(fid)) }));
      }
      // Each edit stops this thread for as long as V8 walks the heap: the longest stop is reported, and
      // when V8 refuses the edit and it is retried function by function, the program runs in between.
      // Kept edits not taken over go out with the same edit: the process stops no longer for them.
      let longest = 0;
      const others = [...liveEntries(script), ...adopted.map((a) => a.entry)].map((e) => e.insertions);
      const apply = async (some: readonly EditedFunction[]) => {
        // Each edit is a stop of its own: the program runs before it.
        await breathe();
        return editLines(inspector!, scriptId!, script, [...others, ...some.map((f) => f.insertions)], (ms) => {
          longest = Math.max(longest, ms);
        });
      };
      const programRuns = () => new NativePromise((resolve) => setImmediate(resolve));
      let accepted = fresh;
      if (fresh.length > 0 && (await apply(accepted)) !== undefined) {
        accepted = [];
        for (const f of fresh) {
          await programRuns();
          const refused: string | undefined = await apply([...accepted, f]);
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
      const mine = [...adopted.map((a) => a.entry), ...accepted.map((f) => ({ fid: fids.get(f)!, key: taken.keys.get(f)!, insertions: f.insertions }))];
      settleOwners(scriptId!, script);
      if (mine.length > 0) {
        script.bySession.set(session.id, mine);
        editedScripts.set(scriptId!, script);
        session.edits.push(scriptId!);
      }
      // V8 walks the whole heap for each live edit (0.5–1.5 ms per MB): said when that is long.
      const paused = Math.round(longest);
      for (const { f, entry } of adopted) {
        addProbe(entry.fid, f.name, f.async, handlerFor(f.name), f.awaits);
        report.push({ name: f.name, probed: true });
      }
      accepted.forEach((f, i) => {
        addProbe(fids.get(f)!, f.name, f.async, handlerFor(f.name), f.awaits);
        let note: string | undefined;
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
function takeOver(
  script: EditedScript,
  functions: readonly EditedFunction[],
): { adopted: { f: EditedFunction; entry: EditEntry }[]; fresh: EditedFunction[]; keys: Map<EditedFunction, string> } {
  const kept = [...script.bySession].flatMap(([id, entries]) => (sessions.get(id)?.closed ? entries : []));
  const adopted: { f: EditedFunction; entry: EditEntry }[] = [];
  const fresh: EditedFunction[] = [];
  const keys = new Map<EditedFunction, string>();
  for (const f of functions) {
    const key = keyOf(f);
    keys.set(f, key);
    const at = kept.findIndex((entry) => entry.key === key);
    if (at < 0) fresh.push(f);
    else adopted.push({ f, entry: kept.splice(at, 1)[0]! });
  }
  for (const { entry } of adopted) {
    for (const [id, entries] of script.bySession) {
      if (!entries.includes(entry)) continue;
      script.bySession.set(id, entries.filter((e) => e !== entry));
      const owner = sessions.get(id);
      if (owner) owner.fids = owner.fids.filter((fid) => fid !== entry.fid);
    }
  }
  return { adopted, fresh, keys };
}

/**
 * After a script was edited (or not) and kept entries were taken over: the ended sessions keep
 * only the entries still in its source, and one with none left anywhere is gone.
 */
function settleOwners(scriptId: string, script: EditedScript): void {
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
function outOfLongLines(script: EditedScript, functions: readonly EditedFunction[]): { kept: EditedFunction[]; cut: EditedFunction[] } {
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
async function editLines(inspector: InspectorSession, scriptId: string, script: EditedScript, to: Insertion[][], stopped: (ms: number) => void = noop): Promise<string | undefined> {
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
 * Takes a session's edits out of its scripts, leaving other sessions' in place; but not where that
 * would stop the process longer than `limitMs` (see editCost): those stay in, inert, and are
 * returned ({ url, ms, limitMs }). A limit of Infinity takes everything out.
 */
export async function revert(session: RuntimeSession, limitMs = Infinity): Promise<LeftEdit[]> {
  const left: LeftEdit[] = [];
  let inspector: InspectorSession;
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
function liveEntries(script: EditedScript): EditEntry[] {
  return [...script.bySession].flatMap(([id, entries]) => (sessions.get(id)?.closed ? [] : entries));
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
