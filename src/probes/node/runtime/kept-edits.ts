import { exclusive } from './debugger.js';
import { revert } from './live-edit.js';
import { editedScripts, NativePromise, sessions, type LeftEdit, type RuntimeSession } from './state.js';

/**
 * Live edits kept after their query (--keep-edits), inert, for the next query on the same functions
 * to take over: taken out when their time is up, or by fay release, each as long as that stops the
 * process no longer than allowed.
 */

let sweepTimer: NodeJS.Timeout | undefined;

/** Takes out the kept edits whose time is up, once it is (a timer that does not keep the process alive). */
export function sweepLater(): void {
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
export function dropKept(until: number, limitMs?: number): Promise<{ functions: number; left: LeftEdit[] }> {
  const due = [...sessions.values()].filter((s) => s.keptUntil !== undefined && s.keptUntil <= until);
  for (const s of due) s.keptUntil = undefined;
  sweepLater();
  const count = (s: RuntimeSession) => [...editedScripts.values()].reduce((n, script) => n + (script.bySession.get(s.id)?.length ?? 0), 0);
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
          return { functions: before, left: [] as LeftEdit[] };
        });
    }),
  ).then((results) => ({ functions: results.reduce((n, r) => n + r.functions, 0), left: results.flatMap((r) => r.left) }));
}

/**
 * After a session's edits were taken out: gone, or, where taking one out would have stopped the
 * process too long, kept for good (inert: its probes are off) until fay release takes it out.
 */
export function settleReverted(session: RuntimeSession, left: LeftEdit[]): void {
  if (left.length === 0) {
    sessions.delete(session.id);
    return;
  }
  session.keptUntil = Infinity;
  session.stuck = left;
}
