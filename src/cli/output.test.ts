import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import { QueryPrinter } from './output.js';
import { renderResult } from './render.js';
import { renderTop } from './top.js';

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

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
  it('redraws a live view in place and leaves the final answer on screen', () => {
    const out = sink();
    const printer = new QueryPrinter({ json: false, live: true, title: 'fay: q' }, out.stream, sink().stream);
    printer.message(result([['node', 3]], false));
    printer.message(result([['node', 5], ['bash', 1]], true));
    printer.finish();
    const frames = out.text().split('\x1b[H\x1b[J').filter(Boolean);
    assert.equal(frames.length, 3, 'each result redraws from the top of the screen');
    assert.match(frames[2]!, /^fay: q\n.* vm {2}2 rows\n\ncomm {2}count\nnode {6}5\nbash {6}1\n$/);
  });

  it('appends only complete results on a pipe, and prints NDJSON with --json', () => {
    const plain = sink();
    const pipe = new QueryPrinter({ json: false, live: false, title: '' }, plain.stream, sink().stream);
    pipe.message(result([['node', 3]], false));
    pipe.message(result([['node', 5]], true));
    assert.doesNotMatch(plain.text(), /node {6}3/);
    assert.match(plain.text(), /^--- .* vm {2}1 row\ncomm {2}count\nnode {6}5\n/);

    const json = sink();
    const nd = new QueryPrinter({ json: true, live: false, title: '' }, json.stream, sink().stream);
    nd.message(result([['node', 3]], false));
    nd.message(result([['node', 5]], true));
    const lines = json.text().trim().split('\n').map((l) => JSON.parse(l) as { rows: unknown[]; start: string });
    assert.deepEqual(lines.map((l) => l.rows), [[{ comm: 'node', count: 5 }]]);
    assert.equal(lines[0]!.start, '2026-11-26T10:00:00.000Z');
  });

  it('rolls fay top up by process and by call, per second', () => {
    const top: ResultMessage = {
      ...result([], true),
      startNs: 0,
      endNs: 2e9,
      columns: ['pid', 'comm', 'probe', 'calls'].map((name) => ({ name, role: 'key' as const })),
      rows: [
        [10, 'node', 'syscall:read', 400],
        [10, 'node', 'syscall:write', 200],
        [20, 'bash', 'syscall:read', 100],
      ],
    };
    const screen = renderTop(top, 5).join('\n');
    assert.match(screen, /350 calls\/s from 2 processes, 2 distinct calls/);
    assert.match(screen, /calls\/s {2}pid {2}comm\n {4}300 {3}10 {2}node\n {5}50 {3}20 {2}bash/);
    assert.match(screen, /calls\/s {2}syscall\n {4}250 {2}read\n {4}100 {2}write/);
  });

  it('prints folded stacks with --folded: outermost frame first, a kernel stack unindented, an empty one said', () => {
    const out = sink();
    const printer = new QueryPrinter({ json: false, folded: true, live: false, title: '' }, out.stream, sink().stream);
    const kstack = '\n    do_sys_openat2+87\n    __x64_sys_openat+84\n    do_syscall_64+59\n';
    printer.message(result([['query (db.js:3)\nhandle (app.js:9)', 4]], false));
    printer.message(result([[kstack, 7], ['', 2], ['a;b (x.js:1)\nmain (x.js:5)', 1], ['node', 0]], true));
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
