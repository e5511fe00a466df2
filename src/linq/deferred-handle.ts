import type { QueryMessage } from '../cluster/cluster-stage.js';
import type { QueryHandle, StopReason } from '../cluster/query-handle.js';

/**
 * A handle for a run that starts after some asynchronous work (a history query first learns which
 * logs the agents keep): the same promises and messages as the run's, once it has started. If it
 * cannot start, `attached`, `ended` and the messages reject with why; a caller who awaits none of
 * them is not left with an unhandled rejection.
 */
export function deferredHandle(starting: Promise<QueryHandle>): QueryHandle {
  const attached = starting.then((run) => run.attached);
  const ended = starting.then((run) => run.ended);
  attached.catch(() => undefined);
  ended.catch(() => undefined);
  return {
    attached,
    ended,
    async stop(reason?: StopReason): Promise<void> {
      const run = await starting.catch(() => undefined);
      await run?.stop(reason);
    },
    async *[Symbol.asyncIterator](): AsyncIterator<QueryMessage> {
      yield* await starting;
    },
  };
}
