import { resolve } from 'node:path';
import type { StoreAnswer } from '../bus/protocol.js';
import type { ClusterClient } from '../cluster/cluster-client.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { defaultStoreDir, storeName } from '../store/location.js';
import { printable } from '../output/printable.js';
import { TraceStore, type StoredLogSummary } from '../store/trace-store.js';

/** `fay store …`: this machine's trace store (docs/store.md), as the agent named `--name` keeps it. */

export interface StoreFlags {
  dir?: string;
  name?: string;
  json?: boolean;
  parquet?: string;
}

/** How long an export through the agent may take before this command gives up waiting (the agent finishes it regardless). */
const EXPORT_WAIT_MS = 60 * 60_000;

/**
 * A store question for this machine's agent, when one runs and the question is about its store
 * (no --dir, no --name): it holds the store, which a second process cannot open meanwhile.
 * Undefined when no agent runs: the command opens the store itself.
 */
async function throughAgent(flags: StoreFlags, question: Parameters<ClusterClient['store']>[0]): Promise<StoreAnswer | undefined> {
  if (flags.dir !== undefined || flags.name !== undefined) return undefined;
  const { localAgentClient, localAgentLog } = await import('../frontend/local-agent.js');
  const client = await localAgentClient();
  if (client === undefined) return undefined;
  try {
    if (question.op === 'export') process.stderr.write(`exporting through this machine's agent, which holds the store…\n`);
    const [answer] = await client.store(question, question.op === 'export' ? EXPORT_WAIT_MS : 10_000, 1);
    if (answer === undefined) throw new EnvironmentError("this machine's agent did not answer", { hint: `its log may say why: ${localAgentLog()}` });
    const problem = answer.problem;
    if (problem !== undefined) throw problem.usage ? new UsageError(problem.message, { hint: problem.hint }) : new EnvironmentError(problem.message, { hint: problem.hint });
    return answer;
  } finally {
    await client.close();
  }
}

async function opened<T>(flags: StoreFlags, use: (store: TraceStore) => Promise<T>): Promise<T> {
  const store = await TraceStore.open(flags.dir ?? defaultStoreDir(), storeName(flags.name));
  try {
    return await use(store);
  } finally {
    store.close();
  }
}

/** A log as fay store ls shows it: as the agent answers, or as the store lists it. */
type LogListing = NonNullable<StoreAnswer['logs']>[number] | Omit<StoredLogSummary, 'schema'>;

function clock(ns: number | undefined): string {
  return ns === undefined ? '-' : new Date(ns / 1e6).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

function retention(ms: number | undefined): string {
  if (ms === undefined) return 'kept';
  const units: [number, string][] = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'm'], [1000, 's']];
  const [size, unit] = units.find(([size]) => ms % size === 0) ?? [1, 'ms'];
  return `${ms / size}${unit}`;
}

/** The logs here: name, kind, rows, the time they span, retention, query. */
export async function listStore(flags: StoreFlags): Promise<void> {
  const logs: LogListing[] = (await throughAgent(flags, { op: 'list' }))?.logs ?? (await opened(flags, (store) => store.list())).map(({ schema: _, ...listing }) => listing);
  if (flags.json) {
    for (const log of logs) process.stdout.write(`${JSON.stringify(log)}\n`);
    return;
  }
  if (logs.length === 0) {
    process.stdout.write('nothing is stored here (fay query --persist <name> … keeps a query)\n');
    return;
  }
  const rows = logs.map((l) => [l.name, l.kind, String(l.rows), clock(l.firstNs), clock(l.lastNs), retention(l.retainMs), printable(l.query)]);
  const header = ['name', 'kind', 'rows', 'from', 'to', 'retain', 'query'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

export async function removeLog(log: string, flags: StoreFlags): Promise<void> {
  if (!(await throughAgent(flags, { op: 'remove', log }))) await opened(flags, (store) => store.remove(log));
  process.stdout.write(`removed ${log}\n`);
}

export async function exportLog(log: string, flags: StoreFlags & { parquet: string }): Promise<void> {
  // The agent's working directory is not this command's.
  const dir = resolve(flags.parquet);
  if (!(await throughAgent(flags, { op: 'export', log, dir }))) await opened(flags, (store) => store.exportParquet(log, dir));
  process.stdout.write(`wrote ${log} to ${flags.parquet} (Parquet, zstd, by host and day)\n`);
}
