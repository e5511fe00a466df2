import type { DumpMessage, EndMessage, QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import type { CoverageGap } from '../cluster/period-aligner.js';
import { EXIT_INCOMPLETE } from '../errors.js';
import type { Cell } from '../cluster/rows.js';
import { foldedLines } from './folded.js';
import { formatCell, formatClock, formatDuration } from './format.js';
import { printable, printableLine } from '../output/printable.js';
import { drained } from './stdio.js';
import { renderResult, renderTable, resultHeading } from './render.js';

export interface OutputOptions {
  /** One JSON object per line (NDJSON) instead of text. */
  readonly json: boolean;
  /** Folded stacks (flame-graph input) instead of text: the complete results only. */
  readonly folded?: boolean;
  /** Redraw a live view in place (a terminal); otherwise append. */
  readonly live: boolean;
  /** Shown above a live view. */
  readonly title: string;
}

/** A coverage gap as NDJSON has it. */
function gapObject(gap: CoverageGap): Record<string, unknown> {
  return {
    host: gap.host,
    start_ns: gap.startNs,
    end_ns: gap.endNs,
    start: new Date(gap.startNs / 1e6).toISOString(),
    end: new Date(gap.endNs / 1e6).toISOString(),
    reason: gap.reason,
  };
}

/** A result row as a JSON object, histograms as their buckets. */
export function rowObject(names: readonly string[], row: readonly Cell[]): Record<string, unknown> {
  return Object.fromEntries(names.map((n, i) => [n, row[i] ?? null]));
}

/**
 * Writes a query's messages: a live view redrawn in place on a terminal,
 * complete results appended on a pipe, or NDJSON. Notices go to stderr.
 */
export class QueryPrinter {
  private eventWidths: number[] | undefined;
  private readonly notices: string[] = [];
  private last: ResultMessage | undefined;

  constructor(
    private readonly options: OutputOptions,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  message(message: QueryMessage): void {
    switch (message.kind) {
      case 'result':
        this.result(message);
        break;
      case 'events':
        this.events(message.columns, message.rows, message.host);
        break;
      case 'dump':
        this.dump(message);
        break;
      case 'end':
        this.end(message);
        break;
      case 'notice':
        this.notices.push(`${printableLine(message.host)}: ${printableLine(message.message)}`);
        this.err.write(`fay: ${printableLine(message.host)}: ${printable(message.message)}\n`);
        break;
    }
  }

  private result(result: ResultMessage): void {
    if (this.options.folded) {
      if (result.complete) for (const line of foldedLines(result)) this.out.write(`${line}\n`);
      return;
    }
    if (this.options.json) {
      if (!result.complete) return;
      const names = result.columns.map((c) => c.name);
      this.out.write(
        `${JSON.stringify({
          type: 'result',
          start_ns: result.startNs,
          end_ns: result.endNs,
          start: new Date(result.startNs / 1e6).toISOString(),
          end: new Date(result.endNs / 1e6).toISOString(),
          hosts: result.hosts,
          ...(result.coverage !== undefined && {
            hosts_expected: result.coverage.expected,
            hosts_late: result.coverage.late,
            hosts_missing: result.coverage.missing,
            ...(result.coverage.gaps?.length && { gaps: result.coverage.gaps.map(gapObject) }),
          }),
          ...(result.foldedGroups > 0 && { folded_groups: result.foldedGroups }),
          ...(result.droppedEvents > 0 && { dropped_events: result.droppedEvents }),
          ...(result.uncountedEvents > 0 && { uncounted_events: result.uncountedEvents }),
          ...(result.sampleRate !== undefined && { sample_rate: result.sampleRate }),
          rows: result.rows.map((r) => rowObject(names, r)),
        })}\n`,
      );
      return;
    }
    if (this.options.live) {
      this.last = result;
      this.redraw(result);
      return;
    }
    if (!result.complete) return;
    this.out.write([`--- ${resultHeading(result)}`, ...renderResult(result), ''].join('\n') + '\n');
  }

  private redraw(result: ResultMessage): void {
    const rows = (process.stdout.rows || 40) - 6 - Math.min(3, this.notices.length);
    const lines = [this.options.title, resultHeading(result), '', ...renderResult(result, Math.max(5, rows))];
    for (const n of this.notices.slice(-3)) lines.push(`! ${n}`);
    // Home, clear to end of screen, draw.
    this.out.write(`\x1b[H\x1b[J${lines.join('\n')}\n`);
  }

  /** The query is over: NDJSON says so with what the answer covers; text says it only when something is missing. */
  private end(end: EndMessage): void {
    const { coverage } = end;
    if (this.options.json) {
      this.out.write(
        `${JSON.stringify({
          type: 'end',
          reason: end.reason,
          complete: end.complete,
          hosts_expected: coverage.expected,
          hosts_reporting: coverage.reporting,
          hosts_missing: coverage.missing,
          gaps: (coverage.gaps ?? []).map(gapObject),
        })}\n`,
      );
    }
    if (end.complete) return;
    const lines = [`fay: the answer is incomplete (exit code ${EXIT_INCOMPLETE}):`];
    const gapped = new Set((coverage.gaps ?? []).map((g) => g.host));
    for (const host of coverage.missing.filter((h) => !gapped.has(h))) lines.push(`  ${printableLine(host)}: missing from the final answer`);
    for (const g of coverage.gaps ?? []) {
      lines.push(`  ${printableLine(g.host)}: not covered from ${formatClock(g.startNs)} to ${formatClock(g.endNs)} (${formatDuration(g.endNs - g.startNs)}): ${printableLine(g.reason)}`);
    }
    this.err.write(`${lines.join('\n')}\n`);
  }

  private dump(dump: DumpMessage): void {
    if (this.options.json) {
      this.out.write(
        `${JSON.stringify({
          type: 'dump',
          host: dump.host,
          ...(dump.triggerNs !== undefined && { trigger_ns: dump.triggerNs }),
          events: dump.rows.map((r) => rowObject(dump.columns, r)),
        })}\n`,
      );
      return;
    }
    const when = dump.triggerNs === undefined ? 'at the end' : `triggered at ${formatClock(dump.triggerNs, true)}`;
    const rows = dump.rows.map((r) => r.map((c, i) => (dump.columns[i] === 'time' && typeof c === 'number' ? formatClock(c, true) : c)));
    this.out.write([`--- flight recorder on ${printableLine(dump.host)}, ${when}: ${dump.rows.length} events`, ...renderTable(dump.columns, rows), ''].join('\n') + '\n');
  }

  private events(columns: readonly string[], rows: readonly (readonly Cell[])[], host: string): void {
    if (this.options.json) {
      for (const row of rows) this.out.write(`${JSON.stringify({ type: 'event', host, ...rowObject(columns, row) })}\n`);
      return;
    }
    // Event times read as a clock; NDJSON keeps the nanoseconds.
    const text = rows.map((r) =>
      r.map((c, i) => (columns[i] === 'time' && typeof c === 'number' ? formatClock(c, true) : formatCell(typeof c === 'string' ? c.replaceAll('\n', ' ') : c))),
    );
    if (this.eventWidths === undefined) {
      const names = columns.map(printableLine);
      this.eventWidths = names.map((c, i) => Math.max(c.length, ...text.map((r) => r[i]!.length)));
      this.out.write(`${this.line(names)}\n`);
    }
    for (const r of text) this.out.write(`${this.line(r)}\n`);
  }

  private line(cells: readonly string[]): string {
    return cells.map((c, i) => c.padEnd(this.eventWidths![i] ?? 0)).join('  ').trimEnd();
  }

  /** Resolves once a slow reader has taken what was written. */
  drained(): Promise<void> {
    return Promise.all([drained(this.out), drained(this.err)]).then(() => undefined);
  }

  /** Leaves the live view showing the final answer. */
  finish(): void {
    if (this.options.live && this.last) this.redraw(this.last);
  }
}
