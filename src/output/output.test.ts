import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { textStream as sink } from '../testing/text-stream.js';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import { terminalSink } from './choose.js';
import { renderResult } from './render.js';
import { fanOut, type OutputSink } from './sink.js';

const result = (rows: (string | number)[][], complete: boolean): ResultMessage => ({
  kind: 'result',
  columns: [
    { name: 'comm', role: 'key' },
    { name: 'count', role: 'aggregate', function: 'count' },
  ],
  rows,
  startNs: Date.UTC(2026, 10, 26, 10, 0, 0) * 1e6,
  endNs: Date.UTC(2026, 10, 26, 10, 0, 1) * 1e6,
  complete,
  hosts: ['vm'],
  foldedGroups: 0,
  droppedEvents: 0,
  uncountedEvents: 0,
});

describe('terminal output', () => {
  it('redraws a live view in place and leaves the final answer on screen', async () => {
    const out = sink();
    const live = terminalSink({ json: false, live: true, title: 'fay: q' }, out.stream, sink().stream);
    await live.export(result([['node', 3]], false));
    await live.export(result([['node', 5], ['bash', 1]], true));
    await live.shutdown();
    const frames = out.text().split('\x1b[H\x1b[J').filter(Boolean);
    assert.equal(frames.length, 3, 'each result redraws from the top of the screen');
    assert.match(frames[2]!, /^fay: q\n.* vm {2}2 rows\n\ncomm {2}count\nnode {6}5\nbash {6}1\n$/);
  });

  it('appends only complete results on a pipe, and prints NDJSON with --json, both from one query at once', async () => {
    const plain = sink();
    const json = sink();
    const both = fanOut([
      terminalSink({ json: false, live: false, title: '' }, plain.stream, sink().stream),
      terminalSink({ json: true, live: false, title: '' }, json.stream, sink().stream),
    ]);
    await both.export(result([['node', 3]], false));
    await both.export(result([['node', 5]], true));
    await both.shutdown();
    assert.doesNotMatch(plain.text(), /node {6}3/);
    assert.match(plain.text(), /^--- .* vm {2}1 row\ncomm {2}count\nnode {6}5\n/);

    const lines = json.text().trim().split('\n').map((l) => JSON.parse(l) as { rows: unknown[]; start: string });
    assert.deepEqual(lines.map((l) => l.rows), [[{ comm: 'node', count: 5 }]]);
    assert.equal(lines[0]!.start, '2026-11-26T10:00:00.000Z');
  });

  it('gives every sink each message when one of them fails, and then says that it failed', async () => {
    const seen: string[] = [];
    const broken: OutputSink = {
      export: (m) => Promise.reject(new Error(`store full at ${m.kind}`)),
      shutdown: () => Promise.resolve(),
    };
    const counting: OutputSink = {
      export: (m) => {
        seen.push(m.kind);
        return Promise.resolve();
      },
      shutdown: () => Promise.resolve(),
    };
    const both = fanOut([broken, counting]);
    await assert.rejects(both.export(result([['node', 5]], true)), /store full at result/);
    await assert.rejects(both.export({ kind: 'notice', host: 'vm', message: 'late' }), /store full at notice/);
    assert.deepEqual(seen, ['result', 'notice']);
  });

  it('prints folded stacks with --folded: outermost frame first, a kernel stack unindented, an empty one said', async () => {
    const out = sink();
    const folded = terminalSink({ json: false, folded: true, live: false, title: '' }, out.stream, sink().stream);
    const kstack = '\n    do_sys_openat2+87\n    __x64_sys_openat+84\n    do_syscall_64+59\n';
    await folded.export(result([['query (db.js:3)\nhandle (app.js:9)', 4]], false));
    await folded.export(result([[kstack, 7], ['', 2], ['a;b (x.js:1)\nmain (x.js:5)', 1], ['node', 0]], true));
    assert.equal(out.text(), 'do_syscall_64+59;__x64_sys_openat+84;do_sys_openat2+87 7\n(empty) 2\nmain (x.js:5);a:b (x.js:1) 1\n');
  });

  it('shows durations (ns) as times: a table, quantiles, a histogram’s buckets', () => {
    const columns = [
      { name: 'comm', role: 'key' as const },
      { name: 'count', role: 'aggregate' as const, function: 'count' as const },
      { name: 'avg(duration)', role: 'aggregate' as const, function: 'avg' as const, unit: 'ns' as const },
      { name: 'q', role: 'aggregate' as const, function: 'quantiles' as const, unit: 'ns' as const },
    ];
    const quantiles = { kind: 'quantiles' as const, count: 3, relativeError: 0.01, quantiles: [{ p: 0.5, value: 845 }, { p: 0.99, value: 999_700 }] };
    const table = renderResult({ ...result([], true), columns, rows: [['node', 3, 1_234_567.8, quantiles]] });
    assert.deepEqual(table, ['comm  count  avg(duration)  q', 'node      3         1.23ms  p50=845ns p99=1.00ms']);
    const hist = { kind: 'hist' as const, total: 7, buckets: [{ low: 262_144, high: 524_287, count: 2 }, { low: 1_048_576, high: null, count: 5 }] };
    const blocks = renderResult({
      ...result([], true),
      columns: [{ name: 'hist(duration)', role: 'aggregate', function: 'hist', unit: 'ns' }],
      rows: [[hist]],
    });
    assert.match(blocks.join('\n'), /^ {2}\[262µs, 524µs\) 2 \|@+ *\|\n {2}\[1\.05ms, \.\.\.\) {2}5 \|@{52}\|$/m);
  });
});
