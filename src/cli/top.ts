import type { QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import { formatClock } from '../output/format.js';
import { printable } from '../output/printable.js';
import { hostList, renderTable } from '../output/render.js';
import type { OutputSink } from '../output/sink.js';
import { drained } from '../output/stdio.js';

/** The query behind `fay top`: every system call, counted by process and call, per period. */
export const TOP_QUERY = 'syscall:* | calls = count() by pid, comm, probe';

interface Rate {
  readonly label: readonly (string | number)[];
  readonly perSecond: number;
}

function rollUp(result: ResultMessage, key: (row: readonly unknown[]) => (string | number)[]): Rate[] {
  const seconds = Math.max(1e-3, (result.endNs - result.startNs) / 1e9);
  const sums = new Map<string, { label: (string | number)[]; calls: number }>();
  for (const row of result.rows) {
    const label = key(row);
    const id = JSON.stringify(label);
    const entry = sums.get(id) ?? { label, calls: 0 };
    entry.calls += row[3] as number;
    sums.set(id, entry);
  }
  return [...sums.values()]
    .map((s) => ({ label: s.label, perSecond: Math.round(s.calls / seconds) }))
    .sort((a, b) => b.perSecond - a.perSecond);
}

/** One screen of `fay top`: totals, the busiest processes and the busiest calls of a period. */
export function renderTop(result: ResultMessage, rowsPerTable: number): string[] {
  const processes = rollUp(result, (r) => [r[0] as number, r[1] as string]);
  const calls = rollUp(result, (r) => [(r[2] as string).replace(/^syscall:/, '')]);
  const total = processes.reduce((n, p) => n + p.perSecond, 0);
  const host = hostList(result.hosts);
  return [
    `fay top — system calls per second on ${host} at ${formatClock(result.endNs)}   (Ctrl-C to stop)`,
    `${total} calls/s from ${processes.length} processes, ${calls.length} distinct calls`,
    '',
    ...renderTable(['calls/s', 'pid', 'comm'], processes.slice(0, rowsPerTable).map((p) => [p.perSecond, ...p.label])),
    '',
    ...renderTable(['calls/s', 'syscall'], calls.slice(0, rowsPerTable).map((c) => [c.perSecond, ...c.label])),
  ];
}

/** `fay top`'s screen: each period's result redrawn in place on a terminal (appended on a pipe), notices on standard error. */
export class TopSink implements OutputSink {
  constructor(
    private readonly live: boolean,
    /** Rows in each of the two tables; default: what fits the terminal (10 on a pipe). */
    private readonly rows: number | undefined,
    private readonly out: NodeJS.WritableStream & { readonly rows?: number } = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  export(message: QueryMessage): Promise<void> {
    if (message.kind === 'notice') this.err.write(`fay: ${printable(message.message)}\n`);
    if (message.kind !== 'result') return Promise.resolve();
    const perTable = this.rows ?? (this.live ? Math.max(5, Math.floor(((this.out.rows || 40) - 8) / 2)) : 10);
    const screen = renderTop(message, perTable).join('\n');
    this.out.write(this.live ? `\x1b[H\x1b[J${screen}\n` : `${screen}\n\n`);
    return drained(this.out);
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
