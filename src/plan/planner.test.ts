import assert from 'node:assert/strict';
import { compileExpr } from './evaluate.js';
import { describe, it } from 'node:test';
import { Agent } from '../agent/agent.js';
import { EmbeddedCluster } from '../cluster/embedded.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';
import { printExpr } from './print-expr.js';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { finalizeRows } from '../cluster/rows.js';
import { QueryError } from '../errors.js';

const cluster = new EmbeddedCluster(new Agent(fixtureRegistry(), 'testhost'));

describe('planner: what runs where', () => {
  it('pushes the filter and the aggregate into the probe when bpftrace can run them', () => {
    const plan = cluster.plan('syscall:openat | where comm =~ "no*" and ret < 0 | count(), avg(duration) by comm | top 5');
    assert.equal(printExpr(plan.probe.filter!), 'comm =~ "no*" and ret < 0');
    assert.equal(plan.probe.aggregate?.aggregates.length, 2);
    assert.equal(plan.probe.ship, undefined);
    assert.equal(plan.machine.filter, undefined);
    assert.equal(plan.machine.aggregate, undefined);
    assert.deepEqual(
      plan.placements.map((p) => [p.part, p.stage]),
      [
        ['where comm =~ "no*"', 'probe'],
        ['where ret < 0', 'probe'],
        ['count() by comm', 'probe'],
        ['avg(duration) by comm', 'probe'],
        ['merge and finalize', 'cluster'],
        ['top 5 by count', 'cluster'],
      ],
    );
  });

  it('keeps what the kernel cannot evaluate in the machine stage, shipping only the values it needs', () => {
    const plan = cluster.plan('syscall:openat | where comm == "cat" and args.filename =~ "*passwd*" | count() by pid');
    assert.equal(printExpr(plan.probe.filter!), 'comm == "cat"');
    assert.equal(printExpr(plan.machine.filter!), 'args.filename =~ "*passwd*"');
    assert.equal(plan.probe.aggregate, undefined);
    assert.deepEqual(plan.probe.ship?.values.map((v) => v.name).sort(), ['args.filename', 'pid']);
    assert.equal(plan.machine.aggregate?.aggregates[0]?.function, 'count');
    const machine = plan.placements.find((p) => p.part.startsWith('where args.filename'));
    assert.equal(machine?.stage, 'machine');
    assert.match(machine?.reason ?? '', /only exact strings and prefixes/);
  });

  it('ships the selected fields of an event query', () => {
    const plan = cluster.plan('syscall:openat | where ret < 0 | select comm, file = args.filename, ret');
    assert.deepEqual(plan.probe.ship?.values.map((v) => v.name), ['comm', 'args.filename', 'ret']);
    assert.deepEqual(plan.machine.columns?.map((c) => c.name), ['comm', 'file', 'ret']);
  });

  it('places each aggregate on its own: what bpftrace can keep stays in the kernel, the rest ships', () => {
    const plan = cluster.plan('syscall:read | n = count(), quantiles(ret, 0.5), lhist(ret, 0, 100, 10), distinct(pid) by comm');
    assert.deepEqual(plan.probe.aggregate?.aggregates.map((a) => a.function), ['count', 'lhist']);
    assert.deepEqual(plan.probe.aggregate?.slots, [0, 2]);
    assert.deepEqual(plan.machine.aggregate?.aggregates.map((a) => a.function), ['quantiles', 'distinct']);
    assert.deepEqual(plan.machine.aggregate?.slots, [1, 3]);
    assert.deepEqual(plan.probe.ship?.values.map((v) => v.name).sort(), ['comm', 'pid', 'ret']);
    const quantiles = plan.placements.find((p) => p.part.startsWith('quantiles'));
    assert.equal(quantiles?.stage, 'machine');
    assert.match(quantiles?.reason ?? '', /no quantile sketch; the probe ships the values it needs/);
  });

  it('keeps a recording where events fire, and refuses one whose filter cannot run there', () => {
    const plan = cluster.plan('syscall:openat | where ret < 0 | select comm, args.filename | record last 100 dump when comm == "cat"');
    assert.equal(plan.probe.record?.size, 100);
    assert.equal(plan.probe.ship, undefined);
    const query = 'syscall:openat | where comm =~ "*at*" | record last 100';
    assert.throws(
      () => cluster.plan(query),
      (error: unknown) => {
        assert.ok(error instanceof QueryError);
        assert.match(error.message, /record keeps events where they fire, but where comm =~ "\*at\*" cannot run there/);
        assert.equal(query.slice(error.span.start, error.span.end), 'comm =~ "*at*"');
        return true;
      },
    );
  });

  it('explains the stages, the placement and the generated program', () => {
    const text = cluster.explain('syscall:openat | where comm =~ "no*" | count() by comm every 1s');
    for (const expected of [
      'probe stage',
      'machine stage',
      'cluster stage',
      'every 1s, each covering its own period',
      'tracepoint:syscalls:sys_enter_openat',
      'strncmp(comm, "no", 2) == 0',
      '@fay_c[comm] = count();',
      'interval:ms:1000',
    ]) {
      assert.ok(text.includes(expected), `explain lacks ${expected}:\n${text}`);
    }
  });

  it('names the probes a `by probe` answer shows even when they never fire: exact points only, and only by probe alone', () => {
    assert.deepEqual(cluster.plan('syscall:openat, syscall:close, tracepoint:syscalls:sys_enter_read | count() by probe').cluster.namedGroups, [
      ['syscall:openat'],
      ['syscall:close'],
      ['tracepoint:syscalls:sys_enter_read'],
    ]);
    // A glob names no one probe; other keys, or none, leave the groups to what came.
    assert.deepEqual(cluster.plan('syscall:open*, syscall:close | count() by probe').cluster.namedGroups, [['syscall:close']]);
    assert.deepEqual(cluster.plan('syscall:openat, syscall:close | count() by probe, comm').cluster.namedGroups, []);
    assert.deepEqual(cluster.plan('syscall:openat | count()').cluster.namedGroups, []);
  });

  it('shows a named probe that never fired as a row of empty aggregates: count 0, no max', () => {
    const plan = cluster.plan('syscall:openat, syscall:close | count(), max(duration) by probe');
    assert.equal(plan.cluster.output.kind, 'Aggregate');
    if (plan.cluster.output.kind !== 'Aggregate') return;
    const table = new GroupTable(plan.cluster.output.aggregates.map(createAggregate));
    for (const ns of [3, 7, 5]) table.add(['syscall:openat'], [undefined, ns], 0);
    const { rows } = finalizeRows(table, plan.cluster.output, plan.cluster.rowOperations, 1, plan.cluster.namedGroups);
    assert.deepEqual(rows, [
      ['syscall:openat', 3, 7],
      ['syscall:close', 0, null],
    ]);
  });

  it('gives the path a call takes one name, args.path, across calls that name it differently', () => {
    const plan = cluster.plan('syscall:openat, syscall:execve | count() by args.path');
    assert.equal(plan.probe.aggregate?.keys[0]?.name, 'args.path');
    const explained = cluster.explain('syscall:openat, syscall:execve | count() by args.path');
    assert.match(explained, /sys_enter_openat[\s\S]*args->filename/);
    assert.match(explained, /sys_enter_execve[\s\S]*args->filename/);
    // A call that takes no path has none: read, close.
    assert.throws(() => cluster.plan('syscall:openat, syscall:close | count() by args.path'), /args\.path/);
  });
  it('reads members behind struct pointers as the kernel declares them, and strings of argv one by one, never past its end', () => {
    // Read when the call returns, from the pointer saved at its entry (once for both members): an output struct is filled by then.
    const explained = cluster.explain('syscall:clock_nanosleep | count() by args.rqtp.tv_sec, args.rqtp.tv_nsec');
    assert.match(explained, /sys_enter_clock_nanosleep[^}]*@fay_e0\[tid\] = \(uint64\)args->rqtp;/);
    assert.doesNotMatch(explained, /@fay_e1/);
    assert.match(explained, /sys_exit_clock_nanosleep[\s\S]*\(\(struct __kernel_timespec \*\)@fay_e0\[tid\]\)->tv_sec/);
    assert.match(explained, /\(\(struct __kernel_timespec \*\)@fay_e0\[tid\]\)->tv_nsec/);
    assert.match(cluster.explain('syscall:connect | count() by args.uservaddr.sa_family'), /\(\(struct sockaddr \*\)@fay_e0\[tid\]\)->sa_family/);
    // argv's strings are read at the entry: once execve succeeded, the memory they were in is gone.
    assert.match(cluster.explain('syscall:execve | count() by args.argv[0]'), /sys_enter_execve[^}]*str\(\(uint64\)args->argv\[0\]\)/);
    // A char array member is a string in place; a struct pointer member by itself is its address.
    assert.equal(cluster.plan('syscall:connect | count() by args.uservaddr.sa_data').probe.aggregate?.keys[0]?.expr.type, 'str');
    // argv[2] is read only if argv[0] and argv[1] are not the terminator.
    assert.match(
      cluster.explain('syscall:execve | count() by args.argv[2]'),
      /str\(\(\(args->argv\[0\] != 0 && args->argv\[1\] != 0\) \? \(uint64\)args->argv\[2\] : 0\)\)/,
    );
    assert.equal(cluster.plan('syscall:execve | count() by args.envp[0]').probe.aggregate?.keys[0]?.expr.type, 'str');
    // What the kernel does not declare is an unknown field: a member that is not there, a path through a number, an index past 15.
    for (const query of [
      'syscall:clock_nanosleep | count() by args.rqtp.tv_secs',
      'syscall:clock_nanosleep | count() by args.which_clock.x',
      'syscall:execve | count() by args.argv[16]',
      'syscall:openat | count() by args.filename[0]',
    ]) {
      assert.throws(() => cluster.plan(query), /unknown field/, query);
    }
  });
  it('ships join() of argv with each event for the agent to group by, and refuses it on what is not an array of strings', () => {
    const plan = cluster.plan('syscall:execve | count() by cmd = join(args.argv)');
    assert.equal(plan.probe.aggregate, undefined, 'the kernel cannot key a map by a printed join');
    assert.deepEqual(plan.probe.ship?.values.map((v) => v.name), ['join(args.argv)']);
    assert.match(cluster.explain('syscall:execve | select join(args.envp)'), /join\(args->envp\); print\(\(0, 0\)\);/);
    assert.throws(() => cluster.plan('syscall:openat | select join(args.flags)'), /join\(\) takes an array of strings/);
    assert.throws(() => cluster.plan('syscall:execve | select join(args.argv) | record last 10'), /cannot run there/);
    // ntop() alike: the address's bytes first in the event's tuple, written out by the agent.
    assert.equal(cluster.plan('syscall:connect | count() by ntop(args.uservaddr)').probe.aggregate, undefined);
    assert.match(cluster.explain('syscall:connect | select comm, ntop(args.uservaddr)'), /print\(\(buf\(\(uint64\)args->uservaddr, 24\), comm\)\)/);
    assert.throws(() => cluster.plan('syscall:connect | select ntop(args.fd)'), /ntop\(\) takes a socket address/);
  });
  it('matches a stack where one of its frames matches, in the agent for kernel stacks', () => {
    const plan = cluster.plan('profile:99hz | where ustack =~ "main*" | count()');
    assert.equal(plan.probe.filter, undefined, 'bpftrace names frames only when it prints');
    assert.ok(plan.machine.filter);
    const matches = compileExpr(plan.machine.filter);
    assert.equal(matches({ ustack: 'leaf+4\nmain+20\n__libc_start_call_main+128' }), true);
    assert.equal(matches({ ustack: 'leaf+4\nnot_main+20' }), false);
    // Not across frames: a pattern that only the joined lines would match matches nothing.
    assert.equal(compileExpr(cluster.plan('profile:99hz | where ustack =~ "leaf*main*" | count()').machine.filter!)({ ustack: 'leaf+4\nmain+20' }), false);
    assert.throws(() => cluster.plan('profile:99hz | where ustack == "main"'), /ustack is a stack, but "main" is a string/);
  });
});

