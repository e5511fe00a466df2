import type { QueryMessage } from '../cluster/cluster-stage.js';

/**
 * What the page and `fay web` say to each other over the WebSocket (/socket), as JSON text
 * frames. Types only: the page imports them too; the server checks what it receives
 * (web/session.ts). `id` is the page's name for one query (or one completion, one explain).
 */

export type PageMessage =
  /** Runs a query; `everyMs` is fay query's --every. */
  | { readonly type: 'run'; readonly id: string; readonly query: string; readonly everyMs?: number }
  | { readonly type: 'stop'; readonly id: string }
  /** Completions for the query text up to the cursor. */
  | { readonly type: 'complete'; readonly id: string; readonly text: string }
  | { readonly type: 'explain'; readonly id: string; readonly query: string }
  /** The agents and what runs and stands on them (fay ps as a page). */
  | { readonly type: 'cluster'; readonly id: string }
  /** Stops a query of the cluster by its id (fay stop), whoever started it. */
  | { readonly type: 'stop-query'; readonly id: string; readonly query: string };

/** What the cluster view shows: the agents heard, and the queries they run or keep standing. */
export interface ClusterView {
  /** Why there is nothing to show, if there is not (no agent runs on this machine). */
  readonly note?: string;
  readonly agents: readonly { readonly host: string; readonly version: string; readonly kernel: string; readonly heardMsAgo: number; readonly queries: number }[];
  readonly queries: readonly {
    readonly id: string;
    readonly state: 'running' | 'standing';
    readonly hosts: readonly string[];
    readonly text: string;
    readonly client: string;
    readonly startedNs: number;
    readonly log?: string;
    readonly rows?: number;
    readonly bytes?: number;
  }[];
}

/** A user's mistake as the page shows it: the message, what to do, and where in the query (a caret). */
export interface PageError {
  readonly message: string;
  readonly hint?: string;
  /** Offsets in the query text of what the error is about, for a query error. */
  readonly start?: number;
  readonly end?: number;
}

/**
 * What the server says. What it says of a running query (attached, its messages, its end or its
 * error) is numbered (`seq`, one count for the session): a page that reconnects gives the last
 * number it has, and the server sends what came after, once.
 */
export type ServerMessage =
  /** The first word on a socket: `session` to give when reconnecting; `resumed`: this socket took up a session the page had. */
  | { readonly type: 'hello'; readonly version: string; readonly cluster: string | undefined; readonly session: string; readonly resumed: boolean }
  | { readonly type: 'attached'; readonly id: string; readonly seq: number }
  | { readonly type: 'message'; readonly id: string; readonly seq: number; readonly message: QueryMessage }
  | { readonly type: 'ended'; readonly id: string; readonly seq: number; readonly reason: string }
  /** `seq` when it is a running query's error; a completion's or an explanation's is not numbered. */
  | { readonly type: 'error'; readonly id: string; readonly seq?: number; readonly error: PageError }
  /** Candidates for the text's last `replace` characters. */
  | { readonly type: 'completions'; readonly id: string; readonly candidates: readonly string[]; readonly replace: number }
  | { readonly type: 'explained'; readonly id: string; readonly text: string }
  | { readonly type: 'cluster'; readonly id: string; readonly view: ClusterView }
  | { readonly type: 'stopped'; readonly id: string; readonly query: string }
  /** Numbered messages the page missed while away that the server no longer had (it keeps the last few megabytes). */
  | { readonly type: 'lost'; readonly messages: number };
