import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClusterClient } from '../cluster/cluster-client.js';
import type { EndMessage, QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import { runFay } from '../testing/cli.js';
import { TestCluster } from '../testing/cluster.js';
import type { NatsServer } from '../testing/nats-server.js';

/**
 * Standing queries on three real agents (each a `fay agent` process scoped to a cgroup of its own,
 * with its own DuckDB store) on a real nats-server: started with `fay query --persist`, which
 * returns at once; they run without their client, survive an agent's SIGKILL (resumed when it
 * comes back), and their logs answer history queries exactly, per host and merged.
 */

const HOSTS = ['st-a', 'st-b', 'st-c'] as const;
const storeDir = mkdtempSync(join(tmpdir(), 'fay-standing-'));

describe('standing queries on three agents, and history over what they kept', () => {
  const env = { ...process.env, FAY_STORE_DIR: storeDir };
  const cluster = new TestCluster(HOSTS, { env });
  const { cgroups, agents } = cluster;
  let nats: NatsServer;
  let client: ClusterClient;

  before(async () => {
    ({ nats, client } = await cluster.start());
  });

  after(async () => {
    await cluster.stop();
    rmSync(storeDir, { recursive: true, force: true });
  });

  /** A history query's messages, to its end. */
  async function history(text: string): Promise<QueryMessage[]> {
    const run = await client.start(text);
    const out: QueryMessage[] = [];
    for await (const m of run) out.push(m);
    return out;
  }

  /** Per-host totals of a log, as a history query gives them. */
  async function totals(log: string): Promise<Record<string, number>> {
    const out = await history(`stored:${log} | count() by host`);
    const final = out.filter((m): m is ResultMessage => m.kind === 'result').at(-1);
    return Object.fromEntries((final?.rows ?? []).map((r) => [r[0] as string, r[1] as number]));
  }

  /** Waits until the stores hold `want` (windows are written as each closes: a period after the calls). */
  async function stored(log: string, want: Record<string, number>): Promise<void> {
    const deadline = Date.now() + 20_000;
    let got: Record<string, number> = {};
    while (Date.now() < deadline) {
      got = await totals(log);
      if (Object.entries(want).every(([h, n]) => got[h] === n)) return;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.fail(`the stores hold ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
  }

  it('runs without its client, and its history is exact per window, per host and merged; fay ps and fay stop', async () => {
    const started = await runFay(['query', '--cluster', nats.url('client'), '--persist', 'ppid', '--retain', '1h', 'syscall:getppid | count() by host every 1s'], { env });
    assert.equal(started.code, 0, started.stderr);
    const id = started.lines.join("\n").trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    assert.match(started.stderr, /runs on 3 hosts \(st-a, st-b, st-c\), keeping the log ppid/);
    // The client is gone: the agents go on.
    const calls = { 'st-a': 3000, 'st-b': 5000, 'st-c': 7000 };
    await Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-st', 'getppid', calls[h])));
    await stored('ppid', calls);

    const windows = (await history('stored:ppid | count() by host every 1s')).filter((m): m is ResultMessage => m.kind === 'result' && m.complete);
    const perHost: Record<string, number> = {};
    for (const w of windows) for (const r of w.rows) perHost[r[0] as string] = (perHost[r[0] as string] ?? 0) + (r[1] as number);
    assert.deepEqual(perHost, calls, 'every window of every host, summed');
    const merged = (await history('stored:ppid | count() every 1s')).filter((m): m is ResultMessage => m.kind === 'result' && m.complete);
    for (const w of merged) {
      const same = windows.find((x) => x.startNs === w.startNs);
      const sum = (same?.rows ?? []).reduce((n, r) => n + (r[1] as number), 0);
      assert.equal(w.rows[0]?.[0] ?? 0, sum, `the merged window at ${new Date(w.startNs / 1e6).toISOString()} is its hosts' sum`);
    }
    assert.equal(merged.reduce((n, w) => n + ((w.rows[0]?.[0] as number | undefined) ?? 0), 0), 15_000);

    const ps = await runFay(['ps', '--cluster', nats.url('client'), '--json']);
    const listed = ps.lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as { id: string; hosts: string[]; standing?: { log: string; rows: number; bytes: number } });
    const entry = listed.find((q) => q.id === id);
    assert.ok(entry?.standing, ps.lines.join("\n"));
    assert.deepEqual(entry.hosts.sort(), [...HOSTS]);
    assert.equal(entry.standing.log, 'ppid');
    assert.ok(entry.standing.rows >= 3 && entry.standing.bytes > 0);

    const stop = await runFay(['stop', '--cluster', nats.url('client'), id]);
    assert.equal(stop.code, 0, stop.stderr);
    await Promise.all(HOSTS.map((h) => agents.get(h)!.logged(new RegExp(`standing query ${id} is over`))));
    // Stopped: nothing more is counted.
    await Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-st', 'getppid', 100)));
    assert.deepEqual(await totals('ppid'), calls);
  });

  it('resumes on an agent killed with SIGKILL and restarted; history shows the span it was down as missing, and counts the rest exactly', async () => {
    const started = await runFay(['query', '--cluster', nats.url('client'), '--persist', 'ppid2', 'syscall:getppid | count() by host every 1s'], { env });
    assert.equal(started.code, 0, started.stderr);
    const id = started.lines.join("\n").trim();
    await Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-st', 'getppid', 1000)));
    await stored('ppid2', { 'st-a': 1000, 'st-b': 1000, 'st-c': 1000 });

    const doomed = agents.get('st-c')!;
    await doomed.kill();
    // What the killed agent's bpftrace counted dies with it; calls made meanwhile are not counted.
    await cgroups.get('st-c')!.run('fay-st', 'getppid', 500);
    // Down for three of st-a's windows at least, so that whole 1 s windows of history lack st-c
    // (a restart within a second would leave none: history re-windows on the epoch's seconds).
    const windowsOf = async (host: string) =>
      (await history('stored:ppid2 | count() by host every 1s')).filter((m) => m.kind === 'result' && m.rows.some((r) => r[0] === host)).length;
    const atKill = await windowsOf('st-a');
    for (let i = 0; i < 100 && (await windowsOf('st-a')) < atKill + 3; i++) await new Promise((r) => setTimeout(r, 200));
    const back = await cluster.startAgent('st-c');
    await back.logged(new RegExp(`resumed standing query ${id}`));
    await Promise.all(HOSTS.map((h) => cgroups.get(h)!.run('fay-st', 'getppid', 2000)));
    await stored('ppid2', { 'st-a': 3000, 'st-b': 3000, 'st-c': 3000 });

    const out = await history('stored:ppid2 | count() by host every 1s');
    const end = out.find((m): m is EndMessage => m.kind === 'end')!;
    const gaps = (end.coverage.gaps ?? []).filter((g) => g.host === 'st-c');
    assert.equal(gaps.length, 1, JSON.stringify(end.coverage));
    assert.match(gaps[0]!.reason, /nothing of it is stored for that span/);
    // Those windows are missing for st-c, not zeros.
    const inGap = out.filter((m): m is ResultMessage => m.kind === 'result' && m.startNs >= gaps[0]!.startNs && m.endNs <= gaps[0]!.endNs);
    assert.ok(inGap.length > 0);
    for (const w of inGap) {
      assert.ok(w.coverage?.missing.includes('st-c'), JSON.stringify(w.coverage));
      assert.ok(!w.rows.some((r) => r[0] === 'st-c'));
    }
    await runFay(['stop', '--cluster', nats.url('client'), id]);
    await Promise.all(HOSTS.map((h) => agents.get(h)!.logged(new RegExp(`standing query ${id} is over`))));
    const ps = await runFay(['ps', '--cluster', nats.url('client'), '--json']);
    assert.deepEqual(ps.lines.filter((l) => l.trim() !== ''), [], 'nothing runs or stands any more');
  });

  it('an agent away when the query was stopped takes it up again when it comes back, and stops it on the other agents\' word', async () => {
    const started = await runFay(['query', '--cluster', nats.url('client'), '--persist', 'ppid3', 'syscall:getppid | count() by host every 1s'], { env });
    assert.equal(started.code, 0, started.stderr);
    const id = started.lines.join('\n').trim();
    await agents.get('st-c')!.kill();
    const stop = await runFay(['stop', '--cluster', nats.url('client'), id]);
    assert.equal(stop.code, 0, stop.stderr);
    await Promise.all(['st-a', 'st-b'].map((h) => agents.get(h)!.logged(new RegExp(`standing query ${id} is over`))));
    const back = await cluster.startAgent('st-c');
    // It takes the query up again from its store, and ends it on the others' word: once attached,
    // or while its probes are still loading when that word comes first (then it never logs that it resumed).
    await back.logged(new RegExp(`standing query ${id} is over: stopped with fay stop while this agent was away \\(st-[ab] says so\\)`));
    const ps = await runFay(['ps', '--cluster', nats.url('client'), '--json']);
    assert.deepEqual(ps.lines.filter((l) => l.trim() !== ''), [], 'it runs nowhere, and stands nowhere to resume');
  });
});
