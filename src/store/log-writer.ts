import type { AggregateKind } from '../agg/aggregate.js';
import { GroupTable } from '../agg/group-table.js';
import type { Row } from '../plan/evaluate.js';
import type { StoredLog, TraceStore } from './trace-store.js';

/** How often a writer enforces its store's retention, at most: a quarter of the log's, between 1 s and a minute. */
function retentionEveryMs(retainMs: number | undefined): number {
  return Math.min(60_000, Math.max(1000, (retainMs ?? Infinity) / 4));
}

/**
 * What one query on one agent persists into the machine's trace store: each window of its machine
 * stage (a copy taken at once: the stage's table is not the writer's to keep) and each event,
 * appended in order, one append at a time. A store that cannot be opened or written is said once,
 * as a notice on the query; the live answer goes on as before.
 */
export class LogWriter {
  /** The store, once opened and the log created in it. */
  private store: TraceStore | undefined;
  private chain: Promise<void>;
  private failed = false;
  private retainedMs = 0;
  /** Rows appended so far. */
  rows = 0;

  constructor(
    open: () => Promise<TraceStore>,
    private readonly log: Omit<StoredLog, 'createdNs'>,
    private readonly kinds: readonly AggregateKind[],
    private readonly onProblem: (message: string) => void,
    /** The store's bound in bytes, held as retention is (the oldest rows of every log go first). */
    private readonly maxBytes?: number,
  ) {
    this.chain = (async () => {
      const store = await open();
      await store.create(log);
      this.store = store;
    })().catch((error: unknown) => this.fail(error));
  }

  /** A window of the machine stage, of this host. */
  window(host: string, window: { readonly table: GroupTable; readonly startNs: number; readonly endNs: number }): void {
    if (this.failed) return;
    const table = GroupTable.decode(this.kinds, window.table.encode());
    this.then(async (store) => {
      await store.appendWindow(this.log.name, { host, startNs: window.startNs, endNs: window.endNs, table });
      this.rows += table.size;
    });
  }

  /** Events of this host, each at its `time` (when it has one) or now. */
  events(host: string, rows: readonly Row[]): void {
    if (this.failed || rows.length === 0) return;
    const now = Date.now() * 1e6;
    const timed = rows.map((row) => ({ timeNs: typeof row.time === 'number' ? row.time : now, row: { ...row } }));
    this.then(async (store) => {
      await store.appendEvents(this.log.name, host, timed);
      this.rows += timed.length;
    });
  }

  /** Resolves once everything handed over is written (or given up). */
  drained(): Promise<void> {
    return this.chain;
  }

  private then(write: (store: TraceStore) => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      const store = this.store;
      if (this.failed || store === undefined) return;
      try {
        await write(store);
        if (Date.now() - this.retainedMs >= retentionEveryMs(this.log.retainMs)) {
          this.retainedMs = Date.now();
          await store.enforceRetention();
          if (this.maxBytes !== undefined) await store.enforceBytes(this.maxBytes);
        }
      } catch (error) {
        this.fail(error);
      }
    });
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.onProblem(`not persisted into ${this.log.name} from here on: ${(error as Error).message}${this.rows > 0 ? ` (${this.rows} rows were)` : ''}`);
  }
}
