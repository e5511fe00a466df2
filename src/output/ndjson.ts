import type { DumpMessage, EndMessage, QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import type { CoverageGap } from '../cluster/period-aligner.js';
import type { Cell } from '../cluster/rows.js';
import { incompleteText, noticeText } from './report.js';
import type { OutputSink } from './sink.js';
import { drained } from './stdio.js';

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
 * One JSON object per line for programs: each complete result (`type: result`, with its coverage),
 * each event, each dump, and the end with what the answer covers. Notices stay text on standard error.
 */
export class NdjsonSink implements OutputSink {
  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  export(message: QueryMessage): Promise<void> {
    switch (message.kind) {
      case 'result':
        if (message.complete) this.line(resultObject(message));
        break;
      case 'events':
        for (const row of message.rows) this.line({ type: 'event', host: message.host, ...rowObject(message.columns, row) });
        break;
      case 'dump':
        this.line(dumpObject(message));
        break;
      case 'end':
        this.line(endObject(message));
        this.err.write(incompleteText(message));
        break;
      case 'notice':
        this.err.write(noticeText(message));
        break;
    }
    return Promise.all([drained(this.out), drained(this.err)]).then(() => undefined);
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  private line(object: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify(object)}\n`);
  }
}

function resultObject(result: ResultMessage): Record<string, unknown> {
  const names = result.columns.map((c) => c.name);
  return {
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
  };
}

/** The query is over, with what the answer covers. */
function endObject(end: EndMessage): Record<string, unknown> {
  const { coverage } = end;
  return {
    type: 'end',
    reason: end.reason,
    complete: end.complete,
    hosts_expected: coverage.expected,
    hosts_reporting: coverage.reporting,
    hosts_missing: coverage.missing,
    gaps: (coverage.gaps ?? []).map(gapObject),
  };
}

function dumpObject(dump: DumpMessage): Record<string, unknown> {
  return {
    type: 'dump',
    host: dump.host,
    ...(dump.triggerNs !== undefined && { trigger_ns: dump.triggerNs }),
    events: dump.rows.map((r) => rowObject(dump.columns, r)),
  };
}
