import assert from 'node:assert/strict';
import { get } from 'node:http';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { exportProblem, labelValue, metricName } from './answer-metrics.js';
import { listenAddress, PrometheusSink } from './prometheus.js';

/** The Prometheus endpoint of a query's answer, without a kernel: known results in, the scraped text out. */

function scrape(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) =>
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject),
  );
}

/** The samples of a scrape: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const at = l.lastIndexOf(' ');
        return [l.slice(0, at), Number(l.slice(at + 1))] as const;
      }),
  );
}

const quiet = () => new Writable({ write: (_c, _e, cb) => cb() });

function window(startS: number, endS: number, rows: ResultMessage['rows'], complete = true): ResultMessage {
  return {
    kind: 'result',
    columns: [
      { name: 'comm', role: 'key' },
      { name: 'count', role: 'aggregate', function: 'count' },
      { name: 'hist(duration)', role: 'aggregate', function: 'hist', unit: 'ns' },
      { name: 'sum(duration)', role: 'aggregate', function: 'sum', unit: 'ns' },
      { name: 'max(ret)', role: 'aggregate', function: 'max' },
    ],
    rows,
    startNs: startS * 1e9,
    endNs: endS * 1e9,
    complete,
    hosts: ['a', 'b'],
    foldedGroups: 3,
    droppedEvents: 0,
    uncountedEvents: 0,
    coverage: { expected: ['a', 'b', 'c'], reporting: ['a', 'b'], late: [], missing: ['c'] },
  };
}

const hist = (counts: [number, number, number][]) => ({ kind: 'hist' as const, buckets: counts.map(([low, high, count]) => ({ low, high, count })), total: counts.reduce((n, c) => n + c[2], 0) });

describe('the Prometheus endpoint', () => {
  it('names metrics and labels as Prometheus takes them, and mends text that is not valid UTF-8', () => {
    assert.equal(metricName('sum(args.count)'), 'sum_args_count');
    assert.equal(metricName('9lives'), '_9lives');
    assert.equal(labelValue('ok "quoted"\n'), 'ok "quoted"\n');
    assert.equal(labelValue('bad \uD800 half'), 'bad \uFFFD half');
    assert.deepEqual(listenAddress(':9464'), { host: undefined, port: 9464 });
    assert.deepEqual(listenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(listenAddress('[::1]:9464'), { host: '::1', port: 9464 });
    assert.throws(() => listenAddress('nowhere'), UsageError);
    assert.match(exportProblem('--prometheus', undefined) ?? '', /streams events/);
    assert.match(exportProblem('--prometheus', ['topk']) ?? '', /exports count, sum/);
    assert.equal(exportProblem('--prometheus', ['count', 'topk']), undefined);
  });

  it('adds windows up into counters and histograms (seconds for durations), keeps the latest gauge, and says the coverage', async () => {
    const sink = await PrometheusSink.start({ host: '127.0.0.1', port: 0 }, { err: quiet() });
    try {
      await sink.export(window(0, 1, [['sh', 3, hist([[1024, 2047, 2], [2048, 4095, 1]]), 5000, 7]]));
      await sink.export(window(1, 2, [['sh', 2, hist([[2048, 4095, 2]]), 6000, 4], ['a "b"\\', 1, hist([[0, 0, 1]]), 0, 1]]));
      // A sliding window overlapping the last one taken adds nothing; a running snapshot of a window neither.
      await sink.export(window(1.5, 2.5, [['sh', 100, hist([[1, 1, 100]]), 1, 1]]));
      const { status, type, body } = await scrape(sink.url);
      assert.equal(status, 200);
      assert.match(type, /^text\/plain; version=0\.0\.4/);
      const s = samples(body);
      assert.equal(s.get('fay_count{comm="sh"}'), 5);
      assert.equal(s.get('fay_count{comm="a \\"b\\"\\\\"}'), 1);
      assert.equal(s.get('fay_max_ret{comm="sh"}'), 4);
      assert.equal(s.get('fay_hist_duration_seconds_bucket{comm="sh",le="0.000002047"}'), 2);
      assert.equal(s.get('fay_hist_duration_seconds_bucket{comm="sh",le="0.000004095"}'), 5);
      assert.equal(s.get('fay_hist_duration_seconds_bucket{comm="sh",le="+Inf"}'), 5);
      assert.equal(s.get('fay_hist_duration_seconds_count{comm="sh"}'), 5);
      assert.equal(s.get('fay_hist_duration_seconds_sum{comm="sh"}'), 0.000011);
      assert.equal(s.get('fay_sum_duration_seconds{comm="sh"}'), 0.000011);
      assert.equal(s.get('fay_hosts_expected'), 3);
      assert.equal(s.get('fay_hosts_reporting'), 2);
      assert.equal(s.get('fay_hosts_missing'), 1);
      assert.equal(s.get('fay_folded_groups'), 3);
      assert.match(body, /# TYPE fay_count counter/);
      assert.match(body, /# TYPE fay_hist_duration_seconds histogram/);
      assert.match(body, /# TYPE fay_max_ret gauge/);
    } finally {
      await sink.shutdown();
    }
  });

  it("takes a query's running totals as they are, not added up", async () => {
    const sink = await PrometheusSink.start({ host: '127.0.0.1', port: 0 }, { err: quiet() });
    try {
      await sink.export(window(0, 1, [['sh', 3, hist([[1, 1, 3]]), 3, 1]], false));
      await sink.export(window(0, 2, [['sh', 8, hist([[1, 1, 8]]), 8, 1]], false));
      await sink.export(window(0, 3, [['sh', 9, hist([[1, 1, 9]]), 9, 1]], true));
      const s = samples((await scrape(sink.url)).body);
      assert.equal(s.get('fay_count{comm="sh"}'), 9);
      assert.equal(s.get('fay_hist_duration_seconds_count{comm="sh"}'), 9);
    } finally {
      await sink.shutdown();
    }
  });

  it('refuses a port in use before anything runs', async () => {
    const first = await PrometheusSink.start({ host: '127.0.0.1', port: 0 }, { err: quiet() });
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(PrometheusSink.start({ host: '127.0.0.1', port }, { err: quiet() }), (e: unknown) => e instanceof EnvironmentError && /in use|EADDRINUSE/.test(e.message));
    } finally {
      await first.shutdown();
    }
  });
});
