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

async function opened<T>(flags: StoreFlags, use: (store: TraceStore) => Promise<T>): Promise<T> {
  const store = await TraceStore.open(flags.dir ?? defaultStoreDir(), storeName(flags.name));
  try {
    return await use(store);
  } finally {
    store.close();
  }
}

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
  const logs = await opened(flags, (store) => store.list());
  if (flags.json) {
    for (const log of logs) process.stdout.write(`${JSON.stringify(log)}\n`);
    return;
  }
  if (logs.length === 0) {
    process.stdout.write('nothing is stored here (fay query --persist <name> … keeps a query)\n');
    return;
  }
  const rows = logs.map((l: StoredLogSummary) => [l.name, l.kind, String(l.rows), clock(l.firstNs), clock(l.lastNs), retention(l.retainMs), printable(l.query)]);
  const header = ['name', 'kind', 'rows', 'from', 'to', 'retain', 'query'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

export async function removeLog(log: string, flags: StoreFlags): Promise<void> {
  await opened(flags, (store) => store.remove(log));
  process.stdout.write(`removed ${log}\n`);
}

export async function exportLog(log: string, flags: StoreFlags & { parquet: string }): Promise<void> {
  await opened(flags, (store) => store.exportParquet(log, flags.parquet));
  process.stdout.write(`wrote ${log} to ${flags.parquet} (Parquet, zstd, by host and day)\n`);
}
