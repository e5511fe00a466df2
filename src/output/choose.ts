import { FoldedSink } from './folded.js';
import { NdjsonSink } from './ndjson.js';
import type { OutputSink } from './sink.js';
import { LiveViewSink, TableSink } from './terminal.js';

/** How a front end's flags ask for a query's answer to be shown. */
export interface TerminalOptions {
  /** One JSON object per line (NDJSON) instead of text. */
  readonly json: boolean;
  /** Folded stacks (flame-graph input) instead of text: the complete results only. */
  readonly folded?: boolean;
  /** Redraw a live view in place (a terminal); otherwise append. */
  readonly live: boolean;
  /** Shown above a live view. */
  readonly title: string;
}

/** The sink that shows an answer on standard output (or `out`) the way the options ask. */
export function terminalSink(options: TerminalOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): OutputSink {
  if (options.folded) return new FoldedSink(out, err);
  if (options.json) return new NdjsonSink(out, err);
  if (options.live) return new LiveViewSink(options.title, out, err);
  return new TableSink(out, err);
}
