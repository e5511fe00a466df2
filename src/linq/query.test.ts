import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadedBpfPrograms, newBpfPrograms } from '../testing/kernel-state.js';
import { waitingWorkload } from '../testing/workload.js';
import { LambdaError } from './call-site.js';
import { connect, type Fay } from './fay.js';

describe('FayLINQ queries on real probes', () => {
  let fay: Fay;
  let programsBefore: Set<number>;
  before(async () => {
    programsBefore = loadedBpfPrograms();
    fay = await connect();
  });
  after(async () => {
    await fay?.close();
    assert.deepEqual(newBpfPrograms(programsBefore), [], 'every probe removed');
  });

  it('ends an event stream after take(n) events, with the columns of its select', async () => {
    const workload = waitingWorkload('fay-lq', 'getppid', 50);
    const query = fay
      .syscalls('getppid')
      .where((e, p) => e.pid === p.pid, { pid: workload.pid })
      .select((e) => ({ who: e.comm, ret: e.ret }))
      .take(7);
    // The probes attach before the workload runs: start() gives the handle, and the iterator reads it.
    const events: { who: string; ret: number }[] = [];
    const handle = query.start();
    const reading = (async () => {
      for await (const m of handle) if (m.kind === 'events') events.push(...m.rows.map((r) => ({ who: r[0] as string, ret: r[1] as number })));
    })();
    await handle.attached;
    await workload.go();
    await reading;
    assert.equal(events.length, 7, 'limit 7 ends the query after 7 events');
    assert.ok(events.every((e) => e.who === 'fay-lq' && e.ret > 0));
  });

  it('gives each window to for await, and stops the query when the loop is left', async () => {
    const workload = waitingWorkload('fay-lw', 'getppid', 600);
    const windows = [];
    let went: Promise<unknown> | undefined;
    for await (const w of fay.syscalls('getppid').where((e, p) => e.pid === p.pid, { pid: workload.pid }).groupBy((e) => ({ comm: e.comm })).count().every('200ms')) {
      windows.push(w);
      went ??= workload.go();
      if (windows.reduce((n, x) => n + x.rows.reduce((m, r) => m + r.count, 0), 0) === 600) break;
    }
    await went;
    assert.ok(windows.every((w) => w.complete && w.end > w.start));
    assert.deepEqual([...new Set(windows.flatMap((w) => w.rows.map((r) => r.comm)))], ['fay-lw']);
  });

  it('refuses to await a query that would never end, and says how to bound it', async () => {
    await assert.rejects(
      async () => await fay.syscalls('getppid').count(),
      (error: unknown) => error instanceof LambdaError && /needs an end: add \.duration/.test(error.message),
    );
    await assert.rejects(fay.syscalls('getppid').toArray(), /an event stream has no end/);
    assert.throws(() => fay.syscalls('getppid').duration('soon'), /"soon" is not a duration/);
    assert.throws(() => fay.syscalls('getppid').groupBy((e) => ({ 'not-a-name': e.comm })), /cannot name a column/);
    assert.throws(() => fay.syscalls('getppid').groupBy((e) => ({ by: e.comm })), /by is a FayQL keyword/);
  });

  it('reports a query the binder refuses as FayQL, with the caret in its spelling', async () => {
    // The types allow any field of a syscall's args; the kernel's format decides.
    await assert.rejects(
      async () => await fay.syscalls('getppid').where((e) => e.args.nope === 1).duration('1s').count(),
      (error: unknown) => error instanceof Error && /unknown field args\.nope/.test(error.message),
    );
  });
});
