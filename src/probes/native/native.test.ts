import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Cell } from '../../cluster/rows.js';
import { localCluster } from '../../frontend/local-cluster.js';
import { planStages } from '../../plan/planner.js';
import { compileQuery } from '../../query/compile.js';
import { prng } from '../../prng.js';
import { fixtureRegistry } from '../../testing/catalog-fixture.js';
import { startFay } from '../../testing/cli.js';
import { leavesKernelAsFound, loaderProcesses, processesGone } from '../../testing/kernel-state.js';
import { collect, rowsOf } from '../../testing/query.js';
import { waitingWorkload, workloadBinary } from '../../testing/workload.js';
import { Assembler, disassemble, encode } from './asm.js';
import { nativeProgram, NotCovered } from './codegen.js';
import { loaderPath } from './runner.js';

/**
 * Fay's own eBPF backend (issue 24): instructions encoded as the kernel reads them; the queries it
 * covers and why it refuses the rest; then, on real probes and real workloads, every covered query
 * run through both backends on the same workload, with the same exact answer.
 */

const cluster = localCluster('testhost');

describe('eBPF instructions', () => {
  it('encodes as the kernel reads them (include/uapi/linux/bpf.h)', () => {
    const code = new Assembler().aluImm('mov', 0, 0).load('u64', 2, 1, 8).jumpImm('ne', 2, 110, 'out').constant(3, 2n ** 40n).label('out').exit().assemble();
    // mov64 r0, 0 | ldxdw r2, [r1+8] | jne r2, 110, +2 | lddw r3, 2^40 (two slots) | exit
    assert.equal(encode(code).toString('hex'), ['b700000000000000', '7912080000000000', '550202006e000000', '1803000000000000', '0000000000010000', '9500000000000000'].join(''));
    assert.deepEqual(disassemble(code), ['   0: r0 = 0', '   1: r2 = *(u64 *)(r1 + 8)', '   2: if r2 != 110 goto 5', '   3: r3 = 1099511627776 ll', '   5: exit']);
  });
});

describe('what the native backend covers', () => {
  const plan = (query: string) => planStages(compileQuery(query, fixtureRegistry())).probe;
  const generate = (query: string) => nativeProgram(plan(query), { host: 'h', mapEntries: 4096 });

  it('covers counts, sums, extremes and averages of system calls by fields, with filters', () => {
    for (const query of [
      'syscall:openat | count()',
      'syscall:openat | where comm == "x" and (pid > 10 or not tid == 3) | count(), sum(args.flags), min(args.dfd), max(pid), avg(cpu) by comm, pid, uid',
      'syscall:* | count() by probe, host',
      'syscall:read | hist(args.count), lhist(args.fd, 0, 10, 1) by comm',
    ]) {
      const program = generate(query);
      assert.deepEqual(program.programs.map((p) => p.attach), ['sys_enter'], query);
    }
  });

  it('times a call from its entry to its return: two programs, the filter split where each part can be known', () => {
    const program = generate('syscall:read | where comm == "x" and ret > 0 | avg(duration) by comm');
    assert.deepEqual(program.programs.map((p) => p.attach), ['sys_enter', 'sys_exit']);
    const [entry, exit] = program.programs.map((p) => disassemble(p.code, program.maps.map((m) => m.name)).join('\n'));
    assert.match(entry!, /call get_current_comm[\s\S]*map\[fay_starts\][\s\S]*call map_update_elem/);
    assert.doesNotMatch(entry!, /get_current_comm[\s\S]*if r1 s<= 0/, 'ret is not known at the entry');
    assert.match(exit!, /map\[fay_starts\][\s\S]*call map_delete_elem[\s\S]*call ktime_get_ns/);
  });

  it('reads an argument several calls share from its own register, when an earlier one differs', () => {
    // read's buf is char *, write's const char *: count is the third argument of both, in dx (pt_regs + 96).
    const program = generate('syscall:read, syscall:write | sum(args.count)');
    const code = disassemble(program.programs[0]!.code).join('\n');
    assert.match(code, /r3 \+= 96\n.*call probe_read_kernel/);
    assert.doesNotMatch(code, /r3 \+= 104/);
  });

  it('runs a program per tracepoint, on its raw tracepoint, the maps shared and each probe a constant', () => {
    const program = generate('tracepoint:sched:sched_switch, tracepoint:sched:sched_process_exec, tracepoint:kmem:kmalloc | where comm != "x" | count() by probe, comm');
    assert.deepEqual(program.programs.map((p) => p.attach), ['sched_switch', 'sched_process_exec', 'kmalloc']);
    assert.deepEqual(program.probeNames, ['tracepoint:sched:sched_switch', 'tracepoint:sched:sched_process_exec', 'tracepoint:kmem:kmalloc']);
    // One set of maps for all three programs.
    assert.deepEqual(program.maps.map((m) => m.name), ['fay_groups_0', 'fay_groups_1', 'fay_zero', 'fay_phase', 'fay_uncounted']);
    // The third program's probe is 2, stored as a constant (no system call number read from its context).
    const third = disassemble(program.programs[2]!.code).join('\n');
    assert.match(third, /\*\(u64 \*\)\(r10 - \d+\) = 2\n/);
    assert.doesNotMatch(third, /r\d = \*\(u64 \*\)\(r6 \+ 8\)/);
  });

  it('says why it refuses what it does not cover', () => {
    const refusals: [string, RegExp][] = [
      ['tracepoint:sched:sched_process_exec | count() by args.filename', /args.filename is a __data_loc char\[\] \(the native backend reads a tracepoint's integer fields and char arrays\)/],
      ['syscall:read | select ret | record last 10', /record \(the flight recorder\)/],
      ['syscall:openat | where pid + 1 == 3 | count()', /comparison that is not of a field with a constant/],
      ['syscall:openat | where comm =~ "n*" | count()', /a filter of match/],
      ['tracepoint:syscalls:sys_enter_openat | count()', /a system call's own event/],
      ['tracepoint:sched:sched_switch, syscall:openat | count()', /system calls and tracepoints in one query/],
      ['syscall:connect | select ntop(args.uservaddr)', /ships ntop\(args.uservaddr\), an expression/],
    ];
    for (const [query, reason] of refusals) assert.throws(() => generate(query), (e: unknown) => e instanceof NotCovered && reason.test(e.message), query);
  });
});

/** Runs `run` with the native backend's loader replaced by a shell script (a kernel that refuses, a slow loader…). */
async function withStandInLoader(script: string, run: () => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fay-loader-'));
  const loader = join(dir, 'loader');
  writeFileSync(loader, script, { mode: 0o755 });
  process.env.FAY_BPF_LOADER = loader;
  try {
    await run();
  } finally {
    delete process.env.FAY_BPF_LOADER;
    rmSync(dir, { recursive: true });
  }
}

/** Runs a query with a backend around a fresh workload; the final rows, sorted. */
async function answer(query: string, backend: 'bpftrace' | 'native' | 'auto', workload: () => { pid: number; go: () => Promise<unknown> }): Promise<Record<string, Cell>[]> {
  const w = workload();
  const run = cluster.run(query.replace('$PID', String(w.pid)), { providerOptions: { bpf: { backend } } });
  const result = await collect(run, () => w.go());
  return rowsOf(result.final).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** A log2 histogram's buckets from its first non-empty one to its last, from bucket number → count (agg/log2.ts's numbering). */
function log2Buckets(counts: Record<number, number>): { low: number | null; high: number | null; count: number }[] {
  const numbers = Object.keys(counts).map(Number);
  const out = [];
  for (let b = Math.min(...numbers); b <= Math.max(...numbers); b++) out.push({ low: b === 0 ? 0 : 2 ** (b - 1), high: 2 ** b - 1, count: counts[b] ?? 0 });
  return out;
}

/** Rows without the pid/tid-dependent cells (two workloads have two pids). */
const comparable = (rows: Record<string, Cell>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, /pid|tid/.test(k) ? 'pid' : v])));

describe('both backends, the same exact answers, on real probes', () => {
  leavesKernelAsFound({ each: true });
  const getppid = () => waitingWorkload('fay-nat', 'getppid', 3000);
  const opens = () => waitingWorkload('fay-nat', 'open', '/dev/null', 1500);
  const reads = () => waitingWorkload('fay-nat', 'read', 1000, 2000, 4096, 100, 3000);
  const missing = () => waitingWorkload('fay-nat', 'open', '/nonexistent/fay', 700);
  const sleeps = () => waitingWorkload('fay-nat', 'sleep', 3, 12);

  const cases: [string, () => { pid: number; go: () => Promise<unknown> }, Record<string, Cell>[]][] = [
    ['syscall:getppid | where comm == "fay-nat" | count()', getppid, [{ count: 3000 }]],
    ['syscall:getppid | where pid == $PID | count() by comm, pid', getppid, [{ comm: 'fay-nat', pid: 'pid', count: 3000 }]],
    // dfd is AT_FDCWD (-100): a signed int, sign-extended; flags O_RDONLY (the loader's own opens have O_CLOEXEC).
    ['syscall:openat | where comm == "fay-nat" and args.flags == 0 | count(), min(args.dfd), max(args.flags) by comm', opens, [{ comm: 'fay-nat', count: 1500, 'min(args.dfd)': -100, 'max(args.flags)': 0 }]],
    [
      'syscall:read | where comm == "fay-nat" and args.count >= 1000 and args.count <= 5000 | count(), sum(args.count), min(args.count), max(args.count), avg(args.count)',
      reads,
      [{ count: 4, 'sum(args.count)': 10096, 'min(args.count)': 1000, 'max(args.count)': 4096, 'avg(args.count)': 2524 }],
    ],
    ['syscall:getp* | where comm == "fay-nat" and probe == "syscall:getppid" | count() by probe', getppid, [{ probe: 'syscall:getppid', count: 3000 }]],
    // Histograms: log2 (negative, zero, powers of two) and linear (below, steps, above), in one group's value.
    [
      'syscall:read | where comm == "fay-nat" and args.count >= 100 and args.count <= 5000 | hist(args.count), lhist(args.count, 1000, 4000, 1000), count()',
      reads,
      [
        {
          'hist(args.count)': { kind: 'hist', total: 5, buckets: log2Buckets({ 7: 1, 10: 1, 11: 1, 12: 1, 13: 1 }) },
          'lhist(args.count, 1000, 4000, 1000)': { kind: 'hist', total: 5, buckets: [{ low: null, high: 999, count: 1 }, { low: 1000, high: 1999, count: 1 }, { low: 2000, high: 2999, count: 1 }, { low: 3000, high: 3999, count: 1 }, { low: 4000, high: null, count: 1 }] },
          count: 5,
        },
      ],
    ],
    // At the return: ret (ENOENT, -2) and the call's number kept from its entry.
    ['syscall:openat, syscall:close | where comm == "fay-nat" and ret == -2 | count(), min(ret), max(tid) by probe', missing, [
      // A probe the query named that never fired shows, with 0.
      { probe: 'syscall:close', count: 0, 'min(ret)': null, 'max(tid)': 'pid' },
      { probe: 'syscall:openat', count: 700, 'min(ret)': -2, 'max(tid)': 'pid' },
    ]],
  ];
  for (const [query, workload, expected] of cases) {
    it(query, async () => {
      const native = await answer(query, 'native', workload);
      assert.deepEqual(comparable(native), expected, 'native');
      const bpftrace = await answer(query, 'bpftrace', workload);
      assert.deepEqual(comparable(native), comparable(bpftrace), 'native and bpftrace');
      // auto: the named calls each on its own tracepoints (their records read, not the registers).
      assert.deepEqual(comparable(await answer(query, 'auto', workload)), expected, 'auto');
    });
  }

  it("reads tracepoints' own integer fields, each at its own tracepoint's place in the record", async () => {
    const signals = () => waitingWorkload('fay-nat', 'signal', 400);
    // raise(SIGUSR1): sig 10, code SI_TKILL (-6, a signed int).
    const byField = 'tracepoint:signal:signal_generate, tracepoint:signal:signal_deliver | where comm == "fay-nat" and args.sig == 10 | count(), min(args.code), max(args.sig) by probe';
    const expected = [
      { probe: 'tracepoint:signal:signal_deliver', count: 400, 'min(args.code)': -6, 'max(args.sig)': 10 },
      { probe: 'tracepoint:signal:signal_generate', count: 400, 'min(args.code)': -6, 'max(args.sig)': 10 },
    ];
    // pid is at offset 36 of signal_generate's record (the signal's target) and at 8 of task_newtask's.
    const atTheirPlaces = 'tracepoint:signal:signal_generate, tracepoint:task:task_newtask | where comm == "fay-nat" and args.pid == $PID | count() by probe';
    for (const [query, rows] of [[byField, expected], [atTheirPlaces, undefined]] as const) {
      const native = await answer(query, 'native', signals);
      if (rows !== undefined) assert.deepEqual(native, rows, query);
      else assert.deepEqual(native.find((r) => r.probe === 'tracepoint:signal:signal_generate')?.count, 400, JSON.stringify(native));
      assert.deepEqual(native, await answer(query, 'bpftrace', signals), `native and bpftrace: ${query}`);
    }
    assert.match(cluster.explain(byField, { providerOptions: { bpf: { backend: 'native' } } }), /tracepoint:signal:signal_generate \(\d+ instructions\)/);
  });

  it('ships events through a ring buffer: every one, with the values asked for', async () => {
    const query = 'syscall:openat | where comm == "fay-nat" | select comm, args.flags, args.dfd, probe';
    const shipped = async (backend: 'native' | 'bpftrace') => {
      const w = opens();
      const result = await collect(cluster.run(query, { providerOptions: { bpf: { backend } } }), () => w.go());
      return result.events.flatMap((m) => m.rows.map((r) => JSON.stringify(r))).sort();
    };
    const native = await shipped('native');
    assert.equal(native.length, 1500);
    assert.deepEqual(new Set(native), new Set([JSON.stringify(['fay-nat', 0, -100, 'syscall:openat'])]));
    assert.deepEqual(native, await shipped('bpftrace'));
    assert.match(cluster.explain(query, { providerOptions: { bpf: { backend: 'native' } } }), /fay_events: type 27[\s\S]*call ringbuf_output/);
    // More events at once than one of the agent's messages holds (2,000): all of them, in several messages.
    const w = getppid();
    const many = await collect(cluster.run('syscall:getppid | where comm == "fay-nat" | select comm', { providerOptions: { bpf: { backend: 'native' } } }), () => w.go());
    assert.equal(many.events.reduce((n, m) => n + m.rows.length, 0), 3000);
  });

  it('ships within the budget a second, and counts every event it drops', async () => {
    // The glob is the machine stage's: the probe ships comm for it.
    const query = 'syscall:getppid | where comm == "fay-nat" and comm =~ "*y-n?t" | count()';
    const w = getppid();
    const result = await collect(cluster.run(query, { providerOptions: { bpf: { backend: 'native' } }, limits: { maxEventsPerSecond: 1000 } }), () => w.go());
    const counted = rowsOf(result.final)[0]!.count as number;
    assert.ok(counted >= 1000 && counted < 3000, `about 1000 shipped: ${counted}`);
    assert.equal(counted + result.final!.droppedEvents, 3000, 'shipped and dropped add up to every event');
  });

  it('keeps what it can in the kernel and ships the values of the rest (stddev) at once', async () => {
    const query = 'syscall:read | where comm == "fay-nat" and args.count >= 100 and args.count <= 5000 | count(), stddev(args.count), max(args.count)';
    const native = await answer(query, 'native', reads);
    assert.equal(native[0]?.count, 5);
    assert.deepEqual(native, await answer(query, 'bpftrace', reads));
  });

  it("probes a program's functions (uprobes): arguments, return values and durations, a function inside another timed on its own", async () => {
    const binary = workloadBinary();
    const targets = () => waitingWorkload('fay-nat', 'target', 500);
    const nested = () => waitingWorkload('fay-nat', 'nested', 300);
    const byArgument = `uprobe:${binary}:fay_target | where comm == "fay-nat" | count(), sum(args[0]), max(args[0]), min(args[0])`;
    // fay_outer(i) returns fay_target(i) + 1 = 2i + 1: i ≥ 50 of 300 for each.
    const byReturn = `uprobe:${binary}:fay_target, uprobe:${binary}:fay_outer | where comm == "fay-nat" and ret >= 100 | count(), max(ret), min(ret) by probe`;
    const cases = [
      [byArgument, targets, [{ count: 500, 'sum(args[0])': 124750, 'max(args[0])': 499, 'min(args[0])': 0 }]],
      [byReturn, nested, [
        { probe: `uprobe:${binary}:fay_outer`, count: 250, 'max(ret)': 599, 'min(ret)': 101 },
        { probe: `uprobe:${binary}:fay_target`, count: 250, 'max(ret)': 598, 'min(ret)': 100 },
      ]],
    ] as const;
    for (const [query, workload, expected] of cases) {
      const native = await answer(query, 'native', workload);
      assert.deepEqual(native, expected, query);
      assert.deepEqual(native, await answer(query, 'bpftrace', workload), `native and bpftrace: ${query}`);
    }
    // The outer call lasts longer than the inner one it makes.
    const [outer, inner] = await answer(`uprobe:${binary}:fay_target, uprobe:${binary}:fay_outer | where comm == "fay-nat" | avg(duration), count() by probe`, 'native', nested);
    assert.equal(outer?.count, 300);
    assert.ok((outer?.['avg(duration)'] as number) > (inner?.['avg(duration)'] as number) && (inner?.['avg(duration)'] as number) > 0, JSON.stringify([outer, inner]));
    assert.match(cluster.explain(byReturn, { providerOptions: { bpf: { backend: 'native' } } }), /uprobe:.*:fay_target \(return\) \(\d+ instructions\)/);
  });

  it('reads strings: a system call\'s path argument, a tracepoint\'s char array, as keys, in filters and shipped', async () => {
    const signals = () => waitingWorkload('fay-nat', 'signal', 400);
    const cases = [
      ['syscall:openat | where comm == "fay-nat" | count() by args.filename', opens, [{ 'args.filename': '/dev/null', count: 1500 }]],
      ['syscall:openat | where args.filename == "/dev/null" and comm == "fay-nat" | count()', opens, [{ count: 1500 }]],
      ['syscall:openat | where args.filename != "/dev/null" and comm == "fay-nat" | count()', opens, [{ count: 0 }]],
      // signal_generate's comm (the signal's target's) is a char[16] at offset 20 of its record: read in 4-byte loads.
      ['tracepoint:signal:signal_generate | where args.comm == "fay-nat" and args.sig == 10 | count() by args.comm', signals, [{ 'args.comm': 'fay-nat', count: 400 }]],
    ] as const;
    for (const [query, workload, expected] of cases) {
      const native = await answer(query, 'native', workload);
      assert.deepEqual(native, expected, query);
      assert.deepEqual(native, await answer(query, 'bpftrace', workload), `native and bpftrace: ${query}`);
    }
    assert.deepEqual(await answer(cases[0][0], 'auto', opens), cases[0][2], 'auto: on openat\'s own tracepoint, the pointer from its record');
    const w = opens();
    const shipped = await collect(cluster.run('syscall:openat | where comm == "fay-nat" | select args.filename', { providerOptions: { bpf: { backend: 'native' } } }), () => w.go());
    assert.deepEqual(new Set(shipped.events.flatMap((m) => m.rows.map((r) => r[0]))), new Set(['/dev/null']));
  });

  it('samples: one event in four kept where it fires, the count scaled back', async () => {
    const query = 'syscall:getppid | where comm == "fay-nat" | sample 1 in 4 | count() scaled';
    for (const backend of ['native', 'bpftrace'] as const) {
      const [row] = await answer(query, backend, getppid);
      // 750 of 3000 kept on average (σ ≈ 24, ×4 when scaled): within five σ of 3000.
      const count = row?.count as number;
      assert.ok(Math.abs(count - 3000) < 5 * 4 * Math.sqrt(3000 * 0.25 * 0.75) && count % 4 === 0, `${backend}: ${count}`);
    }
  });

  it('counts tracepoints: signals raised and threads made, by probe', async () => {
    const query = 'tracepoint:signal:signal_deliver, tracepoint:task:task_newtask | where comm == "fay-nat" | count() by probe, comm';
    const signals = () => waitingWorkload('fay-nat', 'signal', 400);
    const threads = () => waitingWorkload('fay-nat', 'threads', 25);
    for (const [workload, expected] of [
      [signals, [{ probe: 'tracepoint:signal:signal_deliver', comm: 'fay-nat', count: 400 }]],
      [threads, [{ probe: 'tracepoint:task:task_newtask', comm: 'fay-nat', count: 25 }]],
    ] as const) {
      const native = await answer(query, 'native', workload);
      assert.deepEqual(native, expected, 'native');
      assert.deepEqual(native, await answer(query, 'bpftrace', workload), 'native and bpftrace');
    }
  });

  it('times calls: duration from entry to return, by thread', async () => {
    const query = 'syscall:clock_nanosleep | where comm == "fay-nat" | count(), min(duration), max(duration), avg(duration), sum(ret) by comm';
    for (const backend of ['native', 'bpftrace'] as const) {
      const [row] = await answer(query, backend, sleeps);
      assert.equal(row?.count, 12, backend);
      assert.equal(row?.['sum(ret)'], 0, backend);
      // Each sleep takes at least its 3 ms, and not ten times that.
      assert.ok((row?.['min(duration)'] as number) >= 3e6 && (row?.['max(duration)'] as number) < 30e6, `${backend}: ${JSON.stringify(row)}`);
      assert.ok((row?.['avg(duration)'] as number) >= 3e6, backend);
    }
  });

  it('agrees with bpftrace on random covered queries (filters, keys, aggregates)', async () => {
    const random = prng(24);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const filters = ['comm == "fay-nat"', 'comm != "fay-nat"', 'args.flags == 0', 'args.flags != 0', 'args.dfd < 0', 'uid == 0', 'not (cpu > 1000)', 'tid > 0 or pid == 1'];
    const keys = ['', ' by comm', ' by uid', ' by comm, uid', ' by probe'];
    // Not max() of a negative value: bpftrace 0.17's max starts at 0 (see "the native backend is right where bpftrace is not" below).
    const aggregates = ['count()', 'count(), sum(args.flags)', 'min(args.dfd), max(args.flags)', 'avg(args.dfd), count()'];
    for (let i = 0; i < 8; i++) {
      // Always the workload's comm, so that the machine's other processes do not make the two runs differ.
      const query = `syscall:openat | where comm == "fay-nat" and ${pick(filters)} and ${pick(filters)} | ${pick(aggregates)}${pick(keys)}`;
      const native = await answer(query, 'native', opens);
      const bpftrace = await answer(query, 'bpftrace', opens);
      assert.deepEqual(comparable(native), comparable(bpftrace), query);
    }
  });

  it('counts every event when the loader answers slowly: short periods, stopped as soon as the workload is done', async () => {
    // The loader's answers come slowly here (2 ms a line, through a pipe): each 20 ms period's read
    // takes most of the period, and the stop's detach and last read come in turn with them.
    await withStandInLoader(`#!/bin/sh\n'${loaderPath()}' | while IFS= read -r line; do printf '%s\\n' "$line"; sleep 0.002; done\n`, async () => {
      for (let i = 0; i < 5; i++) {
        const w = getppid();
        const result = await collect(cluster.run('syscall:getppid | where comm == "fay-nat" | count() every 20ms', { providerOptions: { bpf: { backend: 'native' } } }), () => w.go());
        assert.equal(result.results.flatMap(rowsOf).reduce((n, r) => n + (r.count as number), 0), 3000, `run ${i + 1}`);
      }
    });
  });

  it('the native backend is right where bpftrace is not: max() of negative values', async () => {
    const query = 'syscall:openat | where comm == "fay-nat" and args.flags == 0 | max(args.dfd), count()';
    assert.deepEqual(await answer(query, 'native', opens), [{ 'max(args.dfd)': -100, count: 1500 }]);
  });

  it('falls back to bpftrace, with a notice, on a kernel that refuses what the native program needs (auto)', async () => {
    // A stand-in loader for a kernel whose policy refuses raw tracepoints.
    await withStandInLoader('#!/bin/sh\necho "error attach sys_enter: Operation not permitted (errno 1)"\nexit 2\n', async () => {
      const w = getppid();
      // Every system call: auto runs it natively, on the raw sys_enter.
      const result = await collect(cluster.run('syscall:* | where comm == "fay-nat" and probe == "syscall:getppid" | count()', { providerOptions: { bpf: { backend: 'auto' } } }), () => w.go());
      assert.deepEqual(rowsOf(result.final), [{ count: 3000 }]);
      assert.ok(result.notices.some((n) => /native eBPF backend could not run here .*Operation not permitted.*; running on bpftrace instead/.test(n.message)), JSON.stringify(result.notices));
      // Asked for by name, the refusal is the answer.
      await assert.rejects(collect(cluster.run('syscall:getppid | count()', { providerOptions: { bpf: { backend: 'native' } } }), () => Promise.resolve()), /the kernel refused Fay's native probe \(attach\)/);
    });
  });

  it('falls back to bpftrace under auto when the verifier refuses a program, saying it is a bug, with the end of its log', async () => {
    // A stand-in loader for a generator bug: the verifier's refusal, as the loader reports one.
    // The loader escapes the log's newlines (\\n): printf's %s leaves them as they are.
    await withStandInLoader("#!/bin/sh\nprintf '%s\\n' 'error verifier Permission denied (errno 13)\\n0: (b7) r0 = 0\\nR0 !read_ok\\nprocessed 1 insns'\nexit 2\n", async () => {
      const w = getppid();
      const result = await collect(cluster.run('syscall:getppid | where comm == "fay-nat" | count()', { providerOptions: { bpf: { backend: 'auto' } } }), () => w.go());
      assert.deepEqual(rowsOf(result.final), [{ count: 3000 }]);
      assert.ok(
        result.notices.some((n) => /verifier refused the program Fay generated, a bug in Fay: please report it.*R0 !read_ok \| processed 1 insns\); running on bpftrace instead/.test(n.message)),
        JSON.stringify(result.notices),
      );
      // Asked for by name, the whole log is the error.
      await assert.rejects(collect(cluster.run('syscall:getppid | count()', { providerOptions: { bpf: { backend: 'native' } } }), () => Promise.resolve()), /verifier refused a program[\s\S]*R0 !read_ok/);
    });
  });

  it('auto runs every system call on the raw tracepoint, a few named ones each on its own tracepoints', () => {
    assert.match(cluster.explain('syscall:* | count() by probe'), /probe program \(bpf, eBPF \(native\)\)[\s\S]*raw_tracepoint:sys_enter/);
    assert.match(cluster.explain('syscall:getppid, syscall:read | where ret > 0 | count()'), /eBPF \(native\)[\s\S]*tracepoint:syscalls:sys_enter_read \(\d+ instructions\)[\s\S]*tracepoint:syscalls:sys_exit_read \(\d+ instructions\)[\s\S]*and 2 more.*tracepoint:syscalls:sys_enter_getppid, tracepoint:syscalls:sys_exit_getppid/);
    assert.match(cluster.explain('syscall:getppid | count()', { providerOptions: { bpf: { backend: 'native' } } }), /eBPF \(native\)[\s\S]*raw_tracepoint:sys_enter/);
    assert.match(cluster.explain('tracepoint:sched:sched_switch | count()'), /probe program \(bpf, eBPF \(native\)\)[\s\S]*raw_tracepoint:sched_switch/);
    assert.match(cluster.explain('tracepoint:sched:sched_process_exec | count() by args.filename'), /does not cover this query: args.filename is a __data_loc char\[\]/);
  });

  it('leaves nothing loaded when fay is killed with SIGKILL', async () => {
    const fay = startFay(['query', '--backend', 'native', '--json', '-e', '200ms', 'syscall:getppid | count() by comm']);
    // Its first window means the program is in.
    await fay.nextLine();
    const loaders = loaderProcesses();
    assert.ok(loaders.length > 0, 'a loader runs');
    fay.child.kill('SIGKILL');
    await fay.exit;
    await processesGone(loaders);
    // leavesKernelAsFound checks the programs and maps after this test.
  });
});
