import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { QueryHandle, RunOptions } from '../cluster/query-handle.js';
import { FayError, QueryError } from '../errors.js';
import type { ClusterView, PageError, PageMessage, ServerMessage } from './protocol.js';

/** How a page's queries run: on this machine, or on a cluster (the same as fay query's). */
export interface WebRunner {
  start(query: string, options: RunOptions): Promise<QueryHandle>;
  explain(query: string): string;
  /** Completions for the text up to the cursor: candidates, and how many characters of it they replace. */
  complete(text: string): Promise<{ candidates: string[]; replace: number }>;
  /** The agents and their queries. */
  cluster(): Promise<ClusterView>;
  /** Stops a query of the cluster (fay stop). */
  stopQuery(queryId: string): Promise<void>;
}

const id = z.string().min(1).max(64);
const PageMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), id, query: z.string().max(64 * 1024), everyMs: z.number().int().min(1).max(86_400_000).optional() }),
  z.object({ type: z.literal('stop'), id }),
  z.object({ type: z.literal('complete'), id, text: z.string().max(64 * 1024) }),
  z.object({ type: z.literal('explain'), id, query: z.string().max(64 * 1024) }),
  z.object({ type: z.literal('cluster'), id }),
  z.object({ type: z.literal('stop-query'), id, query: z.string().regex(/^[0-9a-f]{1,64}$/) }),
]);

/** A query's mistake as the page shows it. */
function pageError(error: unknown): PageError {
  if (error instanceof QueryError) return { message: error.message, ...(error.hint !== undefined && { hint: error.hint }), start: error.span.start, end: error.span.end };
  if (error instanceof FayError) return { message: error.message, ...(error.hint !== undefined && { hint: error.hint }) };
  return { message: error instanceof Error ? error.message : String(error) };
}

/** How much of what a session said about its queries it keeps for a page that reconnects. */
const REPLAY_BYTES = 16 << 20;

/** A message about a running query, before it is numbered. */
type QueryWord = DistributiveOmit<Extract<ServerMessage, { type: 'attached' | 'message' | 'ended' | 'error' }>, 'seq'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * One page's queries and what they say. Its queries run while a socket of the page is attached,
 * and for a short while after one dropped (WebServer decides how long): what they say meanwhile
 * is kept (the last REPLAY_BYTES of it), numbered, and a page that reconnects gets what came
 * after the last number it has, once. When the session closes (the tab closed, or no page came
 * back), every query of it stops: probes come off. A bad message or a query's mistake is
 * answered, never thrown.
 */
export class WebSession {
  readonly id = randomBytes(12).toString('hex');
  private readonly queries = new Map<string, QueryHandle>();
  private closed = false;
  private socket: ((text: string) => void) | undefined;
  private seq = 0;
  /** The numbered messages kept, oldest first, as sent. */
  private readonly kept: { seq: number; text: string }[] = [];
  private keptBytes = 0;

  constructor(private readonly runner: WebRunner) {}

  /** A socket of the page: what it missed after `after` (the last numbered message it has) goes first. */
  attach(socket: (text: string) => void, after?: number): void {
    this.socket = socket;
    if (after === undefined) return;
    const first = this.kept[0]?.seq ?? this.seq + 1;
    const missing = Math.max(0, Math.min(first, this.seq + 1) - after - 1);
    if (missing > 0) this.send({ type: 'lost', messages: missing });
    for (const m of this.kept) if (m.seq > after) socket(m.text);
  }

  /** Its socket dropped: what its queries say is kept until a page attaches again. */
  detach(): void {
    this.socket = undefined;
  }

  get attached(): boolean {
    return this.socket !== undefined;
  }

  private send(message: ServerMessage): void {
    this.socket?.(JSON.stringify(message));
  }

  /** Numbers a message about a running query, keeps it, and sends it if a page is there. */
  private say(word: QueryWord): void {
    const text = JSON.stringify({ ...word, seq: ++this.seq });
    this.kept.push({ seq: this.seq, text });
    this.keptBytes += text.length;
    while (this.keptBytes > REPLAY_BYTES && this.kept.length > 1) this.keptBytes -= this.kept.shift()!.text.length;
    this.socket?.(text);
  }

  receive(text: string): void {
    let message: PageMessage;
    try {
      const parsed = PageMessageSchema.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
      message = parsed.data;
    } catch (error) {
      this.send({ type: 'error', id: '', error: { message: `a message the server does not read: ${(error as Error).message}` } });
      return;
    }
    switch (message.type) {
      case 'run':
        void this.run(message.id, message.query, message.everyMs === undefined ? {} : { everyMs: message.everyMs });
        return;
      case 'stop':
        void this.queries.get(message.id)?.stop();
        return;
      case 'complete':
        void this.runner.complete(message.text).then(
          ({ candidates, replace }) => this.send({ type: 'completions', id: message.id, candidates, replace }),
          (error: unknown) => this.send({ type: 'error', id: message.id, error: pageError(error) }),
        );
        return;
      case 'cluster':
        void this.runner.cluster().then(
          (view) => this.send({ type: 'cluster', id: message.id, view }),
          (error: unknown) => this.send({ type: 'error', id: message.id, error: pageError(error) }),
        );
        return;
      case 'stop-query':
        void this.runner.stopQuery(message.query).then(
          () => this.send({ type: 'stopped', id: message.id, query: message.query }),
          (error: unknown) => this.send({ type: 'error', id: message.id, error: pageError(error) }),
        );
        return;
      case 'explain':
        try {
          this.send({ type: 'explained', id: message.id, text: this.runner.explain(message.query) });
        } catch (error) {
          this.send({ type: 'error', id: message.id, error: pageError(error) });
        }
        return;
    }
  }

  private async run(id: string, query: string, options: RunOptions): Promise<void> {
    if (this.queries.has(id)) {
      this.say({ type: 'error', id, error: { message: `a query named ${id} runs already` } });
      return;
    }
    let handle: QueryHandle;
    try {
      handle = await this.runner.start(query, options);
    } catch (error) {
      this.say({ type: 'error', id, error: pageError(error) });
      return;
    }
    if (this.closed) {
      await handle.stop();
      return;
    }
    this.queries.set(id, handle);
    handle.attached.then(
      () => this.say({ type: 'attached', id }),
      (error: unknown) => this.say({ type: 'error', id, error: pageError(error) }),
    );
    try {
      for await (const message of handle) this.say({ type: 'message', id, message });
      this.say({ type: 'ended', id, reason: await handle.ended });
    } catch (error) {
      this.say({ type: 'error', id, error: pageError(error) });
    } finally {
      this.queries.delete(id);
    }
  }

  /** The page is gone: every query of it stops (its probes come off). */
  async close(): Promise<void> {
    this.closed = true;
    this.socket = undefined;
    await Promise.allSettled([...this.queries.values()].map((q) => q.stop()));
  }
}
