import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { runFay, startFay } from '../testing/cli.js';
import { bpftraceProcesses, leavesKernelAsFound, loaderProcesses, parentOf, processesGone } from '../testing/kernel-state.js';
import { runWorkload, workloadBinary } from '../testing/workload.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { createAggregate } from '../agg/registry.js';
import { storeName } from '../store/location.js';
import { TraceStore } from '../store/trace-store.js';

function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at .+\(.*:\d+:\d+\)$/m, `a user error printed a stack trace:\n${stderr}`);
}

/** Sums a column over the rows of every NDJSON result line that pass a filter. */
function total(lines: readonly string[], column: string, keep: (row: Record<string, unknown>) => boolean = () => true): number {
  return lines
    .map((l) => JSON.parse(l) as { type: string; rows?: Record<string, unknown>[] })
    .filter((m) => m.type === 'result')
    .flatMap((m) => m.rows ?? [])
    .filter(keep)
    .reduce((n, r) => n + (r[column] as number), 0);
}

describe('the fay command', () => {
  const kernel = leavesKernelAsFound();

  it('prints a syntax error with a caret, exit code 2, no stack trace', async () => {
    const { code, stderr } = await runFay(['query', 'syscall:openat | where comm == | count()']);
    assert.equal(code, 2);
    assert.match(stderr, /error at line 1, column 32: expected an expression, found "\|"/);
    assert.match(stderr, /1 \| syscall:openat \| where comm == \| count\(\)\n {35}\^/);
    noStackTrace(stderr);
  });

  it('says why kernel functions cannot be probed here, exit code 3', async () => {
    const { code, stderr } = await runFay(['query', 'kernel:vfs_read | count()']);
    assert.equal(code, 3);
    assert.match(stderr, /kernel:vfs_read cannot be probed on this machine: .*kprobes.*fentry/);
    assert.match(stderr, /use a tracepoint instead, e.g. syscall:read/);
    noStackTrace(stderr);
  });

  it('tells a user who is not root what to do', async () => {
    const { code, stderr } = await runFay(['query', 'syscall:openat | count()'], {
      wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'],
    });
    assert.equal(code, 3);
    assert.match(stderr, /kernel probes need root/);
    assert.match(stderr, /run Fay as root/);
    noStackTrace(stderr);
  });

  it('tells the user when bpftrace is missing', async () => {
    const { code, stderr } = await runFay(['query', 'syscall:openat | count()'], { env: { ...process.env, FAY_BPFTRACE: '/nonexistent/bpftrace' } });
    assert.equal(code, 3);
    assert.match(stderr, /bpftrace is not installed/);
    assert.match(stderr, /apt-get install -y bpftrace/);
  });

  it('rejects bad flags with exit code 2', async () => {
    const { code, stderr } = await runFay(['query', '--duration', 'soon', 'syscall:openat | count()']);
    assert.equal(code, 2);
    assert.match(stderr, /--duration takes a duration such as 5s/);
    // Zero is a duration only where it means something: --keep-edits 0 takes the edits out at the end.
    const zero = await runFay(['query', '--duration', '0s', 'syscall:openat | count()']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--duration must be longer than zero/);
    const keep = await runFay(['query', '--keep-edits', 'forever', 'syscall:openat | count()']);
    assert.equal(keep.code, 2);
    assert.match(keep.stderr, /--keep-edits takes a duration such as 5s/);
    const long = await runFay(['query', '--keep-edits', '48h', 'syscall:openat | count()']);
    assert.equal(long.code, 2);
    assert.match(long.stderr, /--keep-edits can be at most 24h/);
    // What a query keeps: a log's name, and a retention only with one.
    const unnamed = await runFay(['query', '--retain', '7d', 'syscall:openat | count()']);
    assert.equal(unnamed.code, 2);
    assert.match(unnamed.stderr, /--retain says how long --persist keeps a log: give --persist <name> too/);
    const badName = await runFay(['query', '--persist', '../etc', 'syscall:openat | count()']);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--persist takes a log name/);
  });

  it('says a usage error as Fay says every error, and how to give a query that starts with a dash', async () => {
    const unknown = await runFay(['query', '--bogus', 'syscall:openat | count()']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^fay: unknown option '--bogus'\n/);
    const dashed = await runFay(['explain', '-1 | count()']);
    assert.equal(dashed.code, 2);
    assert.match(dashed.stderr, /^fay: unknown option '-1 \| count\(\)'\n.*goes after "--"/);
    // After --, it is the query: read, and refused for what it is.
    const read = await runFay(['explain', '--', '-1 | count()']);
    assert.equal(read.code, 2);
    assert.match(read.stderr, /^fay: error at line 1, column 1/);
  });

  for (const backend of ['bpftrace', 'native'] as const) {
    /** The processes that hold the query's kernel probes. */
    const kernelSide = () => (backend === 'bpftrace' ? bpftraceProcesses() : loaderProcesses());

    it(`stops cleanly on Ctrl-C with every event counted and nothing left behind (${backend})`, async () => {
      const fay = startFay(['query', '--backend', backend, '--json', '--every', '100ms', 'syscall:getppid | where comm == "fay-cli" | count()']);
      assert.ok(await fay.nextLine(), 'a first window arrives once the probes are attached');
      const children = kernelSide();
      assert.equal(children.length, 1, `one ${backend} process runs the query`);
      await runWorkload('fay-cli', 'getppid', 4321);
      fay.child.kill('SIGINT');
      const { code, lines } = await fay.exit;
      assert.equal(code, 0);
      assert.equal(total(lines, 'count'), 4321);
      // Gone before fay exits, with its programs: fay waited for them.
      assert.deepEqual(children.filter((pid) => parentOf(pid) !== 0), []);
      assert.deepEqual(kernel.newPrograms(), []);
    });

    it(`leaves no probe behind when it is killed outright (${backend})`, async () => {
      const fay = startFay(['query', '--backend', backend, '--json', '--every', '100ms', 'syscall:getppid | count()']);
      assert.ok(await fay.nextLine());
      const children = kernelSide();
      assert.equal(children.length, 1, `one ${backend} process runs the query`);
      fay.child.kill('SIGKILL');
      await fay.exit;
      await processesGone(children);
      // leavesKernelAsFound checks, after this file, that its programs and maps went with it.
    });
  }

  it('runs for --duration and exits by itself', async () => {
    const { code, lines } = await runFay(['query', '--json', '--duration', '300ms', 'interval:50ms | count()']);
    assert.equal(code, 0);
    const types = lines.map((l) => (JSON.parse(l) as { type: string }).type);
    assert.deepEqual(types, ['result', 'end'], 'one final result, then the end');
    assert.equal((JSON.parse(lines[1]!) as { complete: boolean }).complete, true);
    assert.ok(total(lines, 'count') >= 2);
  });

  it('shows system calls per process and per call with fay top', async () => {
    const fay = startFay(['top', '--json', '--every', '200ms']);
    assert.ok(await fay.nextLine());
    await runWorkload('fay-top', 'getppid', 6000);
    fay.child.kill('SIGINT');
    const { code, lines } = await fay.exit;
    assert.equal(code, 0);
    assert.equal(total(lines, 'calls', (r) => r.comm === 'fay-top' && r.probe === 'syscall:getppid'), 6000);
  });

  it('draws histograms with bars, as bpftrace does', async () => {
    const fay = startFay(['query', '--every', '100ms', 'syscall:read | where comm == "fay-bars" | hist(ret)']);
    assert.ok(await fay.nextLine());
    await runWorkload('fay-bars', 'read', 100, 100, 100, 5000);
    fay.child.kill('SIGINT');
    const { code, lines } = await fay.exit;
    assert.equal(code, 0);
    const text = lines.join('\n');
    assert.match(text, /\[64, 128\)\s+3 \|@{52}\|/);
    assert.match(text, /\[4K, 8K\)\s+1 \|@{17} {35}\|/);
  });

  it('writes a CPU profile as pprof that go tool pprof reads, the spinning function first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fay-pprof-'));
    try {
      const out = join(dir, 'cpu.pb.gz');
      // Stacks are named while the process lives: the query ends (and writes) before the workload does.
      const workload = runWorkload('fay-pp', 'spin', 5000);
      const fay = await runFay(['query', '--duration', '2s', '--pprof', out, 'profile:99hz | where comm == "fay-pp" | count() by ustack']);
      await workload;
      assert.equal(fay.code, 0, fay.stderr);
      const samples = Number(/wrote .*cpu\.pb\.gz: (\d+) samples in \d+ stacks/.exec(fay.stderr)?.[1]);
      assert.ok(samples >= 100, fay.stderr);
      const top = spawnSync('go', ['tool', 'pprof', '-top', '-sample_index=samples', out], { encoding: 'utf8', env: { ...process.env, HOME: dir, GOCACHE: join(dir, 'go') } });
      assert.equal(top.status, 0, top.stderr);
      assert.match(top.stdout, new RegExp(`Showing nodes accounting for ${samples}, 100% of ${samples} total`), top.stdout);
      const rows = top.stdout.split('\n').filter((l) => /^\s+\d+\s+[\d.]+%/.test(l));
      assert.match(rows[0] ?? '', /\sspin_loop$/, top.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses --pprof before running a query whose rows are not stacks and counts', async () => {
    const refused = await runFay(['query', '--pprof', '/tmp/never.pb.gz', 'syscall:getppid | select pid']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--pprof takes aggregated rows, and this query streams events/);
    noStackTrace(refused.stderr);
  });

  it('lists probe points: system calls with their arguments, functions of a binary, and what is unavailable', async () => {
    const syscalls = await runFay(['probes', 'syscall:open*']);
    assert.equal(syscalls.code, 0);
    assert.ok(syscalls.lines.some((l) => /^syscall:openat\s+\(dfd, filename, flags, mode\)/.test(l)), syscalls.lines.join('\n'));
    const functions = await runFay(['probes', `uprobe:${workloadBinary()}:fay_*`]);
    assert.deepEqual(
      functions.lines.map((l) => l.split(/\s+/)[0]),
      ['fay_outer', 'fay_target', 'fay_thread_start'].map((f) => `uprobe:${workloadBinary()}:${f}`),
    );
    const kernel = await runFay(['probes', 'kernel:*']);
    assert.match(kernel.lines.join('\n'), /kernel:<function>\s+\[unavailable\] unavailable here: .*kprobes/);
  });

  it('explains a query: stages, placement and the generated program, on either backend', async () => {
    const query = 'syscall:openat | where comm == "cat" | count() by args.filename';
    const native = await runFay(['explain', query]);
    assert.equal(native.code, 0);
    const text = native.lines.join('\n');
    assert.match(text, /probe stage/);
    // The default, auto: Fay's own instructions on openat's tracepoint, the file name read as bpftrace reads it.
    assert.match(text, /eBPF \(native\)[\s\S]*tracepoint:syscalls:sys_enter_openat \(\d+ instructions\)[\s\S]*call probe_read_user_str/);
    const bpftrace = await runFay(['explain', '--backend', 'bpftrace', query]);
    assert.match(bpftrace.lines.join('\n'), /tracepoint:syscalls:sys_enter_openat \/comm == "cat"\/[\s\S]*@fay_c\[str\(args->filename\)\] = count\(\);/);
  });
  it('keeps a standing query until --until, and lists, exports and removes what it kept with fay store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fay-cli-store-'));
    const env = { ...process.env, FAY_STORE_DIR: join(dir, 'store'), FAY_RUN_DIR: join(dir, 'run') };
    try {
      // A standing query on this machine's agent (started in the background), until 1 s has passed.
      const kept = await runFay(['query', 'interval:50ms | count() every 200ms', '--until', '1s', '--persist', 'ticks', '--retain', '7d'], { env });
      assert.equal(kept.code, 0, kept.stderr);
      const agentPid = Number(/\(pid (\d+);/.exec(kept.stderr)?.[1]);
      assert.ok(agentPid > 0, kept.stderr);
      // The agent holds the store while it runs: it ends the query at its --until, and is stopped.
      for (let i = 0; i < 100 && /ticks/.test((await runFay(['ps'], { env })).lines.join('\n')); i++) await new Promise((r) => setTimeout(r, 100));
      process.kill(agentPid, 'SIGTERM');
      await processesGone([agentPid]);
      const listed = await runFay(['store', 'ls', '--json'], { env });
      assert.equal(listed.code, 0, listed.stderr);
      const [log] = listed.lines.map((l) => JSON.parse(l) as { name: string; kind: string; rows: number; retainMs: number });
      assert.deepEqual([log!.name, log!.kind, log!.retainMs], ['ticks', 'windows', 7 * 86_400_000]);
      const out = join(dir, 'parquet');
      const exported = await runFay(['store', 'export', 'ticks', '--parquet', out], { env });
      assert.equal(exported.code, 0, exported.stderr);
      assert.ok(readdirSync(out).some((d) => d.startsWith('host=')), 'partitioned by host');
      const reader = await DuckDBInstance.create(':memory:');
      const db = await reader.connect();
      const read = await db.runAndReadAll(`SELECT sum(CAST(json_extract(states, '$[0]') AS BIGINT)) FROM read_parquet('${out}/*/*/*.parquet')`);
      const exportedTicks = Number(read.getRows()[0]![0]);
      db.closeSync();
      reader.closeSync();
      // The same as the store holds: the 50 ms ticks of the second before --until.
      const store = await TraceStore.open(join(dir, 'store'), storeName());
      const storedTicks = (await store.windows('ticks', [createAggregate({ function: 'count', params: [] })])).reduce((n, w) => n + w.table.finalize().reduce((m, g) => m + (g.values[0] as number), 0), 0);
      store.close();
      assert.equal(exportedTicks, storedTicks, 'the ticks stored, read back from Parquet');
      assert.ok(storedTicks >= 5 && storedTicks <= 21, `${storedTicks} ticks of 50 ms stored in the second before --until (less the agent start and attach)`);
      const missing = await runFay(['store', 'rm', 'tocks'], { env });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /no stored log is named tocks[\s\S]*ticks/);
      assert.equal((await runFay(['store', 'rm', 'ticks'], { env })).code, 0);
      assert.match((await runFay(['store', 'ls'], { env })).lines.join('\n'), /nothing is stored here/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
