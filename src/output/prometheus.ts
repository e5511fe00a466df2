import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, type Metric } from 'prom-client';
import type { HistResult, QuantilesResult } from '../agg/aggregate.js';
import type { QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import type { Cell, ResultColumn } from '../cluster/rows.js';
import { EnvironmentError, UsageError } from '../errors.js';
import type { OutputSink } from './sink.js';

/**
 * A query's answer on an HTTP endpoint for Prometheus to scrape, rendered by prom-client. Each
 * aggregate is a metric named after it (`n = count()` → `fay_n`, `sum(duration)` →
 * `fay_sum_duration_seconds`), its `by` keys the labels:
 *
 *  - `count` and `sum`: counters, the whole run's (a query's windows added up; a query without
 *    windows gives its running total);
 *  - `min`, `max`, `avg`: gauges, the latest window's;
 *  - `hist`, `lhist`: histograms, cumulative like counters, a bucket's `le` its highest value;
 *    `_sum` from a `sum()` of the same field in the query, if it has one (the kernel's histogram
 *    keeps counts, not sums);
 *  - `quantiles`: summaries, the latest window's quantiles with the run's `_count` (`_sum` as above);
 *  - durations (ns) in seconds, as Prometheus expects, with `_seconds` in the name.
 *
 * Beside them: `fay_hosts_expected`, `fay_hosts_reporting`, `fay_hosts_missing` (coverage) and
 * `fay_folded_groups` (groups beyond the cap, folded into `(other)`).
 */

/** A Prometheus name from any text: letters, digits and _, not starting with a digit. */
export function metricName(text: string): string {
  const name = text.replace(/[^A-Za-z0-9_]+/g, '_').replace(/_+/g, '_').replace(/^_|_$/g, '');
  return /^[0-9]/.test(name) ? `_${name}` : name || 'value';
}

/** A label value: text, lone UTF-16 surrogates (invalid UTF-8 once encoded) replaced by U+FFFD. */
export function labelValue(cell: Cell | undefined): string {
  const text = typeof cell === 'string' ? cell : typeof cell === 'object' && cell !== null ? JSON.stringify(cell) : String(cell ?? '');
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

type Labels = Record<string, string>;
type Sample = { metricName?: string; labels: Labels; value: number };

/** One series of a metric: its labels and what it has counted. */
interface Series {
  labels: Labels;
  value: number;
  /** Histograms: a bucket's highest value (in the query's unit) → its count, not cumulative; summaries: quantile → value. */
  buckets?: Map<number, number>;
  count?: number;
  sum?: number;
}

/** A metric of the query's, as prom-client's registry reads one (name, help, type, get()). */
class QueryMetric {
  readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram' | 'summary',
    /** What its values are divided by as they are served (1e9: kept in ns, served in seconds, summed exactly first). */
    private readonly per = 1,
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    for (const s of this.series.values()) {
      if (this.type === 'histogram') {
        let cumulative = 0;
        for (const [le, n] of [...s.buckets!].sort((a, b) => a[0] - b[0])) {
          cumulative += n;
          values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: String(le / this.per) }, value: cumulative });
        }
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count! });
      } else if (this.type === 'summary') {
        for (const [q, v] of s.buckets!) values.push({ metricName: this.name, labels: { ...s.labels, quantile: String(q) }, value: v / this.per });
      } else values.push({ labels: s.labels, value: s.value / this.per });
      if (s.count !== undefined && (this.type === 'histogram' || this.type === 'summary')) {
        if (s.sum !== undefined) values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum / this.per });
        values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
      }
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values });
  }
}

const KINDS: Readonly<Record<string, QueryMetric['type']>> = { count: 'counter', sum: 'counter', min: 'gauge', max: 'gauge', avg: 'gauge', hist: 'histogram', lhist: 'histogram', quantiles: 'summary' };

/** Whether a query's answer can be exported: it aggregates (its rows are groups), with at least one aggregate Prometheus has a type for. */
export function prometheusProblem(aggregates: readonly string[] | undefined): string | undefined {
  if (aggregates === undefined) return '--prometheus exports aggregated rows, and this query streams events: end it with an aggregate, e.g. count() by comm';
  if (!aggregates.some((a) => a in KINDS)) return `--prometheus exports count, sum, min, max, avg, hist, lhist and quantiles; this query has ${aggregates.join(', ')}`;
  return undefined;
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
  private readonly metrics = new Map<string, QueryMetric>();
  private readonly coverage: Record<'expected' | 'reporting' | 'missing' | 'folded', QueryMetric>;
  private firstStartNs: number | undefined;
  private lastEndNs = -Infinity;
  private said = new Set<string>();

  private constructor(
    private readonly server: Server,
    private readonly prefix: string,
    private readonly err: NodeJS.WritableStream,
  ) {
    const gauge = (name: string, help: string) => this.register(new QueryMetric(`${prefix}_${name}`, help, 'gauge'));
    this.coverage = {
      expected: gauge('hosts_expected', 'hosts the query runs on'),
      reporting: gauge('hosts_reporting', 'hosts in the latest result'),
      missing: gauge('hosts_missing', 'hosts gone from the query: no heartbeat, stopped, or never answered'),
      folded: gauge('folded_groups', 'groups beyond the cap, folded into (other)'),
    };
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

  private register(metric: QueryMetric): QueryMetric {
    // prom-client renders any object with a name, help, type and get(); its Metric type lists only its own classes.
    this.registry.registerMetric(metric as unknown as Metric);
    return metric;
  }

  export(message: QueryMessage): Promise<void> {
    if (message.kind === 'result') this.take(message);
    if (message.kind === 'end') this.setCoverage(message.coverage);
    return Promise.resolve();
  }

  private take(result: ResultMessage): void {
    this.firstStartNs ??= result.startNs;
    // A query without windows gives running totals from its start; one with windows, each window's own.
    const cumulative = result.startNs === this.firstStartNs && !(result.complete && this.lastEndNs > result.startNs);
    const fresh = cumulative || (result.complete && result.startNs >= this.lastEndNs);
    if (result.coverage) this.setCoverage(result.coverage);
    this.coverage.folded.series.set('', { labels: {}, value: result.foldedGroups });
    if (!fresh) return;
    if (result.complete) this.lastEndNs = result.endNs;
    const keys = result.columns.map((c, i) => ({ c, i })).filter(({ c }) => c.role === 'key');
    const sums = new Map(result.columns.map((c, i) => [c.function === 'sum' ? c.name.replace(/^sum\((.*)\)$/, '$1') : '', i] as const).filter(([k]) => k !== ''));
    result.columns.forEach((column, i) => {
      if (column.role !== 'aggregate' || column.function === undefined) return;
      const type = KINDS[column.function];
      if (type === undefined) return this.sayOnce(column.name, `${column.name} is not exported to Prometheus (it has no metric type for ${column.function})`);
      const seconds = column.unit === 'ns';
      const metric = this.metricFor(column, type, seconds);
      const field = /^\w+\((.*?)(?:,.*)?\)$/.exec(column.name)?.[1];
      const sumAt = field === undefined ? undefined : sums.get(field);
      if ((type === 'histogram' || type === 'summary') && sumAt === undefined) this.sayOnce(`${column.name}:sum`, `${metric.name} has no _sum: add sum(${field ?? '…'}) to the query for it`);
      for (const row of result.rows) {
        // A series is known by its key cells; its labels are made once, when it is new.
        const id = keys.length === 1 ? labelValue(row[keys[0]!.i]) : keys.map(({ i: k }) => labelValue(row[k])).join('\u0000');
        let series = metric.series.get(id);
        if (series === undefined) metric.series.set(id, (series = { labels: Object.fromEntries(keys.map(({ c, i: k }) => [metricName(c.name), labelValue(row[k])])), value: 0 }));
        this.update(series, type, row[i], sumAt === undefined ? undefined : (row[sumAt] as number), cumulative);
      }
    });
  }

  private update(series: Series, type: QueryMetric['type'], cell: Cell | undefined, sum: number | undefined, cumulative: boolean): void {
    if (type === 'counter' || type === 'gauge') {
      if (typeof cell !== 'number') return;
      series.value = type === 'counter' && !cumulative ? series.value + cell : cell;
    } else if (type === 'histogram') {
      const hist = cell as HistResult;
      if (cumulative || series.buckets === undefined) series.buckets = new Map();
      // A bucket's le is its highest value (an integer range [low, high]); the open top bucket goes to +Inf only.
      for (const b of hist.buckets) if (b.high !== null) series.buckets.set(b.high, (series.buckets.get(b.high) ?? 0) + b.count);
      series.count = (cumulative ? 0 : (series.count ?? 0)) + hist.total;
      if (sum !== undefined) series.sum = (cumulative ? 0 : (series.sum ?? 0)) + sum;
    } else {
      const q = cell as QuantilesResult;
      series.buckets = new Map(q.quantiles.filter((x) => x.value !== null).map((x) => [x.p, x.value!]));
      series.count = (cumulative ? 0 : (series.count ?? 0)) + q.count;
      if (sum !== undefined) series.sum = (cumulative ? 0 : (series.sum ?? 0)) + sum;
    }
  }

  private metricFor(column: ResultColumn, type: QueryMetric['type'], seconds: boolean): QueryMetric {
    const name = `${this.prefix}_${metricName(column.name)}${seconds ? '_seconds' : ''}`;
    let metric = this.metrics.get(name);
    if (metric === undefined) {
      // Durations are kept in ns, summed exactly, and served in seconds, as Prometheus expects.
      metric = this.register(new QueryMetric(name, `fay: ${column.name}${seconds ? ' (seconds)' : ''}`, type, seconds ? 1e9 : 1));
      this.metrics.set(name, metric);
    }
    return metric;
  }

  private setCoverage(c: NonNullable<ResultMessage['coverage']>): void {
    this.coverage.expected.series.set('', { labels: {}, value: c.expected.length });
    this.coverage.reporting.series.set('', { labels: {}, value: c.reporting.length });
    this.coverage.missing.series.set('', { labels: {}, value: c.missing.length });
  }

  private sayOnce(key: string, text: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.err.write(`fay: ${text}\n`);
  }

  async shutdown(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
