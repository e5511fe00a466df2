import { exclusive, post } from './debugger.js';
import { DETACHED, hooks } from './hooks.js';
import { settleReverted, sweepLater } from './kept-edits.js';
import { revert } from './live-edit.js';
import { send } from './outbox.js';
import { filePath, mod, NativePromise, probes, sessions, type LeftEdit, type RuntimeSession } from './state.js';
import { closeInWorkers } from './workers.js';

/**
 * Switches a session's probes off at once (wrappers and channels out, the profiler stopped), and
 * resolves once its edits are out of the source too, or kept (--keep-edits), or, where taking them
 * out would stop the process too long, left in, inert, and said. Never rejects: nothing in the
 * target may be left with an unhandled rejection.
 */
export function detach(session: RuntimeSession, reason: string): Promise<void> {
  const cfg = session.config;
  if (session.closed) return NativePromise.resolve();
  session.closed = true;
  // From here every probe of the session passes straight through; undoing the edits can come after.
  for (const fid of session.fids) {
    probes[fid] = null;
    hooks[fid] = DETACHED;
  }
  if (reason === 'detach') send(session, { type: 'detached' });
  closeInWorkers(session);
  session.relay?.close();
  if (session.onExit) process.removeListener('exit', session.onExit);
  const dc = mod<typeof import('node:diagnostics_channel')>('diagnostics_channel');
  for (const c of session.channels) dc.unsubscribe(c.name, c.listener);
  if (session.profile) {
    const { inspector } = session.profile;
    void post(inspector, 'Profiler.stop')
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
      mod<typeof import('node:module')>('module').syncBuiltinESMExports();
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
    return NativePromise.resolve();
  }
  const undo = session.edits.length > 0 ? exclusive(() => revert(session, session.maxPauseMs)) : NativePromise.resolve([] as LeftEdit[]);
  // Never rejects: nothing in the target may be left with an unhandled rejection.
  return undo
    .then((left) => {
      settleReverted(session, left);
      for (const l of left) {
        send(session, {
          type: 'notice',
          message:
            `the live edit of ${filePath(l.url) ?? l.url} stays in the process, inert (its probes are off: ~2 ns a call): taking it out ` +
            `would stop the process for ~${l.ms} ms (${l.figures}), over the --max-pause of ${l.limitMs} ms; ` +
            `fay release "js:pid=${cfg.pid}" --max-pause ${Math.ceil(l.ms / 1000)}s takes it out`,
        });
      }
    })
    .catch(() => void sessions.delete(session.id))
    .finally(() => {
      if (reason === 'detach') session.socket?.end();
    });
}
