import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClusterClient } from '../cluster/cluster-client.js';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import { TestCluster } from '../testing/cluster.js';
import type { FeaturesCell } from './categorizer.js';

/**
 * Categorising a real cluster: six `fay agent` processes on a real nats-server, each scoped to a
 * cgroup of its own, counting system calls by host and call; four hosts run mix A
 * (getppid), two run mix B (openat, close, newfstatat), and one of the four switches from A to
 * B half-way. The categories are computed once per window at the client's cluster stage.
 */

const A_HOSTS = ['mine-a1', 'mine-a2', 'mine-a3'] as const;
const SWITCHER = 'mine-a4';
const B_HOSTS = ['mine-b1', 'mine-b2'] as const;
const HOSTS = [...A_HOSTS, SWITCHER, ...B_HOSTS];
/** Each mix: a burst of this many calls every PERIOD_MS, for BURSTS bursts (about 8 s: windows a busy machine delivers late lack hosts). */
const CALLS = 40;
const PERIOD_MS = 20;
const BURSTS = 400;

describe('categorize on six agents running two workloads', () => {
  const cluster = new TestCluster(HOSTS);
  const { cgroups } = cluster;
  let client: ClusterClient;

  before(async () => {
    ({ client } = await cluster.start());
  });

  after(() => cluster.stop());

  it('puts the B hosts in a category of their own in every full window, names their calls, and flags the host that switched', async () => {
    // The calls of both mixes and the sleep between bursts: every system call (syscall:*) on six
    // agents of a 2-CPU machine made their windows late, and late hosts are missing from a window.
    const calls = ['getppid', 'openat', 'close', 'newfstatat', 'nanosleep', 'clock_nanosleep'].map((c) => `syscall:${c}`).join(', ');
    const run = client.run(`${calls} | count() by host, probe every 1s | categorize host by probe`, { expectAgents: HOSTS.length });
    await run.attached;
    const mix = (host: string, which: 'A' | 'B', bursts = BURSTS) => cgroups.get(host)!.run('fay-mine', 'mix', which, '/etc/hostname', CALLS, PERIOD_MS, bursts);
    const work = Promise.all([
      ...A_HOSTS.map((h) => mix(h, 'A')),
      ...B_HOSTS.map((h) => mix(h, 'B')),
      mix(SWITCHER, 'A', BURSTS / 2).then(() => mix(SWITCHER, 'B', BURSTS / 2)),
    ]).then(() => run.stop());
    const windows: ResultMessage[] = [];
    for await (const m of run) if (m.kind === 'result' && m.complete) windows.push(m);
    await work;

    const rowsOf = (w: ResultMessage) =>
      Object.fromEntries(w.rows.map((r) => [r[0] as string, { category: r[1] as number, changed: r[6] as boolean, features: r[5] as FeaturesCell }]));
    // Windows in which every host ran for the whole second (not the first or last: there, a host's
    // start-up calls, execve, mmap…, can outweigh its few calls of the mix, and it looks different).
    const full = windows.map(rowsOf).filter((w) => HOSTS.every((h) => w[h] !== undefined)).slice(1, -1);
    assert.ok(full.length >= 3, `${full.length} full windows of ${windows.length}`);
    for (const w of full) {
      const b = w['mine-b1']!.category;
      assert.equal(w['mine-b2']!.category, b, 'the B hosts share a category');
      for (const h of A_HOSTS) assert.notEqual(w[h]!.category, b, `${h} is not in B's category`);
      assert.deepEqual(
        w['mine-b1']!.features.items.map((f) => f.feature).sort(),
        ['syscall:close', 'syscall:getppid', 'syscall:newfstatat', 'syscall:openat'].filter((f) => w['mine-b1']!.features.items.some((i) => i.feature === f)),
      );
      assert.ok(w['mine-b1']!.features.items.some((f) => f.feature === 'syscall:getppid' && f.share < f.overall), 'B makes fewer getppid calls than the hosts do overall');
      assert.ok(w['mine-b1']!.features.items.some((f) => ['syscall:openat', 'syscall:close', 'syscall:newfstatat'].includes(f.feature) && f.share > f.overall));
    }
    // The switcher: with the A hosts first, with the B hosts at the end, and flagged where it changed.
    assert.equal(full[0]![SWITCHER]!.category, full[0]!['mine-a1']!.category);
    // (Its last full window may straddle its switch on a busy machine, where it is a mix of both, in
    // a category of its own: it is with the B hosts in a full window after the switch.)
    const afterSwitch = full.findIndex((w) => w[SWITCHER]!.category !== full[0]![SWITCHER]!.category);
    assert.ok(afterSwitch > 0 && full.slice(afterSwitch).some((w) => w[SWITCHER]!.category === w['mine-b1']!.category), 'with the B hosts after its switch');
    const flagged = windows.map(rowsOf).filter((w) => w[SWITCHER]?.changed);
    assert.ok(flagged.length >= 1, 'its change of category is flagged');
    // The labels stay: the A hosts' category keeps its number from the first full window to the last.
    assert.equal(full.at(-1)!['mine-a1']!.category, full[0]!['mine-a1']!.category);
    // From one full window to the next (the flag compares with the window before), only the switcher changes.
    const all = windows.map(rowsOf);
    const isFull = (w: (typeof all)[number] | undefined) => w !== undefined && HOSTS.every((h) => w[h] !== undefined);
    const changes = all.flatMap((w, i) => (i >= 2 && isFull(w) && isFull(all[i - 1]) ? Object.entries(w).filter(([, r]) => r.changed).map(([h]) => h) : []));
    assert.deepEqual(changes.filter((h) => h !== SWITCHER), [], 'only the switcher changed');
  });
});
