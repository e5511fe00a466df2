import type { DumpMessage, EndMessage, EventsMessage, QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import { formatCell, formatClock } from './format.js';
import { printableLine } from './printable.js';
import { renderResult, renderTable, resultHeading } from './render.js';
import { incompleteText, noticeText } from './report.js';
import type { OutputSink } from './sink.js';
import { drained } from './stdio.js';

/**
 * Text for a reader: each complete result appended as a table, events as rows under one header,
 * flight-recorder dumps as tables, notices and an incomplete answer's gaps on standard error.
 * What a pipe gets; the live view and folded stacks change how results are shown.
 */
export class TableSink implements OutputSink {
  private eventWidths: number[] | undefined;

  constructor(
    protected readonly out: NodeJS.WritableStream = process.stdout,
    protected readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  export(message: QueryMessage): Promise<void> {
    switch (message.kind) {
      case 'result':
        this.result(message);
        break;
      case 'events':
        this.events(message);
        break;
      case 'dump':
        this.dump(message);
        break;
      case 'end':
        this.end(message);
        break;
      case 'notice':
        this.notice(printableLine(message.host), printableLine(message.message));
        this.err.write(noticeText(message));
        break;
    }
    // A slow reader is waited for: nothing piles up here, and nothing is lost.
    return Promise.all([drained(this.out), drained(this.err)]).then(() => undefined);
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  protected result(result: ResultMessage): void {
    if (!result.complete) return;
    this.out.write([`--- ${resultHeading(result)}`, ...renderResult(result), ''].join('\n') + '\n');
  }

  /** A notice as the text view keeps it (the live view shows the last few); it is on standard error already. */
  protected notice(_host: string, _text: string): void {}

  /** The query is over: said only when something is missing. */
  protected end(end: EndMessage): void {
    this.err.write(incompleteText(end));
  }

  private dump(dump: DumpMessage): void {
    const when = dump.triggerNs === undefined ? 'at the end' : `triggered at ${formatClock(dump.triggerNs, true)}`;
    const rows = dump.rows.map((r) => r.map((c, i) => (dump.columns[i] === 'time' && typeof c === 'number' ? formatClock(c, true) : c)));
    this.out.write([`--- flight recorder on ${printableLine(dump.host)}, ${when}: ${dump.rows.length} events`, ...renderTable(dump.columns, rows), ''].join('\n') + '\n');
  }

  private events({ columns, rows }: EventsMessage): void {
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
}

/** A terminal's live view: the latest result redrawn in place under a title, with the last notices; the final answer stays on screen. */
export class LiveViewSink extends TableSink {
  private readonly notices: string[] = [];
  private last: ResultMessage | undefined;

  constructor(
    private readonly title: string,
    out?: NodeJS.WritableStream,
    err?: NodeJS.WritableStream,
  ) {
    super(out, err);
  }

  protected override result(result: ResultMessage): void {
    this.last = result;
    this.redraw(result);
  }

  protected override notice(host: string, text: string): void {
    this.notices.push(`${host}: ${text}`);
  }

  override shutdown(): Promise<void> {
    if (this.last) this.redraw(this.last);
    return Promise.resolve();
  }

  private redraw(result: ResultMessage): void {
    const rows = (process.stdout.rows || 40) - 6 - Math.min(3, this.notices.length);
    const lines = [this.title, resultHeading(result), '', ...renderResult(result, Math.max(5, rows))];
    for (const n of this.notices.slice(-3)) lines.push(`! ${n}`);
    // Home, clear to end of screen, draw.
    this.out.write(`\x1b[H\x1b[J${lines.join('\n')}\n`);
  }
}
