import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, type Metric } from 'prom-client';
import type { QueryMessage } from '../cluster/cluster-stage.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { AnswerMetrics, metricName, type AnswerMetric, type Labels } from './answer-metrics.js';
import type { OutputSink } from './sink.js';

/**
 * A query's answer on an HTTP endpoint for Prometheus to scrape (answer-metrics.ts says which
 * metrics), rendered by prom-client: histograms with cumulative `_bucket{le}`, `_sum`, `_count`;
 * summaries with `{quantile}`; durations in seconds, as Prometheus expects. Coverage as
 * `fay_hosts_expected`, `fay_hosts_reporting`, `fay_hosts_missing` and `fay_folded_groups`.
 */

type Sample = { metricName?: string; labels: Labels; value: number };

/** A metric as prom-client's registry reads one: a name, help, type, and get(). */
class RegistryMetric {
  constructor(private readonly metric: AnswerMetric) {}

  get name(): string {
    return this.metric.name;
  }

  get help(): string {
    return this.metric.help;
  }

  get type(): string {
    return this.metric.type;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }> {
    const { name, type, per } = this.metric;
    const values: Sample[] = [];
    for (const s of this.metric.series.values()) {
      if (type === 'histogram') {
        let cumulative = 0;
        for (const [le, n] of [...s.buckets!].sort((a, b) => a[0] - b[0])) {
          cumulative += n;
          values.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: String(le / per) }, value: cumulative });
        }
        values.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count! });
      } else if (type === 'summary') {
        for (const [q, v] of s.buckets!) values.push({ metricName: name, labels: { ...s.labels, quantile: String(q) }, value: v / per });
      } else values.push({ labels: s.labels, value: s.value / per });
      if (s.count !== undefined && (type === 'histogram' || type === 'summary')) {
        if (s.sum !== undefined) values.push({ metricName: `${name}_sum`, labels: s.labels, value: s.sum / per });
        values.push({ metricName: `${name}_count`, labels: s.labels, value: s.count });
      }
    }
    return Promise.resolve({ name, help: this.metric.help, type, aggregator: 'sum', values });
  }
}

/** A gauge of the answer's coverage. */
class CoverageGauge {
  readonly type = 'gauge';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly value: () => number,
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values: [{ labels: {}, value: this.value() }] });
  }
}

/** Where to listen: `9464`, `:9464`, `127.0.0.1:9464`, `[::1]:9464` (no host: every address). */
export function listenAddress(text: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port > 65_535) throw new UsageError(`--prometheus takes [host]:port, not "${text}"`, { hint: 'e.g. --prometheus :9464 or --prometheus 127.0.0.1:9464' });
  const host = match[1] ?? (match[2] === '' ? undefined : match[2]);
  return { host, port };
}

export class PrometheusSink implements OutputSink {
  private readonly registry = new Registry();
  private readonly answer: AnswerMetrics;
  private readonly registered = new Set<string>();

  private constructor(
    private readonly server: Server,
    prefix: string,
    err: NodeJS.WritableStream,
  ) {
    this.answer = new AnswerMetrics(prefix, (text) => err.write(`fay: ${text}\n`));
    const c = this.answer.coverage;
    for (const gauge of [
      new CoverageGauge(`${prefix}_hosts_expected`, 'hosts the query runs on', () => c.expected),
      new CoverageGauge(`${prefix}_hosts_reporting`, 'hosts in the latest result', () => c.reporting),
      new CoverageGauge(`${prefix}_hosts_missing`, 'hosts gone from the query: no heartbeat, stopped, or never answered', () => c.missing),
      new CoverageGauge(`${prefix}_folded_groups`, 'groups beyond the cap, folded into (other)', () => c.folded),
    ]) {
      this.register(gauge);
    }
  }

  /** Listens on the address (refusing a port in use before the query runs) and serves /metrics. */
  static async start(address: { host: string | undefined; port: number }, options: { prefix?: string; err?: NodeJS.WritableStream } = {}): Promise<PrometheusSink> {
    const server = createServer();
    const sink = new PrometheusSink(server, metricName(options.prefix ?? 'fay'), options.err ?? process.stderr);
    server.on('request', (req, res) => {
      if (req.method !== 'GET' || !/^\/metrics(\?|$)/.test(req.url ?? '')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
        return;
      }
      sink.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': sink.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new EnvironmentError(`--prometheus cannot listen on ${address.host ?? '*'}:${address.port}: ${error.message}`, { hint: error.code === 'EADDRINUSE' ? 'another port, or stop what uses this one' : 'check the address' })),
      );
      server.listen(address.port, address.host, () => resolve());
    });
    return sink;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`;
  }

  private register(metric: RegistryMetric | CoverageGauge): void {
    // prom-client renders any object with a name, help, type and get(); its Metric type lists only its own classes.
    this.registry.registerMetric(metric as unknown as Metric);
    this.registered.add(metric.name);
  }

  export(message: QueryMessage): Promise<void> {
    if (message.kind === 'result') this.answer.take(message);
    if (message.kind === 'end') this.answer.setCoverage(message.coverage);
    for (const metric of this.answer.metrics.values()) if (!this.registered.has(metric.name)) this.register(new RegistryMetric(metric));
    return Promise.resolve();
  }

  async shutdown(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
