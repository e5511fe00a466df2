import { z } from 'zod';
import { UsageError } from '../../errors.js';

/**
 * The Node.js provider's own settings of a query: what live-editing and per-call handling may cost a
 * traced process. They travel to agents as the provider's entry in the query's provider options
 * (opaque to the plan, the agent and the bus) and are checked here, on the client and on each agent.
 */
export const NODE_BOUNDS = {
  /** How long a live edit may stop a process, and from how long one is said: at most a minute. */
  maxPauseMs: 60_000,
  /** How long a process may be asked to keep a query's live edits after it: a day. */
  maxKeepEditsMs: 86_400_000,
  maxCallsPerSecond: 1_000_000_000,
} as const;

export const NodeOptions = z
  .object({
    /** Calls a second one JavaScript probe handles in full in one process; above it, it handles one call in N and says so. */
    maxCallsPerSecond: z.number().int().positive().max(NODE_BOUNDS.maxCallsPerSecond).default(2_000_000),
    /**
     * How long one live edit may stop a Node.js process (ms), as estimated from its heap before
     * editing (V8 walks the heap, with the process stopped); functions whose script would take
     * longer are not probed, and the query says why.
     */
    maxEditPauseMs: z.number().nonnegative().max(NODE_BOUNDS.maxPauseMs).default(250),
    /** A live edit that stopped a Node.js process this long (ms) or longer is said in a notice (a big heap makes it long). */
    editPauseNoticeMs: z.number().nonnegative().max(NODE_BOUNDS.maxPauseMs).default(100),
    /**
     * How long a Node.js process keeps the query's live edits after it (ms), their probes off, so that
     * the next query probing the same functions the same way takes them over without editing (and
     * stopping the process) again; 0: they come out when the query ends, and its stop waits for that.
     */
    keepEditsMs: z.number().nonnegative().max(NODE_BOUNDS.maxKeepEditsMs).default(60_000),
  })
  .strict();
export type NodeOptions = z.output<typeof NodeOptions>;

/** The settings a query that says nothing gets. */
export const NODE_DEFAULTS: NodeOptions = NodeOptions.parse({});

/** A query's Node.js settings checked, defaults filled in; a setting out of range is the user's mistake, said as one. */
export function nodeOptions(given: unknown): NodeOptions {
  const checked = NodeOptions.safeParse(given ?? {});
  if (checked.success) return checked.data;
  const issue = checked.error.issues[0]!;
  const where = issue.path.length > 0 ? `node.${issue.path.join('.')}` : 'node';
  throw new UsageError(`the query's setting ${where} is out of range: ${issue.message}`);
}
