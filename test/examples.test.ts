import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { get } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { connect, type Fay, type QuantilesResult, type HistResult } from 'fay';
import { handlerLatency } from '../examples/js-latency.js';
import { kmallocs } from '../examples/kmalloc.js';
import { latencyByProcess } from '../examples/syscall-latency.js';
import { caseStudy } from '../examples/shell-case-study.js';
import { callMix, kmeans, vectors } from '../examples/categorize-by-hand.js';
import { newBpfPrograms, loadedBpfPrograms } from '../src/testing/kernel-state.js';
import { collect, rowsOf } from '../src/testing/query.js';
import { waitingWorkload } from '../src/testing/workload.js';

const run = promisify(execFile);
const example = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

/** A bpftrace one-liner as the independent count: started, and ready once its BEGIN has printed. */
async function bpftraceCount(probe: string, pid: number): Promise<{ stop(): Promise<number> }> {
  const child = spawn('bpftrace', ['-e', `BEGIN { printf("ready\\n"); } ${probe} /pid == ${pid}/ { @n = count(); }`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  let output = '';
  const ready = new Promise<void>((resolve) => lines.on('line', (line) => (line === 'ready' ? resolve() : (output += `${line}\n`))));
  await ready;
  return {
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
      return Number(/@n: (\d+)/.exec(output)?.[1] ?? 0);
    },
  };
}

/** GET a URL on loopback; resolves with the body. */
function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('the examples, on real probes', () => {
  let fay: Fay;
  let programsBefore: Set<number>;
  before(async () => {
    programsBefore = loadedBpfPrograms();
    fay = await connect();
  });
  after(async () => {
    await fay?.close();
  });

  it('kmalloc: counts exactly what a bpftrace one-liner counts for the same process', async () => {
    const workload = waitingWorkload('fay-kx', 'pipe', 400);
    const truth = await bpftraceCount('tracepoint:kmem:kmalloc*', workload.pid);
    const result = await collect(kmallocs(fay, workload.pid).start(), () => workload.go());
    const expected = await truth.stop();
    assert.ok(expected > 0, 'the workload calls kmalloc');
    assert.deepEqual(rowsOf(result.final), [{ count: expected }]);
  });

  it('syscall latency: one histogram per process, holding every call exactly once', async () => {
    const workload = waitingWorkload('fay-sx', 'getppid', 1234);
    const result = await collect(latencyByProcess(fay, 'getppid', 'fay-sx').start(), () => workload.go());
    const rows = rowsOf(result.final);
    assert.deepEqual(rows.map((r) => r.comm), ['fay-sx']);
    const hist = rows[0]!.hist as HistResult;
    assert.equal(hist.total, 1234);
    assert.equal(hist.buckets.reduce((n, b) => n + b.count, 0), 1234);
  });

  it('JavaScript latency: every request to a live demo server, timed to its settling', async () => {
    const server: ChildProcess = spawn(process.execPath, [example('demo-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
    try {
      const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
      const port = Number(/listening on (\d+)/.exec(line)![1]);
      const result = await collect(handlerLatency(fay, server.pid!).start(), async () => {
        for (let i = 0; i < 7; i++) assert.equal(await fetchText(`http://127.0.0.1:${port}/work?ms=15`), 'worked 15 ms\n');
      });
      const [row] = rowsOf(result.final);
      assert.equal(row?.calls, 7);
      const slowest = row.slowest as number;
      assert.ok(slowest >= 15e6, `the slowest call took at least the 15 ms it sleeps (${slowest} ns)`);
      const p50 = (row.latency as QuantilesResult).quantiles[0]!.value!;
      // libuv runs a timer from the loop time cached before the call: a 15 ms sleep may end up to ~1 ms early.
      assert.ok(p50 >= 14e6 * 0.99 && p50 < 1e9, `median ${p50} ns: at least the 15 ms sleep to 1 ms, within the sketch's 1%`);
      // The server still serves, unchanged.
      assert.equal(await fetchText(`http://127.0.0.1:${port}/work?ms=1`), 'worked 1 ms\n');
    } finally {
      server.kill();
    }
  });

  it('the command-shell case study: printing a file to a real pty, the writer and the terminal\'s reader are the top callers', async () => {
    const { table, total, bytes } = await caseStudy(fay, 2);
    const line = (call: string) => table.find((l) => l.call === call);
    const callers = (call: string) => Object.fromEntries((line(call)?.callers ?? []).map((c) => [c.comm, c.count]));
    // cat writes the file in blocks; the terminal (script) reads the pty's other end, in smaller pieces.
    const catWrites = callers('write').cat ?? 0;
    const terminalReads = callers('read').script ?? 0;
    assert.ok(catWrites >= 1 && catWrites <= bytes / 4096, `cat wrote ${bytes} bytes in ${catWrites} writes`);
    assert.ok(terminalReads >= catWrites, `the terminal read them in ${terminalReads} reads`);
    // The top four calls are made by the two of them, and between them are most of the calls.
    const top = table.slice(0, 4);
    assert.deepEqual(new Set(top.flatMap((l) => l.callers.map((c) => c.comm))), new Set(['cat', 'script']));
    assert.ok(top.some((l) => l.call === 'write') && top.some((l) => l.call === 'read'), JSON.stringify(top));
    assert.ok(top.reduce((n, l) => n + l.count, 0) > total / 2);
  });

  it('k-means by hand over a FayLINQ result: two processes of one mix together, the third apart', async () => {
    const mixes = { 'fay-ka1': 'A', 'fay-ka2': 'A', 'fay-kb': 'B' };
    const workloads = Object.entries(mixes).map(([comm, which]) => waitingWorkload(comm, 'mix', which, '/etc/hostname', 40, 20, 50));
    // Counting for longer than they run (a second): every call of theirs is in.
    const mix = await callMix(fay, 3, () => Promise.all(workloads.map((w) => w.go())));
    const ours = new Map([...mix].filter(([comm]) => comm in mixes));
    assert.deepEqual([...ours.keys()].sort(), Object.keys(mixes));
    assert.equal(ours.get('fay-ka1')!.get('syscall:getppid'), 40 * 50);
    const { names, points } = vectors(ours);
    const groups = Object.fromEntries(kmeans(points, 2).map((g, i) => [names[i]!, g]));
    assert.equal(groups['fay-ka1'], groups['fay-ka2']);
    assert.notEqual(groups['fay-kb'], groups['fay-ka1']);
  });

  it('run as scripts: the kmalloc example prints its FayQL and its count', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', example('kmalloc.ts'), '500ms']);
    assert.match(stdout, /^tracepoint:kmem:kmalloc\* \| where time > now\(\) - 5m \| count\(\)\n\d+ kmalloc calls in 500ms\n$/);
  });

  it('leaves no probe behind', () => {
    assert.deepEqual(newBpfPrograms(programsBefore), []);
  });
});
