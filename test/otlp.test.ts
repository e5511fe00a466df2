import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { exponentialRelativeError } from '../src/output/exponential-histogram.js';
import { runFay, startFay } from '../src/testing/cli.js';
import { leavesKernelAsFound } from '../src/testing/kernel-state.js';
import { freePort } from '../src/testing/nats-server.js';
import { waitingWorkload } from '../src/testing/workload.js';

/**
 * `fay query --otlp` against a receiver in the test that decodes each request with the
 * OpenTelemetry protocol's definitions (the code generated from opentelemetry-proto that
 * @opentelemetry/otlp-transformer ships): the exact count of a known workload, with its label and
 * the host's resource attribute; and an endpoint that is down, which loses no part of the answer.
 */

interface KeyValue { key: string; value: { stringValue?: string; intValue?: number | string; doubleValue?: number } }
interface NumberPoint { attributes: KeyValue[]; asDouble?: number; asInt?: number | string }
interface ExponentialPoint { attributes: KeyValue[]; count?: number; sum?: number; scale?: number; zeroCount?: number; positive?: { offset?: number; bucketCounts?: number[] } }
/** As toObject gives them: an empty list, a zero, is left out. */
interface Metric {
  name: string;
  sum?: { dataPoints?: NumberPoint[]; isMonotonic: boolean; aggregationTemporality: number };
  gauge?: { dataPoints?: NumberPoint[] };
  exponentialHistogram?: { dataPoints?: ExponentialPoint[]; aggregationTemporality: number };
}
interface Request { resourceMetrics: { resource: { attributes: KeyValue[] }; scopeMetrics: { metrics: Metric[] }[] }[] }

const proto = (createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: { decode(b: Uint8Array): unknown; toObject(m: unknown, o: object): Request } } } } } };
}).opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;

const attribute = (kvs: KeyValue[], key: string) => kvs.find((kv) => kv.key === key)?.value;
const pointValue = (p: NumberPoint) => Number(p.asDouble ?? p.asInt);

describe('fay query --otlp, to a receiver that decodes OTLP', () => {
  leavesKernelAsFound();
  let server: Server;
  const requests: Request[] = [];
  const heard: (() => void)[] = [];
  let url: string;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        assert.equal(req.url, '/v1/metrics');
        assert.equal(req.headers['content-type'], 'application/x-protobuf');
        requests.push(proto.toObject(proto.decode(Buffer.concat(chunks)), { longs: Number, defaults: false }));
        for (const h of heard.splice(0)) h();
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Waits for a request that passes `test`, among those received and those to come. */
  const request = async (test: (r: Request) => boolean): Promise<Request> => {
    for (;;) {
      const found = requests.find(test);
      if (found) return found;
      await new Promise<void>((resolve) => heard.push(resolve));
    }
  };

  it('sends the exact count of a known workload as a cumulative sum, with its label and the host', async () => {
    const workload = waitingWorkload('fay-otlp', 'getppid', 4321);
    const fay = startFay(['query', '--otlp', url, 'syscall:getppid | where comm == "fay-otlp" | count() by comm']);
    // Its first result sent means its probes are in.
    await request(() => true);
    await workload.go();
    const counted = (r: Request) =>
      r.resourceMetrics[0]!.scopeMetrics[0]!.metrics.find((m) => m.name === 'fay_count')?.sum?.dataPoints?.find((p) => attribute(p.attributes, 'comm')?.stringValue === 'fay-otlp');
    const found = await request((r) => counted(r) !== undefined && pointValue(counted(r)!) === 4321);
    const sum = found.resourceMetrics[0]!.scopeMetrics[0]!.metrics.find((m) => m.name === 'fay_count')!.sum!;
    assert.equal(sum.isMonotonic, true);
    assert.equal(sum.aggregationTemporality, 2, 'cumulative');
    const resource = found.resourceMetrics[0]!.resource.attributes;
    assert.equal(attribute(resource, 'host.name')?.stringValue, hostname());
    assert.equal(attribute(resource, 'service.name')?.stringValue, 'fay');
    assert.equal(attribute(resource, 'fay.query')?.stringValue, 'syscall:getppid | where comm == "fay-otlp" | count() by comm');
    const reporting = found.resourceMetrics[0]!.scopeMetrics[0]!.metrics.find((m) => m.name === 'fay_hosts_reporting')!.gauge!.dataPoints![0]!;
    assert.equal(pointValue(reporting), 1);
    fay.child.kill('SIGINT');
    const { code, stderr } = await fay.exit;
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /dropped/);
  });

  it('sends quantiles as an exponential histogram of the run: the exact count, each sleep in its bucket', async () => {
    const workload = waitingWorkload('fay-otlp-q', 'sleep', 3, 25);
    const query = 'syscall:clock_nanosleep | where comm == "fay-otlp-q" | quantiles(duration, 0.5), sum(duration)';
    const fay = startFay(['query', '--otlp', url, '--json', query]);
    // Its first result sent means its probes are in.
    const before = requests.length;
    await request(() => requests.length > before);
    await workload.go();
    const point = (r: Request) => r.resourceMetrics[0]!.scopeMetrics[0]!.metrics.find((m) => m.name === 'fay_quantiles_duration_0_5_seconds')?.exponentialHistogram?.dataPoints?.[0];
    const found = await request((r) => point(r)?.count === 25);
    const h = point(found)!;
    assert.equal(h.scale, 6);
    const counts = h.positive!.bucketCounts!;
    assert.equal(counts.reduce((a, b) => a + b, 0), 25, 'every sleep in a bucket');
    // Bucket i holds (b^i, b^(i+1)] seconds: none of the 3 ms sleeps can be under 3 ms, less the bound.
    const base = 2 ** (2 ** -6);
    const lowest = (h.positive!.offset ?? 0) + counts.findIndex((n) => n > 0);
    assert.ok(base ** (lowest + 1) >= 0.003 * (1 - exponentialRelativeError(6)), `lowest bucket's top ${base ** (lowest + 1)} s`);
    assert.ok(h.sum! >= 25 * 0.003 && h.sum! < 25 * 0.05, `sum ${h.sum} s`);
    fay.child.kill('SIGINT');
    const { code, lines, stderr } = await fay.exit;
    assert.equal(code, 0, stderr);
    // The median read from the histogram is within half a bucket of the sketch's own, which fay printed.
    const last = lines.map((l) => JSON.parse(l) as { type: string; rows?: { 'quantiles(duration, 0.5)': { quantiles: { value: number }[] } }[] }).filter((m) => m.type === 'result').at(-1)!;
    const median = last.rows![0]!['quantiles(duration, 0.5)'].quantiles[0]!.value / 1e9;
    let seen = 0;
    const at = counts.findIndex((n) => (seen += n) > 12);
    const read = (2 * base ** ((h.positive!.offset ?? 0) + at + 1)) / (base + 1);
    assert.ok(Math.abs(read - median) / median <= (base - 1) / (base + 1) + 1e-9, `median ${read} s from the histogram, ${median} s from fay`);
  });

  it('goes on when the endpoint is down, prints the whole answer, and says what it could not send', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const workload = waitingWorkload('fay-otlp-d', 'getppid', 777);
    const fay = startFay(['query', '--otlp', down, '--json', '-d', '4s', 'syscall:getppid | where comm == "fay-otlp-d" | count() every 1s']);
    // Its first window printed means its probes are in.
    const first = await fay.nextLine();
    await workload.go();
    const { code, lines, stderr } = await fay.exit;
    assert.equal(code, 0, stderr);
    const windows = [first!, ...lines].map((l) => JSON.parse(l) as { type: string; rows?: { count: number }[] }).filter((m) => m.type === 'result');
    assert.equal(windows.reduce((n, w) => n + (w.rows?.[0]?.count ?? 0), 0), 777, lines.join('\n'));
    assert.match(stderr, /OTLP exports to .* were dropped .*; the answer above is whole/);
  });

  it('refuses a query that does not aggregate, and a URL that is not http, before running', async () => {
    const events = await runFay(['query', '--otlp', url, 'syscall:getppid | select pid']);
    assert.equal(events.code, 2);
    assert.match(events.stderr, /--otlp exports aggregated rows, and this query streams events/);
    const bad = await runFay(['query', '--otlp', 'ftp://x', 'syscall:getppid | count()']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--otlp takes an http\(s\) URL/);
  });
});
