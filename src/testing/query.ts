import type { DumpMessage, EventsMessage, NoticeMessage, QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import type { QueryHandle } from '../cluster/embedded.js';
import type { Cell } from '../cluster/rows.js';

export interface Collected {
  readonly results: ResultMessage[];
  readonly events: EventsMessage[];
  readonly notices: NoticeMessage[];
  readonly dumps: DumpMessage[];
  /** The last complete result. */
  readonly final: ResultMessage | undefined;
}

/** Waits for the probes, runs `during` (a workload), stops the query and gathers everything it emitted. */
export async function collect(run: QueryHandle, during: () => Promise<unknown>): Promise<Collected> {
  const messages: QueryMessage[] = [];
  const reading = (async () => {
    for await (const m of run) messages.push(m);
  })();
  try {
    await run.attached;
  } catch (error) {
    await reading.catch(() => undefined);
    throw error;
  }
  try {
    await during();
  } catch (error) {
    // The run stops whatever happened, or the test would wait on it for ever.
    await run.stop();
    await reading.catch(() => undefined);
    throw error;
  }
  await run.stop();
  await reading;
  const results = messages.filter((m): m is ResultMessage => m.kind === 'result');
  return {
    results,
    events: messages.filter((m): m is EventsMessage => m.kind === 'events'),
    notices: messages.filter((m): m is NoticeMessage => m.kind === 'notice'),
    dumps: messages.filter((m): m is DumpMessage => m.kind === 'dump'),
    final: results.filter((r) => r.complete).pop(),
  };
}

/** Rows of a result as objects keyed by column name. */
export function rowsOf(result: ResultMessage | undefined): Record<string, Cell>[] {
  if (!result) return [];
  return result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c.name, row[i] ?? null])));
}

/** Every event row as an object. */
export function eventRows(collected: Pick<Collected, 'events'>): Record<string, Cell>[] {
  return collected.events.flatMap((e) => e.rows.map((row) => Object.fromEntries(e.columns.map((c, i) => [c, row[i] ?? null]))));
}

/** A closed window of `count() by comm` from one host, made up: what the benchmarks feed exporters and pages. */
export function countByComm(rows: readonly (readonly [string, number])[], startNs: number, endNs: number, host = 'bench'): ResultMessage {
  return {
    kind: 'result',
    columns: [{ name: 'comm', role: 'key' }, { name: 'count', role: 'aggregate', function: 'count' }],
    rows: rows.map((r) => [...r]),
    startNs,
    endNs,
    complete: true,
    hosts: [host],
    foldedGroups: 0,
    droppedEvents: 0,
    uncountedEvents: 0,
    coverage: { expected: [host], reporting: [host], late: [], missing: [] },
  };
}
