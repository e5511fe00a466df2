import { hostname } from 'node:os';
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { QueryMessage } from '../cluster/cluster-stage.js';
import { UsageError } from '../errors.js';
import { AnswerMetrics, metricName, type AnswerMetric } from './answer-metrics.js';
import { exponentialHistogram } from './exponential-histogram.js';
import type { OutputSink } from './sink.js';

/**
 * A query's answer sent as OTLP metrics over HTTP (protobuf), through OpenTelemetry JS's own
 * exporter (`@opentelemetry/exporter-metrics-otlp-proto` 0.212, of the SDK's 2.x line, the last
 * that runs on Node.js 20): the same metrics as the Prometheus endpoint (answer-metrics.ts), as
 * cumulative sums (counters), gauges, explicit-bucket histograms, and quantiles as exponential
 * histograms of the run's DDSketch (exponential-histogram.ts: how, and the error bound); resource
 * attributes `service.name` fay, `host.name`, `fay.query`. Each result is sent as it comes, one
 * export at a time (a result that comes during one waits, and only the newest is sent); the
 * exporter retries with backoff, and what it could not send is said once the query ends: the
 * query goes on either way.
 */

/** The endpoint's URL: `http://host:4318` means its /v1/metrics. */
export function otlpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--otlp takes an http(s) URL, not "${text}"`, { hint: 'e.g. --otlp http://collector:4318' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--otlp takes an http(s) URL, not "${text}"`, { hint: 'OTLP over HTTP: e.g. --otlp http://collector:4318' });
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/metrics';
  return url.toString();
}

/** How long the command's end waits for the last export. */
const SHUTDOWN_MS = 3000;

const hr = (ns: number): HrTime => [Math.floor(ns / 1e9), Math.round(ns % 1e9)];

/** A metric of the answer as OTLP's data model has it, points stamped from `startNs` to `endNs`. */
function metricData(metric: AnswerMetric, startNs: number, endNs: number): MetricData {
  const { name, help, type, per } = metric;
  const base = {
    descriptor: { name, description: help, unit: per === 1e9 ? 's' : '1', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
  };
  const stamp = (attributes: Attributes) => ({ startTime: hr(startNs), endTime: hr(endNs), attributes });
  const series = [...metric.series.values()];
  switch (type) {
    case 'counter':
      return { ...base, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: series.map((s) => ({ ...stamp(s.labels), value: s.value / per })) };
    case 'gauge':
      return { ...base, dataPointType: DataPointType.GAUGE, dataPoints: series.map((s) => ({ ...stamp(s.labels), value: s.value / per })) };
    case 'histogram':
      return {
        ...base,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: series.map((s) => {
          const buckets = [...s.buckets!].sort((a, b) => a[0] - b[0]);
          const counted = buckets.reduce((n, [, c]) => n + c, 0);
          return {
            ...stamp(s.labels),
            value: {
              // A bucket's bound is its highest value (inclusive, as OTLP's are); the values above the last go to the overflow bucket.
              buckets: { boundaries: buckets.map(([le]) => le / per), counts: [...buckets.map(([, c]) => c), s.count! - counted] },
              count: s.count!,
              ...(s.sum !== undefined && { sum: s.sum / per }),
            },
          };
        }),
      };
    case 'summary':
      return {
        ...base,
        dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM,
        dataPoints: series.filter((s) => s.sketch !== undefined).map((s) => ({ ...stamp(s.labels), value: exponentialHistogram(s.sketch!, per, s.sum === undefined ? undefined : s.sum / per) })),
      };
  }
}

export class OtlpSink implements OutputSink {
  private readonly answer: AnswerMetrics;
  private readonly exporter: OTLPMetricExporter;
  private readonly resource;
  private readonly startedNs = Date.now() * 1e6;
  private sending: Promise<void> | undefined;
  private waiting = false;
  private sent = 0;
  private failed = 0;
  private lastError: string | undefined;

  constructor(
    readonly url: string,
    query: string,
    options: { prefix?: string; err?: NodeJS.WritableStream; timeoutMs?: number } = {},
    private readonly err: NodeJS.WritableStream = options.err ?? process.stderr,
  ) {
    this.answer = new AnswerMetrics(metricName(options.prefix ?? 'fay'), (text) => this.err.write(`fay: ${text}\n`), true);
    this.exporter = new OTLPMetricExporter({ url, timeoutMillis: options.timeoutMs ?? 10_000 });
    this.resource = resourceFromAttributes({ 'service.name': 'fay', 'host.name': hostname(), 'fay.query': query });
  }

  export(message: QueryMessage): Promise<void> {
    if (message.kind === 'result') this.answer.take(message);
    else if (message.kind === 'end') this.answer.setCoverage(message.coverage);
    else return Promise.resolve();
    this.schedule();
    return Promise.resolve();
  }

  /** Sends the answer as it is now, after the export under way if there is one (the query never waits). */
  private schedule(): void {
    if (this.sending) {
      this.waiting = true;
      return;
    }
    this.sending = this.send().finally(() => {
      this.sending = undefined;
      if (this.waiting) {
        this.waiting = false;
        this.schedule();
      }
    });
  }

  private send(): Promise<void> {
    const endNs = Date.now() * 1e6;
    const startNs = Math.min(this.answer.startNs ?? this.startedNs, this.startedNs);
    const c = this.answer.coverage;
    const prefix = this.answer.prefix;
    const coverage: MetricData[] = (['expected', 'reporting', 'missing'] as const).map((k) => ({
      descriptor: { name: `${prefix}_hosts_${k}`, description: `hosts ${k}`, unit: '1', valueType: ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: [{ startTime: hr(startNs), endTime: hr(endNs), attributes: {}, value: c[k] }],
    }));
    const metrics: ResourceMetrics = {
      resource: this.resource,
      scopeMetrics: [{ scope: { name: 'fay' }, metrics: [...[...this.answer.metrics.values()].map((m) => metricData(m, startNs, endNs)), ...coverage] }],
    };
    return new Promise((resolve) =>
      this.exporter.export(metrics, (result) => {
        if (result.code === ExportResultCode.SUCCESS) this.sent++;
        else {
          // Said when it first happens; the query goes on, and the next result is sent as usual.
          if (this.failed === 0) this.err.write(`fay: an OTLP export to ${this.url} failed after retries (${result.error?.message ?? 'failed'}); the query goes on, and each next result is sent again\n`);
          this.failed++;
          this.lastError = result.error?.message ?? 'failed';
        }
        resolve();
      }),
    );
  }

  async shutdown(): Promise<void> {
    // The last answer goes out (after the export under way), for at most SHUTDOWN_MS: an endpoint
    // that is down must not hold the command's exit through the exporter's retries.
    const deadline = Date.now() + SHUTDOWN_MS;
    let late = false;
    while (this.sending && !late) {
      let timer: NodeJS.Timeout | undefined;
      late = await Promise.race([this.sending.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
    }
    if (late) this.failed++;
    void this.exporter.shutdown();
    if (this.failed > 0) {
      const why = late ? `the last was still being retried when the query ended${this.lastError ? `; ${this.lastError}` : ''}` : this.lastError;
      this.err.write(`fay: ${this.failed} of ${this.sent + this.failed} OTLP exports to ${this.url} were dropped (${why}); the answer above is whole\n`);
    }
  }
}
