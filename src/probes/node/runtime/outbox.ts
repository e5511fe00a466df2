import { hooks, DETACHED } from './hooks.js';
import { mod, toJson, type RuntimeSession } from './state.js';

/** A message of a session to the agent: on its socket, or (in a worker) to the main thread's session, which relays. */
export function send(session: RuntimeSession, message: object): void {
  if (session.relay) session.relay.postMessage({ ...message, thread: mod<typeof import('node:worker_threads')>('worker_threads').threadId });
  else if (session.socket && !session.socket.destroyed) session.socket.write(`${toJson(message)}\n`);
}

/** The session's probes pass straight through from now on (their state stays, to be read). */
export function probesOff(session: RuntimeSession): void {
  for (const fid of session.fids) hooks[fid] = DETACHED;
}
