import type { QueryMessage } from '../cluster/cluster-stage.js';

/**
 * Where a query's messages go: results with their coverage, events, notices, flight-recorder
 * dumps, and the end. Modelled on OpenTelemetry's exporter: `export` each message in order,
 * `shutdown` once. A new destination (a store, a web view, an exporter) is one more sink; a
 * query feeds several at once through `fanOut`.
 */
export interface OutputSink {
  /** Takes one message; resolves once the sink can take the next (a slow reader holds the query's output back, nothing piles up). */
  export(message: QueryMessage): Promise<void>;
  /** The query's messages are all exported: last words (a live view's final frame), then flush and close. */
  shutdown(): Promise<void>;
}

/**
 * One sink that hands every message to each of `sinks`, in order, and waits for all of them. A
 * sink that fails does not keep the message from the others; its error is thrown once they have it.
 */
export function fanOut(sinks: readonly OutputSink[]): OutputSink {
  if (sinks.length === 1) return sinks[0]!;
  const all = async (each: (sink: OutputSink) => Promise<void>) => {
    const failed = (await Promise.allSettled(sinks.map(each))).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  return {
    export: (message) => all((sink) => sink.export(message)),
    shutdown: () => all((sink) => sink.shutdown()),
  };
}
