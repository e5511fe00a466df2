import type { Session as InspectorSession } from 'node:inspector';
import type { EditedFunction, InstallConfig, ProbeReport, ScriptEdit } from './contract.js';
import { breathe, debuggerIsOn, debuggerNowOff, debugging, enableCost, TooCostly } from './debugger.js';
import { costFigures, editCost, learnedEdit } from './edit-cost.js';
import { editLines, ON_A_LONG_LINE, outOfLongLines } from './edit-lines.js';
import { readSource } from './scripts.js';
import { editedScripts, NativePromise, scriptIds, scriptInfo, sessions, toJson, workerOnly, type EditEntry, type EditedScript, type LeftEdit, type RuntimeSession } from './state.js';
import { exportOf, reserve, wrapExport, type AddProbe, type HandlerFor } from './wrappers.js';

/**
 * Live edits: the agent's instrumentation applied to the program's scripts through the runtime's
 * own inspector session (so that they can be undone here even if the agent disappears), shared
 * between sessions, taken over from ended ones, and taken out again, each estimated first.
 */

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
