import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { runFay, startFay } from '../testing/cli.js';
import { fayCommand } from '../testing/fay-command.js';
import { bpftraceProcesses, kernelSideProcesses, leavesKernelAsFound, loaderProcesses, processesGone } from '../testing/kernel-state.js';
import { runWorkload } from '../testing/workload.js';

/** Runs a shell pipeline whose first command is the built fay: its exit statuses (PIPESTATUS) and output. */
function pipeline(fayArgs: readonly string[], rest: string): Promise<{ statuses: number[]; stdout: string; stderr: string }> {
  const quoted = [...fayCommand(), ...fayArgs].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const child = spawn('bash', ['-c', `${quoted} | ${rest}; echo "statuses \${PIPESTATUS[*]}" >&2`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', () => {
      const statuses = /statuses ([\d ]+)/.exec(stderr)?.[1]!.trim().split(' ').map(Number) ?? [];
      resolve({ statuses, stdout, stderr: stderr.replace(/statuses [\d ]+\n/, '') });
    }),
  );
}

describe('nothing collected is lost, and exit codes tell the truth', () => {
  const kernel = leavesKernelAsFound();

  it('writes every line to a reader that is slow to start reading', async () => {
    const fast = await runFay(['probes', 'tracepoint:*']);
    assert.equal(fast.code, 0);
    assert.ok(fast.lines.length > 1000, `${fast.lines.length} tracepoints`);
    // The reader takes nothing for a second: fay has written far more than a pipe holds by then.
    const slow = await pipeline(['probes', 'tracepoint:*'], '(sleep 1; wc -l)');
    assert.deepEqual(slow.statuses, [0, 0]);
    assert.equal(Number(slow.stdout.trim()), fast.lines.length);
  });

  it('delivers every event of a query to a reader that stops reading for a while', async () => {
    const fay = startFay(['query', '--json', '--duration', '6s', 'syscall:getppid | where comm == "fay-slow" | select pid']);
    // One call at a time until the first is seen: then the probes are attached.
    const first = fay.nextLine();
    let seen = 0;
    while (!(await Promise.race([first.then(() => true), runWorkload('fay-slow', 'getppid', 1).then(() => false)]))) seen++;
    assert.ok(await first);
    // The reader stops: the pipe fills, and fay must hold on to the rest until it reads again.
    fay.child.stdout!.pause();
    await runWorkload('fay-slow', 'getppid', 20_000);
    await new Promise((r) => setTimeout(r, 5000));
    fay.child.stdout!.resume();
    const { code, lines } = await fay.exit;
    assert.equal(code, 0);
    const events = lines.filter((l) => (JSON.parse(l) as { type: string }).type === 'event');
    // Those of the calls made while attaching that came after the first one, and all 20,000.
    assert.ok(events.length >= 20_000 && events.length <= 20_000 + seen, `${events.length} events`);
  });

  it('ends quietly, with its probes out, when the reader goes away (| head)', async () => {
    const { statuses, stdout, stderr } = await pipeline(['query', '--json', 'interval:20ms | select time'], 'head -2');
    assert.deepEqual(statuses, [0, 0]);
    assert.equal(stdout.trim().split('\n').length, 2);
    assert.equal(stderr, '', 'no complaint about a broken pipe');
    assert.deepEqual(kernelSideProcesses(), []);
  });

  for (const [backend, name] of [['bpftrace', 'bpftrace'], ['native', "Fay's eBPF loader"]] as const) {
    it(`exits non-zero, naming the host and the span it missed, when its kernel probes die mid-query (${backend})`, async () => {
      const fay = startFay(['query', '--backend', backend, '--json', '--duration', '20s', 'syscall:getppid | count() every 200ms']);
      assert.ok(await fay.nextLine(), 'a first window');
      const children = backend === 'bpftrace' ? bpftraceProcesses() : loaderProcesses();
      assert.equal(children.length, 1);
      process.kill(children[0]!, 'SIGKILL');
      const { code, lines, stderr } = await fay.exit;
      await processesGone(children);
      assert.equal(code, 4, stderr);
      const end = JSON.parse(lines[lines.length - 1]!) as { type: string; complete: boolean; hosts_missing: string[]; gaps: { host: string; start_ns: number; end_ns: number; reason: string }[] };
      assert.equal(end.type, 'end');
      assert.equal(end.complete, false);
      assert.equal(end.hosts_missing.length, 1);
      assert.equal(end.gaps.length, 1);
      assert.equal(end.gaps[0]!.host, end.hosts_missing[0]);
      assert.ok(end.gaps[0]!.reason.includes(`${name} was killed by SIGKILL`), end.gaps[0]!.reason);
      assert.ok(end.gaps[0]!.end_ns >= end.gaps[0]!.start_ns);
      assert.match(stderr, /the answer is incomplete \(exit code 4\)/);
    });
  }

  it('prints nothing after the duration while the kernel removes many probes, says so, and exits only once they are out', async () => {
    // 110 tracepoints: the kernel takes ~70 ms to remove each, ~8 s in all.
    const fay = startFay(['query', '--json', '--duration', '2s', 'tracepoint:syscalls:sys_enter_[a-g]* | where comm == "fay-detach" | count() by probe every 500ms']);
    type Result = { type: string; start_ns: number; rows: { probe: string; count: number }[] };
    const first = JSON.parse((await fay.nextLine())!) as Result;
    await runWorkload('fay-detach', 'getppid', 1000);
    const { code, lines, stderr } = await fay.exit;
    // Out already: fay did not leave a bpftrace behind to finish by itself.
    assert.deepEqual(kernelSideProcesses(), []);
    assert.deepEqual(kernel.newPrograms(), []);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /removing its probes: \d+ of \d+ out/);
    const results = [first, ...lines.map((l) => JSON.parse(l) as Result).filter((m) => m.type === 'result')];
    // Four windows in 2 s (and one that straddles the stop), not one every 500 ms while detaching.
    assert.ok(results.length <= 6, `${results.length} windows`);
    for (const r of results) assert.ok(r.start_ns < first.start_ns + 2.5e9, 'no window starts after the duration');
    // And the last counts survived the wait: nothing was killed before it printed its maps.
    const counted = results
      .flatMap((r) => r.rows)
      .filter((row) => row.probe === 'tracepoint:syscalls:sys_enter_getppid')
      .reduce((n, row) => n + row.count, 0);
    assert.equal(counted, 1000);
  });

  it('shows control characters from traced programs as escapes in text, and exactly in NDJSON', async () => {
    const path = '/nonexistent/\x1b[2J\x1b]0;pwned\x07\r\u202e';
    const query = 'syscall:openat | where comm == "fay-esc" | count() by args.filename';
    const text = startFay(['query', '--every', '200ms', '--duration', '2s', query]);
    const json = startFay(['query', '--json', '--every', '200ms', '--duration', '2s', query]);
    await Promise.all([text.nextLine(), json.nextLine()]);
    await runWorkload('fay-esc', 'open', path, 3);
    const [shown, exact] = await Promise.all([text.exit, json.exit]);
    const screen = shown.lines.join('\n');
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(screen, /[\x00-\x08\x0b-\x1f\x7f\u202e]/, 'no control character reaches the terminal');
    assert.ok(screen.includes('/nonexistent/\\x1b[2J\\x1b]0;pwned\\x07\\r\\u202e'), screen);
    const rows = exact.lines.flatMap((l) => (JSON.parse(l) as { rows?: { 'args.filename': string; count: number }[] }).rows ?? []);
    assert.equal(rows.filter((r) => r['args.filename'] === path).reduce((n, r) => n + r.count, 0), 3);
  });

  it('shows control characters of a query and of errors as escapes', async () => {
    const { code, stderr } = await runFay(['query', 'syscall:openat | where comm == "a"\x1b[2J | count()']);
    assert.equal(code, 2);
    assert.ok(!stderr.includes('\x1b'), 'no raw escape in the error');
    assert.match(stderr, /\\x1b\[2J/);
  });
});
