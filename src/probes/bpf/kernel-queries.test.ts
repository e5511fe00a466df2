import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { describe, it } from 'node:test';
import type { HistResult, QuantilesResult, SampleResult, TopKResult } from '../../agg/aggregate.js';
import type { DumpMessage, EventsMessage, QueryMessage } from '../../cluster/cluster-stage.js';
import type { RunOptions } from '../../cluster/embedded.js';
import { FayError, ProbeUnavailableError } from '../../errors.js';
import { FIXTURE_TRACEFS } from '../../testing/catalog-fixture.js';
import { leavesKernelAsFound } from '../../testing/kernel-state.js';
import { collect, eventRows, rowsOf, type Collected } from '../../testing/query.js';
import { heldWorkload, runWorkload, waitingWorkload, workloadBinary } from '../../testing/workload.js';
import { BpfProvider } from './provider.js';
import { localCluster } from '../../frontend/local-cluster.js';
import { Tracefs, tracefsRoot } from './tracefs.js';
import { TraceStore } from '../../store/trace-store.js';
import { createAggregate } from '../../agg/registry.js';

const cluster = localCluster('testhost');

/** Reads a running query's messages until one passes the test (or it ends), and returns that one (or the last). */
async function readUntil(reader: AsyncIterator<QueryMessage>, test: (m: QueryMessage) => boolean): Promise<QueryMessage | undefined> {
  let last: QueryMessage | undefined;
  for (let m = await reader.next(); !m.done; m = await reader.next()) {
    last = m.value;
    if (test(m.value)) return m.value;
  }
  return last;
}

function histBuckets(cell: unknown): [number | null, number][] {
  return (cell as HistResult).buckets.filter((b) => b.count > 0).map((b) => [b.low, b.count]);
}

/**
 * Every kernel query here runs on both backends, with the same exact answers expected of each:
 * auto (Fay's native backend for what it covers, which is nearly all of them) and bpftrace.
 */
for (const backend of ['auto', 'bpftrace'] as const) {
  describe(`kernel queries on real probes and real workloads (${backend})`, () => {
    /** The options of a run on this backend (a test's own choice of backend wins). */
    const on = (options: RunOptions = {}): RunOptions => ({ ...options, providerOptions: { ...options.providerOptions, bpf: { backend, ...(options.providerOptions?.bpf as object | undefined) } } });
    const runOn = (query: string, options: RunOptions = {}) => cluster.run(query, on(options));
    /** Runs a query around a workload: the workload starts only once every probe is attached. */
    const around = (query: string, workload: () => Promise<unknown>, options: RunOptions = {}): Promise<Collected> => collect(runOn(query, options), workload);

    leavesKernelAsFound({ each: true });

    it('counts system calls exactly, grouped by pid and comm', async () => {
      const first = waitingWorkload('fay-gp', 'getppid', 5000);
      const second = waitingWorkload('fay-gp', 'getppid', 3210);
      const result = await around('syscall:getppid | where comm == "fay-gp" | count() by pid, comm', async () => {
        await Promise.all([first.go(), second.go()]);
      });
      assert.deepEqual(rowsOf(result.final).sort((a, b) => Number(a.pid) - Number(b.pid)), [
        { pid: Math.min(first.pid, second.pid), comm: 'fay-gp', count: first.pid < second.pid ? 5000 : 3210 },
        { pid: Math.max(first.pid, second.pid), comm: 'fay-gp', count: first.pid < second.pid ? 3210 : 5000 },
      ]);
    });

    it('filters on a pid given in the query', async () => {
      const workload = waitingWorkload('fay-pid', 'getppid', 777);
      const result = await around(`syscall:getppid | where pid == ${workload.pid} | count()`, () => workload.go());
      assert.deepEqual(rowsOf(result.final), [{ count: 777 }]);
    });

    it('keeps keys apart when strings contain commas, reading saved arguments on return', async () => {
      const result = await around(
        'syscall:openat | where comm =~ "fay,*" | count() by comm, args.filename, failed = ret < 0',
        async () => {
          await runWorkload('fay,one', 'open', '/tmp', 3);
          await runWorkload('fay,two', 'open', '/nonexistent,dir/a,b', 2);
          await runWorkload('fay,', 'open', ',', 1);
        },
      );
      const rows = rowsOf(result.final).sort((a, b) => (a.comm as string).localeCompare(b.comm as string));
      assert.deepEqual(rows, [
        { comm: 'fay,', 'args.filename': ',', failed: true, count: 1 },
        { comm: 'fay,one', 'args.filename': '/tmp', failed: false, count: 3 },
        { comm: 'fay,two', 'args.filename': '/nonexistent,dir/a,b', failed: true, count: 2 },
      ]);
    });

    it('keys every aggregate of a group by the same string, the second map as the first', async () => {
      const result = await around('syscall:openat | where comm == "fay-two" | count(), s = sum(2) by args.filename', async () => {
        await runWorkload('fay-two', 'open', '/nonexistent/one', 3);
        await runWorkload('fay-two', 'open', '/nonexistent/two', 1);
      });
      const rows = rowsOf(result.final).sort((a, b) => (a['args.filename'] as string).localeCompare(b['args.filename'] as string));
      assert.deepEqual(rows, [
        { 'args.filename': '/nonexistent/one', count: 3, s: 6 },
        { 'args.filename': '/nonexistent/two', count: 1, s: 2 },
      ]);
    });

    it('says how many events a full kernel map left uncounted, whichever aggregate it holds', async () => {
      // 4096 groups fit in the kernel's maps with --max-groups 100; 6,000 distinct names do not.
      for (const aggregate of ['count()', 's = sum(1)', 'h = hist(ret)']) {
        const result = await around(
          `syscall:openat | where comm == "fay-full" | ${aggregate} by args.filename`,
          () => runWorkload('fay-full', 'openmany', '/nonexistent/f', 6000),
          { limits: { maxGroups: 100 } },
        );
        const final = result.final!;
        const counted = rowsOf(final).reduce((n, r) => n + (typeof r.count === 'number' ? r.count : typeof r.s === 'number' ? r.s : (r.h as HistResult).total), 0);
        assert.equal(counted + final.uncountedEvents, 6000, aggregate);
        assert.equal(final.uncountedEvents, 6000 - 4096, aggregate);
      }
    });

    it('puts each value in the histogram bucket that holds it', async () => {
      const result = await around('syscall:read | where comm == "fay-read" | count(), h = hist(ret), min(ret), max(ret), sum(ret)', () =>
        runWorkload('fay-read', 'read', 0, 1, 3, 100, 100, 5000),
      );
      const [row] = rowsOf(result.final);
      assert.deepEqual(histBuckets(row!.h), [[0, 1], [1, 1], [2, 1], [64, 2], [4096, 1]]);
      assert.deepEqual([row!.count, row!['min(ret)'], row!['max(ret)'], row!['sum(ret)']], [6, 0, 5000, 5204]);
    });

    it('pairs entry and return for durations and return values', async () => {
      const result = await around(
        'syscall:clock_nanosleep | where comm == "fay-sleep" | count(), min(duration), max(duration), max(ret)',
        () => runWorkload('fay-sleep', 'sleep', 20, 3),
      );
      const [row] = rowsOf(result.final);
      assert.equal(row!.count, 3);
      assert.ok((row!['min(duration)'] as number) >= 20e6, `slept at least 20 ms: ${row!['min(duration)'] as number}`);
      assert.ok((row!['max(duration)'] as number) < 1e9);
      assert.equal(row!['max(ret)'], 0);
    });

    it('counts failed calls with a predicate on the return value', async () => {
      const result = await around('syscall:openat | where comm == "fay-open" and ret < 0 | count(), avg(ret)', async () => {
        await runWorkload('fay-open', 'open', '/does/not/exist', 7);
        await runWorkload('fay-open', 'open', '/etc/hostname', 4);
      });
      assert.deepEqual(rowsOf(result.final), [{ count: 7, 'avg(ret)': -2 }]);
    });

    it('probes a native function with a uprobe: arguments, return values, counts', async () => {
      const binary = workloadBinary();
      const result = await around(`uprobe:${binary}:fay_target | where comm == "fay-up" | count(), sum(args[0]), max(ret), min(ret)`, () =>
        runWorkload('fay-up', 'target', 1000),
      );
      assert.deepEqual(rowsOf(result.final), [{ count: 1000, 'sum(args[0])': 499500, 'max(ret)': 1998, 'min(ret)': 0 }]);
    });

    it('probes a shared library by name', async () => {
      // The workload makes its system calls through libc's syscall() wrapper.
      const result = await around('uprobe:libc:syscall | where comm == "fay-libc" | count() by args[0]', () => runWorkload('fay-libc', 'getppid', 321));
      assert.deepEqual(rowsOf(result.final), [{ 'args[0]': 110, count: 321 }]);
    });

    it('reads the time clock_nanosleep was asked to sleep, behind its pointer', async () => {
      const result = await around('syscall:clock_nanosleep | where comm == "fay-nap" | count() by args.rqtp.tv_sec, args.rqtp.tv_nsec', async () => {
        await runWorkload('fay-nap', 'sleep', 30, 4);
        await runWorkload('fay-nap', 'sleep', 5, 2);
        await runWorkload('fay-nap', 'sleep', 1010, 1);
      });
      const rows = rowsOf(result.final).sort((a, b) => Number(a['args.rqtp.tv_sec']) - Number(b['args.rqtp.tv_sec']) || Number(a['args.rqtp.tv_nsec']) - Number(b['args.rqtp.tv_nsec']));
      assert.deepEqual(rows, [
        { 'args.rqtp.tv_sec': 0, 'args.rqtp.tv_nsec': 5_000_000, count: 2 },
        { 'args.rqtp.tv_sec': 0, 'args.rqtp.tv_nsec': 30_000_000, count: 4 },
        { 'args.rqtp.tv_sec': 1, 'args.rqtp.tv_nsec': 10_000_000, count: 1 },
      ]);
    });

    it('reads a struct the call fills when it returns: the size newfstatat gives back', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fay-stat-'));
      try {
        writeFileSync(join(dir, 'a'), Buffer.alloc(12_345));
        writeFileSync(join(dir, 'b'), Buffer.alloc(7));
        const result = await around('syscall:newfstatat | where comm == "fay-stat" | count() by args.filename, size = args.statbuf.st_size, ok = ret == 0', async () => {
          await runWorkload('fay-stat', 'stat', join(dir, 'a'), 3);
          await runWorkload('fay-stat', 'stat', join(dir, 'b'), 2);
          await runWorkload('fay-stat', 'stat', join(dir, 'missing'), 1);
        });
        const rows = rowsOf(result.final).sort((a, b) => (a['args.filename'] as string).localeCompare(b['args.filename'] as string));
        // A call that failed filled nothing: its size is whatever the caller's buffer held (the workload's: the last size).
        assert.deepEqual(
          rows.filter((r) => r.ok === true),
          [
            { 'args.filename': join(dir, 'a'), size: 12_345, ok: true, count: 3 },
            { 'args.filename': join(dir, 'b'), size: 7, ok: true, count: 2 },
          ],
        );
        assert.equal(rows.filter((r) => r.ok === false).length, 1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("writes out the address connect() is given, IPv4 and IPv6, with its port", async () => {
      const servers = await Promise.all(
        ['127.0.0.1', '::1'].map(
          (host) =>
            new Promise<Server>((resolve) => {
              const server = createServer((socket) => socket.end());
              server.listen(0, host, () => resolve(server));
            }),
        ),
      );
      const [v4, v6] = servers.map((s) => (s.address() as AddressInfo).port) as [number, number];
      const connectTo = (host: string, port: number) =>
        new Promise<void>((resolve, reject) => {
          const socket = connect({ host, port }, () => {
            socket.destroy();
            resolve();
          }).on('error', reject);
        });
      try {
        const result = await around(`syscall:connect | where pid == ${process.pid} | count() by family = args.uservaddr.sa_family, to = ntop(args.uservaddr)`, async () => {
          for (let i = 0; i < 3; i++) await connectTo('127.0.0.1', v4);
          for (let i = 0; i < 2; i++) await connectTo('::1', v6);
        });
        const ours = rowsOf(result.final).filter((r) => [`127.0.0.1:${v4}`, `[::1]:${v6}`].includes(r.to as string));
        assert.deepEqual(ours.sort((a, b) => Number(a.family) - Number(b.family)), [
          { family: 2, to: `127.0.0.1:${v4}`, count: 3 },
          { family: 10, to: `[::1]:${v6}`, count: 2 },
        ]);
      } finally {
        for (const server of servers) server.close();
      }
    });

    it("persists each window of a query into the machine's trace store, with --persist, and keeps querying live", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fay-persist-'));
      const store = await TraceStore.open(dir, 'testhost');
      try {
        const persisting = localCluster('testhost', { store: () => Promise.resolve(store) });
        const live = await collect(persisting.run('syscall:getppid | where comm == "fay-keep" | count() by comm', { persist: { name: 'getppid', retainMs: 86_400_000 }, refreshMs: 200 }), async () => {
          await runWorkload('fay-keep', 'getppid', 1234);
          await runWorkload('fay-keep', 'getppid', 766);
        });
        assert.deepEqual(rowsOf(live.final), [{ comm: 'fay-keep', count: 2000 }], 'the live answer as before');
        const [log] = await store.list();
        assert.deepEqual([log!.name, log!.kind, log!.retainMs], ['getppid', 'windows', 86_400_000]);
        const windows = await store.windows('getppid', [createAggregate({ function: 'count', params: [] })]);
        const stored = windows.flatMap((w) => w.table.finalize()).reduce((n, g) => n + (g.values[0] as number), 0);
        assert.equal(stored, 2000, 'every call in the stored windows');
        // Windows follow one another: nothing the host covered is missing, empty ones included.
        for (let i = 1; i < windows.length; i++) assert.ok(Math.abs(windows[i]!.startNs - windows[i - 1]!.endNs) < 1e6, `window ${i} starts where ${i - 1} ended`);
      } finally {
        store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('says in a notice when it cannot persist, and answers live all the same', async () => {
      const broken = localCluster('testhost', { store: () => Promise.reject(new Error('No space left on device')) });
      const live = await collect(broken.run('syscall:getppid | where comm == "fay-nokeep" | count()', { persist: { name: 'lost' } }), () => runWorkload('fay-nokeep', 'getppid', 321));
      assert.deepEqual(rowsOf(live.final), [{ count: 321 }]);
      assert.deepEqual(
        live.notices.map((n) => n.message).filter((m) => /persist/.test(m)),
        ['not persisted into lost from here on: No space left on device'],
      );
    });

    it('reads the arguments of execve one by one, exactly, and nothing past the last', async () => {
      const run = promisify(execFile);
      const result = await around('syscall:execve | where args.argv[1] =~ "fay-argv-*" | count() by args.argv[0], args.argv[1], args.argv[2]', async () => {
        for (let i = 0; i < 20; i++) await run('/bin/true', [`fay-argv-${i}`, `with space ${i}`]);
        await run('/bin/true', ['fay-argv-alone']);
      });
      const rows = rowsOf(result.final).sort((a, b) => (a['args.argv[1]'] as string).localeCompare((b['args.argv[1]'] as string), 'en', { numeric: true }));
      assert.deepEqual(rows, [
        ...Array.from({ length: 20 }, (_, i) => ({ 'args.argv[0]': '/bin/true', 'args.argv[1]': `fay-argv-${i}`, 'args.argv[2]': `with space ${i}`, count: 1 })),
        { 'args.argv[0]': '/bin/true', 'args.argv[1]': 'fay-argv-alone', 'args.argv[2]': '', count: 1 },
      ]);
    });

    it('joins the arguments of execve as bpftrace does, the first 16, and groups by the command line in the agent', async () => {
      const run = promisify(execFile);
      const many = Array.from({ length: 20 }, (_, i) => `m${i}`);
      const result = await around('syscall:execve | where args.argv[1] =~ "fay-join-*" | count() by cmd = join(args.argv)', async () => {
        for (let i = 0; i < 20; i++) await run('/bin/true', [`fay-join-${i % 4}`, `x${i % 4}`]);
        await run('/bin/true', ['fay-join-many', ...many]);
      });
      const rows = rowsOf(result.final).sort((a, b) => (a.cmd as string).localeCompare(b.cmd as string));
      assert.deepEqual(rows, [
        ...[0, 1, 2, 3].map((i) => ({ cmd: `/bin/true fay-join-${i} x${i}`, count: 5 })),
        { cmd: `/bin/true fay-join-many ${many.slice(0, 14).join(' ')}`, count: 1 },
      ]);
    });

    it("names a thread's start routine with usym(), as a key and as a selected value, and a kernel function with ksym()", async () => {
      // Symbols are named while the process lives: the workload holds until the answer has them.
      const keyed = runOn('uprobe:libc:pthread_create | where comm == "fay-thr" | count() by start = usym(args[2])', { refreshMs: 200 });
      const selected = runOn('uprobe:libc:pthread_create | where comm == "fay-thr" and usym(args[2]) =~ "fay_*" | select start = usym(args[2])');
      const keyedReader = keyed[Symbol.asyncIterator]();
      const selectedReader = selected[Symbol.asyncIterator]();
      await Promise.all([keyed.attached, selected.attached]);
      const workload = heldWorkload('fay-thr', 'threads', 5);
      await workload.held;
      const named = (m: QueryMessage) => m.kind === 'result' && rowsOf(m).some((r) => r.start === 'fay_thread_start' && r.count === 5);
      const seen = await readUntil(keyedReader, named);
      assert.ok(seen !== undefined && named(seen), `a live result names the start routine: ${JSON.stringify(seen)}`);
      const events: Record<string, unknown>[] = [];
      await readUntil(selectedReader, (m) => {
        if (m.kind === 'events') events.push(...eventRows({ events: [m] }));
        return events.length >= 5;
      });
      await workload.release();
      await Promise.all([keyed.stop(), selected.stop()]);
      let final: QueryMessage | undefined;
      for (let m = await keyedReader.next(); !m.done; m = await keyedReader.next()) if (m.value.kind === 'result' && m.value.complete) final = m.value;
      for (let m = await selectedReader.next(); !m.done; m = await selectedReader.next()) if (m.value.kind === 'events') events.push(...eventRows({ events: [m.value] }));
      assert.deepEqual(rowsOf(final as Parameters<typeof rowsOf>[0]), [{ start: 'fay_thread_start', count: 5 }], 'the name stays after the process exited');
      assert.deepEqual(events, Array.from({ length: 5 }, () => ({ start: 'fay_thread_start' })));

      const kernel = await around('tracepoint:timer:hrtimer_start | count() by f = ksym(args.function)', () => runWorkload('fay-ksym', 'sleep', 5, 3));
      const names = rowsOf(kernel.final).map((r) => r.f as string);
      assert.ok(names.includes('hrtimer_wakeup'), `a nanosleep arms an hrtimer_wakeup timer: ${names.join(', ')}`);
      assert.ok(names.every((n) => /^[A-Za-z_][\w.]*$/.test(n)), `every address named: ${names.join(', ')}`);
    });

    it('pairs nested function calls by depth and names each probe', async () => {
      const binary = workloadBinary();
      const result = await around(`uprobe:${binary}:fay_* | where comm == "fay-nest" | count(), min(duration) by probe`, () =>
        runWorkload('fay-nest', 'nested', 500),
      );
      const rows = rowsOf(result.final).sort((a, b) => (a.probe as string).localeCompare(b.probe as string));
      assert.deepEqual(rows.map((r) => [r.probe, r.count]), [
        [`uprobe:${binary}:fay_outer`, 500],
        [`uprobe:${binary}:fay_target`, 500],
      ]);
      for (const r of rows) assert.ok((r['min(duration)'] as number) > 0);
    });

    it('reads tracepoint fields, numbers and inline strings', async () => {
      const result = await around(
        'tracepoint:signal:signal_generate | where comm == "fay-sig" and args.sig == 10 | count() by args.comm, args.sig',
        () => runWorkload('fay-sig', 'signal', 42),
      );
      assert.deepEqual(rowsOf(result.final), [{ 'args.comm': 'fay-sig', 'args.sig': 10, count: 42 }]);
    });

    it('emits one window per period whose counts add up exactly', async () => {
      const result = await around('syscall:getppid | where comm == "fay-win" | count() every 100ms', async () => {
        await runWorkload('fay-win', 'getppid', 20000);
        // Long enough for a whole window of no calls, and for at least three windows, on a loaded machine too.
        await runWorkload('fay-win', 'sleep', 400, 1);
        await runWorkload('fay-win', 'getppid', 10000);
      });
      const windows = result.results;
      assert.ok(windows.length >= 3, `several windows: ${windows.length}`);
      assert.ok(windows.every((w) => w.complete && w.endNs > w.startNs));
      for (let i = 1; i < windows.length; i++) assert.equal(windows[i]!.startNs, windows[i - 1]!.endNs, 'windows are contiguous');
      const total = windows.flatMap(rowsOf).reduce((n, r) => n + (r.count as number), 0);
      assert.equal(total, 30000);
      assert.ok(windows.some((w) => rowsOf(w)[0]?.count === 0), 'the sleep leaves a window with no calls, counted as 0');
    });

    it('slides a window over periods: a burst shows in every window that covers it, then drops out', async () => {
      const result = await around('syscall:getppid | where comm == "fay-slide" | n = count(), max(pid) | window 300ms slide 100ms', async () => {
        await runWorkload('fay-slide', 'getppid', 20000);
        await runWorkload('fay-slide', 'sleep', 450, 1);
      });
      const windows = result.results.map((r) => ({ span: (r.endNs - r.startNs) / 1e6, n: rowsOf(r)[0]!.n as number }));
      // The last period runs from the last tick to the stop, so only the windows before it are bounded.
      assert.ok(windows.slice(0, -1).every((w) => w.span <= 330), `no window covers more than three periods: ${JSON.stringify(windows)}`);
      const burst = windows.findIndex((w) => w.n === 20000);
      assert.ok(burst >= 0, `some window holds the whole burst: ${JSON.stringify(windows)}`);
      assert.ok(windows.slice(burst).some((w) => w.n === 0), 'and a later one no longer does');
      assert.ok(windows.every((w) => w.n === 0 || w.n === 20000), 'a window holds all of the burst or none of it');
    });

    it('samples events where they fire: a 1% sample of a known workload lands within the binomial bound', async () => {
      const calls = 100_000;
      const query = 'syscall:getppid | where comm == "fay-smp" | sample 1% | n = count(), est = count() scaled';
      // Decided as the probe fires, on either backend: 24 random bits against 1% of 2^24.
      assert.match(cluster.explain(query, { providerOptions: { bpf: { backend: 'bpftrace' } } }), /\/\(comm == "fay-smp"\) && \(\(rand & 16777215\) < 167772\)\//);
      assert.match(cluster.explain(query), /call get_prandom_u32\n.*r0 &= 16777215\n.*if r0 >= 167772 goto/);
      const result = await around(query, () => runWorkload('fay-smp', 'getppid', calls));
      const [row] = rowsOf(result.final);
      const sigma = Math.sqrt(calls * 0.01 * 0.99);
      assert.ok(Math.abs((row!.n as number) - 1000) <= 5 * sigma, `sampled count ${row!.n as number} is 1000 ± ${5 * sigma}`);
      assert.equal(row!.est, Math.round((row!.n as number) * 100));
      assert.equal(result.final?.sampleRate, 0.01);
    });

    it('folds groups beyond the cap into (other), with exact totals, and says how many', async () => {
      const result = await around(
        'syscall:getppid | where comm =~ "fay-cap*" | count() by comm',
        async () => {
          for (let i = 1; i <= 5; i++) await runWorkload(`fay-cap${i}`, 'getppid', 100 * i);
        },
        { limits: { maxGroups: 2 } },
      );
      const rows = rowsOf(result.final);
      assert.equal(rows.length, 3, JSON.stringify(rows));
      assert.equal(rows.reduce((n, r) => n + (r.count as number), 0), 1500);
      assert.ok(rows.some((r) => r.comm === '(other)'));
      assert.equal(result.final?.foldedGroups, 3);
    });

    it('drops shipped events over the per-second cap where they fire, and counts every one it drops', async () => {
      // The probe drops before the machine stage filters: the exact filter keeps other processes out of the count.
      const query = 'syscall:getppid | where comm == "fay-drop" and comm =~ "*y-dr?p" | count()';
      assert.ok(cluster.plan(query).probe.ship, 'the glob makes the probe ship events');
      const result = await around(query, () => runWorkload('fay-drop', 'getppid', 5000), { limits: { maxEventsPerSecond: 1000 } });
      const shipped = rowsOf(result.final)[0]!.count as number;
      assert.ok(shipped >= 1000 && shipped < 5000, `about 1000 shipped: ${shipped}`);
      assert.equal(shipped + result.final!.droppedEvents, 5000, 'shipped and dropped add up to every event');
    });

    it('keeps a flight recorder and dumps exactly the last N events up to the trigger, then records again', async () => {
      const run = runOn('syscall:read | where comm == "fay-rec" | select ret, comm | record last 10 dump when ret == 20 or ret == 40');
      const dumps: DumpMessage[] = [];
      let firstDump!: () => void;
      const dumped = new Promise<void>((resolve) => (firstDump = resolve));
      const reading = (async () => {
        for await (const m of run) {
          if (m.kind !== 'dump') continue;
          dumps.push(m);
          firstDump();
        }
      })();
      await run.attached;
      const sizes = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
      await runWorkload('fay-rec', 'read', ...sizes(1, 30));
      await dumped;
      // Once the first dump is read the recorder is re-armed; the next trigger dumps the events since.
      await runWorkload('fay-rec', 'read', ...sizes(31, 45));
      await run.stop();
      await reading;
      assert.equal(dumps.length, 2, JSON.stringify(dumps.map((d) => d.rows.length)));
      assert.deepEqual(dumps[0]!.rows.map((r) => r[0]), sizes(11, 20), 'the ten events before the trigger, the trigger last');
      assert.deepEqual(dumps[1]!.rows.map((r) => r[0]), sizes(31, 40));
      assert.ok(dumps.every((d) => d.triggerNs !== undefined && d.rows.every((r) => r[1] === 'fay-rec')));
    });

    it('dumps the recording at the end when it has no trigger', async () => {
      const result = await around('syscall:read | where comm == "fay-rec2" | select ret | record last 3', () => runWorkload('fay-rec2', 'read', 5, 6, 7, 8, 9));
      assert.equal(result.dumps.length, 1);
      assert.deepEqual(result.dumps[0]!.rows, [[7], [8], [9]]);
      assert.equal(result.dumps[0]!.triggerNs, undefined);
    });

    it('computes min and max per window (alternating buffers) without losing any', async () => {
      const binary = workloadBinary();
      const result = await around(`uprobe:${binary}:fay_target | where comm == "fay-mm" | count(), min(args[0]), max(args[0]) every 100ms`, async () => {
        await runWorkload('fay-mm', 'target', 3000);
        await runWorkload('fay-mm', 'sleep', 250, 1);
        await runWorkload('fay-mm', 'target', 500);
      });
      const rows = result.results.flatMap(rowsOf);
      assert.equal(rows.reduce((n, r) => n + (r.count as number), 0), 3500);
      const counted = rows.filter((r) => (r.count as number) > 0);
      for (const r of counted) assert.ok((r['min(args[0])'] as number) <= (r['max(args[0])'] as number), JSON.stringify(r));
      assert.equal(Math.min(...counted.map((r) => r['min(args[0])'] as number)), 0);
      assert.equal(Math.max(...counted.map((r) => r['max(args[0])'] as number)), 2999);
      // A window's count ends when bpftrace's user space reads the map, its extremes when the program
      // switches buffers, a little earlier: calls in between (more on a loaded machine) count in one window
      // and set extremes in the next. So a busy window's extremes are in it or in the next one.
      rows.forEach((r, i) => {
        if ((r.count as number) > 10) assert.ok(r['min(args[0])'] !== null || rows[i + 1]?.['min(args[0])'] != null, `busy window ${i} has its extremes: ${JSON.stringify(rows)}`);
      });
      assert.ok(rows.some((r) => r.count === 0 && r['min(args[0])'] === null), 'a quiet window has a count of 0 and no extremes');
    });

    it('merges aggregates kept in the kernel with those the agent computes from shipped values', async () => {
      const query =
        'syscall:read | where comm == "fay-mix" | n = count(), l = lhist(ret, 0, 1000, 100), q = quantiles(ret, 0.5, 1), ' +
        'd = distinct(ret), t = topk(ret, 2), f = first(ret), z = last(ret), s = stddev(ret), e = sample(2)';
      const plan = cluster.plan(query);
      assert.deepEqual(plan.probe.aggregate?.aggregates.map((a) => a.name), ['n', 'l']);
      const result = await around(query, () => runWorkload('fay-mix', 'read', 7, 250, 250, 999, 1000, 250));
      const [row] = rowsOf(result.final);
      assert.equal(row!.n, 6);
      assert.deepEqual(histBuckets(row!.l), [[0, 1], [200, 3], [900, 1], [1000, 1]]);
      const q = row!.q as QuantilesResult;
      assert.equal(q.count, 6);
      assert.ok(Math.abs(q.quantiles[0]!.value! - 250) <= 2.5 && Math.abs(q.quantiles[1]!.value! - 1000) <= 10, JSON.stringify(q));
      assert.equal(row!.d, 4);
      assert.deepEqual((row!.t as TopKResult).items.map((i) => [i.value, i.count, i.error]), [[250, 3, 0], [7, 1, 0]]);
      assert.deepEqual([row!.f, row!.z], [7, 250]);
      assert.ok(Math.abs((row!.s as number) - 391.4987) < 0.001, `stddev ${row!.s as number}`);
      const sample = row!.e as SampleResult;
      assert.equal(sample.seen, 6);
      assert.equal(sample.events.length, 2);
      for (const event of sample.events) assert.equal(event.comm, 'fay-mix');
    });

    it('falls back to the machine stage for a glob bpftrace cannot match, with the same exact answer', async () => {
      const plan = cluster.plan('syscall:getppid | where comm =~ "*y-gl?b" | count() by comm');
      assert.ok(plan.probe.ship && !plan.probe.aggregate, 'events are shipped to the machine stage');
      const result = await around('syscall:getppid | where comm =~ "*y-gl?b" | count() by comm', () => runWorkload('fay-glob', 'getppid', 2500));
      assert.deepEqual(rowsOf(result.final), [{ comm: 'fay-glob', count: 2500 }]);
    });

    it('streams events with the selected values, and stops by itself at its limit', async () => {
      const run = runOn('syscall:openat | where comm == "fay-ev" | select file = args.filename, ret, comm, args.dfd | limit 3');
      const messages: QueryMessage[] = [];
      const reading = (async () => {
        for await (const m of run) messages.push(m);
      })();
      await run.attached;
      await runWorkload('fay-ev', 'open', '/etc/hostname', 5);
      // No stop(): the query ends by itself once it has its three events.
      await reading;
      assert.equal(await run.ended, 'limit');
      const result = { events: messages.filter((m): m is EventsMessage => m.kind === 'events') };
      // dfd is AT_FDCWD: an int the tracepoint stores in an unsigned 8-byte slot.
      assert.deepEqual(
        eventRows(result).map((r) => [r.file, (r.ret as number) >= 0, r.comm, r['args.dfd']]),
        [
          ['/etc/hostname', true, 'fay-ev', -100],
          ['/etc/hostname', true, 'fay-ev', -100],
          ['/etc/hostname', true, 'fay-ev', -100],
        ],
      );
    });

    it('samples CPU stacks with profile and groups by user stack, named while the process lives', async () => {
      // Stacks are named when printed, so the query reads its windows while the workload still runs.
      const run = runOn('profile:199hz | where comm == "fay-spin" | count() by ustack', { refreshMs: 200 });
      await run.attached;
      const workload = runWorkload('fay-spin', 'spin', 1500);
      let stack: string | undefined;
      for await (const message of run) {
        if (message.kind !== 'result') continue;
        stack ??= rowsOf(message).map((r) => r.ustack as string).find((s) => s.includes('spin_loop'));
        if (stack) void run.stop();
      }
      await workload;
      assert.match(stack ?? '', /spin_loop[\s\S]*main/, 'the spinning function is on the stack, under main');
    });

    it('fires interval probes on their period', async () => {
      const run = runOn('interval:20ms | count()', { durationMs: 500 });
      const messages = [];
      for await (const m of run) messages.push(m);
      assert.equal(await run.ended, 'duration');
      const final = messages.filter((m) => m.kind === 'result' && m.complete).pop();
      const count = rowsOf(final as Parameters<typeof rowsOf>[0])[0]?.count as number;
      assert.ok(count >= 5 && count <= 30, `about 25 ticks in 500 ms: ${count}`);
      // Ticks after the stop (bpftrace may take seconds to exit under load) are not the query's.
      assert.match(cluster.explain('interval:20ms | count()'), /interval:ms:20 \/!@fay_stop\//);
    });

    it('groups by host, a constant of each machine', async () => {
      const result = await around('syscall:getppid | where comm == "fay-host" | count() by host', () => runWorkload('fay-host', 'getppid', 10));
      assert.deepEqual(rowsOf(result.final), [{ host: 'testhost', count: 10 }]);
    });

    it('watches every system call through raw_syscalls and compares probe names in the kernel', async () => {
      const query = 'syscall:* | where comm == "fay-raw" and probe != "syscall:getppid" | count() by probe | where probe == "syscall:openat"';
      const bpftrace: RunOptions = { providerOptions: { bpf: { backend: 'bpftrace' } } };
      assert.match(cluster.explain(query, bpftrace), /tracepoint:raw_syscalls:sys_enter \/.*\(1000000 \+ args->id\) != 1000110/);
      // The native backend compares the number itself (getppid is 110 on x86-64).
      assert.match(cluster.explain(query), /Fay's native eBPF backend[\s\S]*if r1 == 110 goto/);
      for (const options of [bpftrace, {}]) {
        const result = await around(
          query,
          async () => {
            await runWorkload('fay-raw', 'getppid', 50);
            await runWorkload('fay-raw', 'open', '/etc/hostname', 3);
          },
          options,
        );
        assert.deepEqual(rowsOf(result.final), [{ probe: 'syscall:openat', count: 3 }]);
      }
    });

    it('groups the paths of calls that name their path argument differently under one name, args.path', async () => {
      const result = await around('syscall:openat, syscall:statfs | where comm == "fay-path" | count() by probe, args.path', async () => {
        await runWorkload('fay-path', 'open', '/etc/hostname', 3);
        await runWorkload('fay-path', 'statfs', '/tmp', 2);
      });
      assert.deepEqual(rowsOf(result.final), [
        { probe: 'syscall:openat', 'args.path': '/etc/hostname', count: 3 },
        { probe: 'syscall:statfs', 'args.path': '/tmp', count: 2 },
      ]);
    });

    it('shows each probe the query named, with 0 where it never fired', async () => {
      const result = await around('syscall:getppid, syscall:statfs, tracepoint:syscalls:sys_enter_mq_notify | where comm == "fay-zero" | count() by probe', () =>
        runWorkload('fay-zero', 'getppid', 77),
      );
      assert.deepEqual(rowsOf(result.final), [
        { probe: 'syscall:getppid', count: 77 },
        { probe: 'syscall:statfs', count: 0 },
        { probe: 'tracepoint:syscalls:sys_enter_mq_notify', count: 0 },
      ]);
    });

    it('ranks with top and filters aggregated rows', async () => {
      const result = await around(
        'syscall:getppid | where comm =~ "fay-r*" | n = count() by comm | where n > 100 | top 2 by n',
        async () => {
          await runWorkload('fay-r1', 'getppid', 300);
          await runWorkload('fay-r2', 'getppid', 200);
          await runWorkload('fay-r3', 'getppid', 400);
          await runWorkload('fay-r4', 'getppid', 50);
        },
      );
      assert.deepEqual(rowsOf(result.final), [
        { comm: 'fay-r3', n: 400 },
        { comm: 'fay-r1', n: 300 },
      ]);
    });

  });
}

describe("this machine's probe catalog", () => {
  it('says plainly that kernel functions cannot be probed here, and why', () => {
    assert.throws(
      () => cluster.plan('kernel:vfs_read | count()'),
      (error: unknown) => {
        assert.ok(error instanceof ProbeUnavailableError);
        assert.equal(error.exitCode, 3);
        assert.match(error.message, /kernel:vfs_read cannot be probed on this machine/);
        assert.match(error.message, /CONFIG_KPROBES is not set|no kprobe/);
        assert.match(error.message, /fentry/);
        assert.match(error.hint ?? '', /syscall:read/);
        return true;
      },
    );
  });

  it('refuses a query that needs more kernel probes than one may attach, counting them all, before anything runs', () => {
    assert.throws(
      () => cluster.explain('tracepoint:syscalls:sys_enter_*, tracepoint:syscalls:sys_exit_* | count()'),
      (error: unknown) => {
        assert.ok(error instanceof FayError && error.exitCode === 2, String(error));
        assert.match(error.message, /the query needs (\d+) kernel probes .*; one query may attach at most 512/);
        assert.ok(Number(/needs (\d+)/.exec(error.message)![1]) > 512);
        return true;
      },
    );
    // Each glob alone is under the cap: what counts is the query's total.
    assert.ok(cluster.explain('tracepoint:syscalls:sys_enter_* | count()').includes('sys_enter_openat'));
  });

  it("lists and accepts only tracepoints a program can attach to: not ftrace's own events", async () => {
    const provider = new BpfProvider();
    assert.deepEqual(await provider.list('tracepoint:ftrace:*'), []);
    assert.ok((await provider.list('tracepoint:sched:*')).length > 5);
    assert.throws(() => cluster.plan('tracepoint:ftrace:function | count()'), (error: unknown) => error instanceof ProbeUnavailableError && /ftrace's own events/.test(error.message));
  });

  it("agrees with the unit tests' copy of it: every tracepoint of the copy, with the same fields", () => {
    const copy = new Tracefs(FIXTURE_TRACEFS);
    const here = new Tracefs(tracefsRoot()!);
    const events = copy.listEvents();
    assert.ok(events.length >= 10, `the copy holds ${events.length} events`);
    for (const event of events) {
      const [category, name] = event.split(':') as [string, string];
      assert.deepEqual(here.fields(category, name), copy.fields(category, name), event);
    }
  });
});
