import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, type Metric } from 'prom-client';
import type { StandingWindows } from '../agent/service.js';
import type { QueryMessage } from '../cluster/cluster-stage.js';
import { finalizeRows } from '../cluster/rows.js';
import type { StagedPlan } from '../plan/planner.js';
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

/**
 * An HTTP endpoint serving the metrics of one or more answers (a query's; an agent's standing
 * queries', each under a prefix of its own), rendered by prom-client at each scrape.
 */
export class MetricsEndpoint {
  private readonly registry = new Registry();
  private readonly registered = new Set<string>();
  private readonly answers = new Set<AnswerMetrics>();

  private constructor(private readonly server: Server) {}

  /** Listens on the address (a port in use is refused: said before anything runs) and serves /metrics. */
  static async start(address: { host: string | undefined; port: number }, flag = '--prometheus'): Promise<MetricsEndpoint> {
    const server = createServer();
    const endpoint = new MetricsEndpoint(server);
    server.on('request', (req, res) => {
      if (req.method !== 'GET' || !/^\/metrics(\?|$)/.test(req.url ?? '')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
        return;
      }
      endpoint.sync();
      endpoint.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': endpoint.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new EnvironmentError(`${flag} cannot listen on ${address.host ?? '*'}:${address.port}: ${error.message}`, { hint: error.code === 'EADDRINUSE' ? 'another port, or stop what uses this one' : 'check the address' })),
      );
      server.listen(address.port, address.host, () => resolve());
    });
    return endpoint;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`;
  }

  /** Serves an answer's metrics from now on, and its coverage. */
  add(answer: AnswerMetrics): void {
    this.answers.add(answer);
    const c = answer.coverage;
    const p = answer.prefix;
    for (const gauge of [
      new CoverageGauge(`${p}_hosts_expected`, 'hosts the query runs on', () => c.expected),
      new CoverageGauge(`${p}_hosts_reporting`, 'hosts in the latest result', () => c.reporting),
      new CoverageGauge(`${p}_hosts_missing`, 'hosts gone from the query: no heartbeat, stopped, or never answered', () => c.missing),
      new CoverageGauge(`${p}_folded_groups`, 'groups beyond the cap, folded into (other)', () => c.folded),
    ]) {
      this.register(gauge);
    }
  }

  /** Stops serving an answer's metrics (a standing query that ended). */
  remove(answer: AnswerMetrics): void {
    if (!this.answers.delete(answer)) return;
    for (const name of [...this.registered].filter((n) => n.startsWith(`${answer.prefix}_`))) {
      this.registry.removeSingleMetric(name);
      this.registered.delete(name);
    }
  }

  /** Registers the metrics an answer has made since. */
  private sync(): void {
    for (const answer of this.answers) for (const metric of answer.metrics.values()) if (!this.registered.has(metric.name)) this.register(new RegistryMetric(metric));
  }

  private register(metric: RegistryMetric | CoverageGauge): void {
    // prom-client renders any object with a name, help, type and get(); its Metric type lists only its own classes.
    this.registry.registerMetric(metric as unknown as Metric);
    this.registered.add(metric.name);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** `fay query --prometheus`: the query's answer on an endpoint of its own while it runs. */
export class PrometheusSink implements OutputSink {
  private readonly answer: AnswerMetrics;

  private constructor(
    private readonly endpoint: MetricsEndpoint,
    prefix: string,
    err: NodeJS.WritableStream,
  ) {
    this.answer = new AnswerMetrics(prefix, (text) => err.write(`fay: ${text}\n`));
    endpoint.add(this.answer);
  }

  static async start(address: { host: string | undefined; port: number }, options: { prefix?: string; err?: NodeJS.WritableStream } = {}): Promise<PrometheusSink> {
    return new PrometheusSink(await MetricsEndpoint.start(address), metricName(options.prefix ?? 'fay'), options.err ?? process.stderr);
  }

  get url(): string {
    return this.endpoint.url;
  }

  export(message: QueryMessage): Promise<void> {
    if (message.kind === 'result') this.answer.take(message);
    if (message.kind === 'end') this.answer.setCoverage(message.coverage);
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.endpoint.close();
  }
}

/**
 * `fay agent --prometheus`: each standing query's windows, as they close on this machine, served
 * under `<prefix>_<its log>_` (the log's count() is `fay_opens_count`), with this host as its
 * coverage; a query's metrics go when it ends.
 */
export function standingMetrics(endpoint: MetricsEndpoint, prefix: string | undefined, host: string, say: (text: string) => void) {
  const base = metricName(prefix ?? 'fay');
  return (log: string, plan: StagedPlan): StandingWindows | undefined => {
    const output = plan.cluster.output;
    if (output.kind !== 'Aggregate') return undefined;
    const answer = new AnswerMetrics(`${base}_${metricName(log)}`, (text) => say(`standing query of ${log}: ${text}`));
    endpoint.add(answer);
    // The rows the cluster stage would make of one machine's window (categorize needs the cluster: left out).
    const operations = plan.cluster.rowOperations.filter((op) => op.kind !== 'Categorize');
    const hosts = [host];
    return {
      window: (window) => {
        const { columns, rows } = finalizeRows(window.table, output, operations, plan.cluster.sampleRate);
        answer.take({
          kind: 'result', columns, rows, startNs: window.startNs, endNs: window.endNs, complete: true, hosts,
          foldedGroups: window.table.foldedGroups, droppedEvents: window.droppedEvents, uncountedEvents: window.uncountedEvents,
          coverage: { expected: hosts, reporting: hosts, late: [], missing: [] },
        });
      },
      ended: () => endpoint.remove(answer),
    };
  };
}
