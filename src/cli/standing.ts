import { existsSync } from 'node:fs';
import { gatherQueries, type ListedQuery } from '../cluster/running-queries.js';
import { join } from 'node:path';
import type { ClusterClient } from '../cluster/cluster-client.js';
import type { AggregatorAnnouncement } from '../bus/protocol.js';
import { UsageError } from '../errors.js';
import { parseDurationFlag } from '../frontend/flags.js';
import { localAgentClient } from '../frontend/local-agent.js';
import { clusterClient, runOptions, type QueryFlags } from '../frontend/query-run.js';
import type { ClusterFlags } from '../frontend/cluster-config.js';
import { hostList, renderTable } from '../output/render.js';
import { defaultStoreDir, storeName } from '../store/location.js';

/**
 * Standing queries from the command line: `fay query --persist` leaves one to the agents and
 * returns; `fay ps` lists them (with what their logs hold) beside the running queries; `fay stop`
 * ends one. Without --cluster, this machine's own agent (frontend/local-agent.ts) is the cluster.
 */

export interface StandingFlags extends QueryFlags {
  until?: string;
  folded?: boolean;
}

const say = (line: string) => process.stderr.write(`fay: ${line}\n`);

/** --until: a duration from now (2h, 7d) or a date and time (2026-12-31T18:00Z); in the future. */
export function parseUntil(text: string, nowMs = Date.now()): number {
  const atMs = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : nowMs + parseDurationFlag(text, '--until', { maxMs: 10 * 366 * 86_400_000 });
  if (!Number.isFinite(atMs)) throw new UsageError(`--until takes a duration (2h, 7d) or a date and time (2026-12-31T18:00:00Z), not "${text}"`);
  if (atMs <= nowMs) throw new UsageError(`--until ${text} has passed`);
  return atMs * 1e6;
}

/** The cluster's client, or this machine's agent (started in the background when `start`). */
async function standingClient(flags: ClusterFlags, start: boolean): Promise<{ client: ClusterClient | undefined; local: boolean }> {
  const cluster = await clusterClient(flags);
  if (cluster) return { client: cluster, local: false };
  return { client: await localAgentClient({ start, say }), local: true };
}

/** `fay query --persist <log> '<q>'`: the agents keep and run it; prints its id and returns. */
export async function startStanding(text: string, flags: StandingFlags): Promise<void> {
  if (flags.duration !== undefined) throw new UsageError('--duration ends a query with its client; a standing query outlives it', { hint: 'give --until 2h (or a date) to end it then, or end it with fay stop <id>' });
  if (flags.folded) throw new UsageError('a standing query prints nothing: what it produces goes to its log', { hint: "ask the log afterwards: fay query --folded 'stored:<log> | …'" });
  const options = runOptions(flags);
  const untilNs = flags.until === undefined ? undefined : parseUntil(flags.until);
  const hosts = flags.hosts?.split(',').map((h) => h.trim()).filter(Boolean);
  const { client, local } = await standingClient(flags, true);
  try {
    const run = await client!.start(text, { ...options, ...(hosts !== undefined && { hosts }), ...(local && { expectAgents: 1 }), standing: { ...(untilNs !== undefined && { untilNs }) } });
    const { running, refused } = await run.leave();
    for (const r of refused) say(`${r.host} refused it: ${r.reason}`);
    process.stdout.write(`${run.id}\n`);
    const log = options.persist!.name;
    const until = untilNs === undefined ? '' : ` until ${new Date(untilNs / 1e6).toISOString()}`;
    say(
      `standing query ${run.id} runs on ${running.length} host${running.length === 1 ? '' : 's'} (${hostList(running)})${until}, keeping the log ${log}. ` +
        `fay ps${local ? '' : ' --cluster …'} lists it, fay stop ${run.id} ends it, fay query 'stored:${log} | …' asks what it kept`,
    );
    if (refused.length > 0) process.exitCode = 4;
  } finally {
    await client!.close();
  }
}

function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function ageText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 2 * 86_400) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** `fay ps`: the queries running (and standing) on the cluster, or on this machine's agent. */
export async function listQueries(flags: ClusterFlags & { json?: boolean }): Promise<void> {
  const { client, local } = await standingClient(flags, false);
  let byId = new Map<string, ListedQuery>();
  let answered = 0;
  let aggregators: AggregatorAnnouncement[] = [];
  if (client) {
    try {
      const answers = await client.list();
      answered = answers.length;
      byId = gatherQueries(answers);
      aggregators = client.aggregators();
    } finally {
      await client.close();
    }
  } else if (local) {
    // No agent runs here: what its store keeps to resume is listed, as waiting for it.
    for (const q of await keptStanding()) byId.set(q.id, q.listed);
  }
  if (flags.json) {
    for (const [id, q] of byId) process.stdout.write(`${JSON.stringify({ id, ...q })}\n`);
    for (const a of aggregators) process.stdout.write(`${JSON.stringify({ aggregator: a.name, ...a.load })}\n`);
    return;
  }
  if (aggregators.length > 0) process.stdout.write(`${aggregatorTable(aggregators)}\n`);
  if (byId.size === 0) {
    say(client ? `no query runs on ${local ? "this machine's agent" : `the ${answered} agent${answered === 1 ? '' : 's'} that answered`}` : 'no query stands here, and no agent runs on this machine (fay agent starts one)');
    return;
  }
  const now = Date.now();
  const rows = [...byId].map(([id, q]) => [
    id,
    q.state,
    client ? `${q.hosts.length}/${answered}` : '-',
    ageText(now - q.startedNs / 1e6),
    q.standing?.log ?? '',
    q.standing ? String(q.standing.rows) : '',
    q.standing ? bytesText(q.standing.bytes) : '',
    q.standing?.untilNs === undefined ? '' : new Date(q.standing.untilNs / 1e6).toISOString().replace(/\.\d+Z$/, 'Z'),
    q.client,
    q.text.replaceAll('\n', ' '),
  ]);
  process.stdout.write(`${renderTable(['id', 'state', 'hosts', 'age', 'log', 'rows', 'stored', 'until', 'client', 'query'], rows).join('\n')}\n`);
}

/** The merge tree's aggregators and their load as each last said it (over its last heartbeat). */
function aggregatorTable(aggregators: readonly AggregatorAnnouncement[]): string {
  const rows = aggregators.map((a) => [
    a.name,
    `${(a.load.busy * 100).toFixed(1)}%`,
    a.load.windowsPerSecond.toFixed(0),
    a.load.partialsPerSecond.toFixed(1),
    String(a.load.hosts),
    String(a.load.queries),
  ]);
  return renderTable(['aggregator', 'busy', 'windows/s', 'partials/s', 'hosts', 'queries'], rows).join('\n');
}

/** The standing queries this machine's store keeps, read directly (no agent runs to hold it). */
async function keptStanding(): Promise<{ id: string; listed: ListedQuery }[]> {
  const dir = defaultStoreDir();
  if (!existsSync(join(dir, `${storeName()}.duckdb`))) return [];
  const { TraceStore } = await import('../store/trace-store.js');
  const store = await TraceStore.open(dir, storeName());
  try {
    const logs = new Map((await store.list()).map((l) => [l.name, l]));
    return (await store.standing()).map((q) => {
      const spec = JSON.parse(q.spec) as { text: string; client: string; options: { persist?: { name: string } } };
      const log = spec.options.persist?.name;
      const held = log === undefined ? undefined : logs.get(log);
      return {
        id: q.id,
        listed: {
          text: spec.text,
          client: spec.client,
          startedNs: q.createdNs,
          hosts: [],
          state: 'waiting for fay agent',
          standing: { ...(log !== undefined && { log }), rows: held?.rows ?? 0, bytes: held?.bytes ?? 0, ...(q.untilNs !== undefined && { untilNs: q.untilNs }) },
        },
      };
    });
  } finally {
    store.close();
  }
}

/** `fay stop <id>`: every agent that runs it stops it (a standing one is over for good). */
export async function stopQuery(id: string, flags: ClusterFlags): Promise<void> {
  const { client, local } = await standingClient(flags, false);
  if (client === undefined) {
    const kept = (await keptStanding()).find((q) => q.id === id);
    if (kept === undefined) throw new UsageError(`no query ${id} runs or stands here, and no agent runs on this machine`, { hint: 'fay ps lists them' });
    const { TraceStore } = await import('../store/trace-store.js');
    const store = await TraceStore.open(defaultStoreDir(), storeName());
    try {
      await store.unstand(id);
    } finally {
      store.close();
    }
    say(`standing query ${id} will not resume (no agent was running it); its log ${kept.listed.standing?.log ?? ''} stays: fay store rm removes it`);
    return;
  }
  try {
    const running = (await client.list()).filter((a) => a.queries.some((q) => q.id === id)).map((a) => a.host);
    if (running.length === 0) throw new UsageError(`no agent runs a query ${id}`, { hint: `fay ps${local ? '' : ' --cluster …'} lists the running queries` });
    client.stop(id);
    say(`asked ${running.length} agent${running.length === 1 ? '' : 's'} to stop ${id} (${hostList(running)})`);
  } finally {
    await client.close();
  }
}
