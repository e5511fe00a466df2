import type { HistResult, QuantilesResult } from '../agg/aggregate.js';
import { emptySketch, sketchBehind, sketchMerge, type SketchState } from '../agg/ddsketch.js';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import type { Cell, ResultColumn } from '../cluster/rows.js';

/**
 * A query's answer as metrics, what the Prometheus endpoint serves and the OTLP exporter sends:
 * each aggregate a metric named after it (`n = count()` → `fay_n`, `sum(duration)` →
 * `fay_sum_duration_seconds`), its `by` keys the labels:
 *
 *  - `count` and `sum`: counters, the whole run's (a query's windows added up; a query without
 *    windows gives its running total);
 *  - `min`, `max`, `avg`: gauges, the latest window's;
 *  - `hist`, `lhist`: histograms, cumulative like counters, a bucket's bound its highest value;
 *    the sum from a `sum()` of the same field in the query, if it has one (the kernel's histogram
 *    keeps counts, not sums);
 *  - `quantiles`: summaries, the latest window's quantiles with the run's count (the sum as above),
 *    and, when asked for (OTLP), the run's sketch, for an exponential histogram;
 *  - durations kept in ns, served in seconds (`_seconds` in the name).
 *
 * Beside them, coverage: hosts expected, reporting and missing, and the groups folded into (other).
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

export type Labels = Record<string, string>;

/** One series of a metric: its labels and what it has counted. */
export interface Series {
  labels: Labels;
  value: number;
  /** Histograms: a bucket's highest value (in the query's unit) → its count, not cumulative; summaries: quantile → value. */
  buckets?: Map<number, number>;
  count?: number;
  sum?: number;
  /** Summaries, when the answer keeps sketches: the run's distribution, windows merged. */
  sketch?: SketchState;
}

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** One metric of the answer: its series, kept in the query's own unit (`per` divides it as it is served). */
export interface AnswerMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** 1e9 for durations: kept in ns, summed exactly, served in seconds. */
  readonly per: number;
  readonly series: Map<string, Series>;
}

const KINDS: Readonly<Record<string, MetricType>> = { count: 'counter', sum: 'counter', min: 'gauge', max: 'gauge', avg: 'gauge', hist: 'histogram', lhist: 'histogram', quantiles: 'summary' };

/** Whether a query's answer can be exported: it aggregates (its rows are groups), with at least one aggregate there is a metric type for. */
export function exportProblem(flag: '--prometheus' | '--otlp', aggregates: readonly string[] | undefined): string | undefined {
  if (aggregates === undefined) return `${flag} exports aggregated rows, and this query streams events: end it with an aggregate, e.g. count() by comm`;
  if (!aggregates.some((a) => a in KINDS)) return `${flag} exports count, sum, min, max, avg, hist, lhist and quantiles; this query has ${aggregates.join(', ')}`;
  return undefined;
}

/** The coverage of the latest result, as numbers. */
export interface Coverage {
  expected: number;
  reporting: number;
  missing: number;
  folded: number;
}

/** A query's answer as it comes, kept as metrics: see the top of this file. */
export class AnswerMetrics {
  readonly metrics = new Map<string, AnswerMetric>();
  readonly coverage: Coverage = { expected: 0, reporting: 0, missing: 0, folded: 0 };
  private firstStartNs: number | undefined;
  private lastEndNs = -Infinity;
  private readonly said = new Set<string>();

  constructor(
    readonly prefix: string,
    /** What cannot be exported, or is exported without something, said once each. */
    private readonly say: (text: string) => void,
    /** Whether summaries keep the run's sketch (OTLP sends it as an exponential histogram). */
    private readonly keepSketches = false,
  ) {}

  /** When the answer began: the first result's start (ns). */
  get startNs(): number | undefined {
    return this.firstStartNs;
  }

  take(result: ResultMessage): void {
    this.firstStartNs ??= result.startNs;
    // A query without windows gives running totals from its start; one with windows, each window's own.
    const cumulative = result.startNs === this.firstStartNs && !(result.complete && this.lastEndNs > result.startNs);
    const fresh = cumulative || (result.complete && result.startNs >= this.lastEndNs);
    if (result.coverage) this.setCoverage(result.coverage);
    this.coverage.folded = result.foldedGroups;
    if (!fresh) return;
    if (result.complete) this.lastEndNs = result.endNs;
    const keys = result.columns.map((c, i) => ({ c, i })).filter(({ c }) => c.role === 'key');
    const sums = new Map(result.columns.map((c, i) => [c.function === 'sum' ? c.name.replace(/^sum\((.*)\)$/, '$1') : '', i] as const).filter(([k]) => k !== ''));
    result.columns.forEach((column, i) => {
      if (column.role !== 'aggregate' || column.function === undefined) return;
      const type = KINDS[column.function];
      if (type === undefined) return this.sayOnce(column.name, `${column.name} is not exported (there is no metric type for ${column.function})`);
      const seconds = column.unit === 'ns';
      const metric = this.metricFor(column, type, seconds);
      const field = /^\w+\((.*?)(?:,.*)?\)$/.exec(column.name)?.[1];
      const sumAt = field === undefined ? undefined : sums.get(field);
      if ((type === 'histogram' || type === 'summary') && sumAt === undefined) this.sayOnce(`${column.name}:sum`, `${metric.name} has no sum: add sum(${field ?? '…'}) to the query for it`);
      for (const row of result.rows) {
        // A series is known by its key cells; its labels are made once, when it is new.
        const id = keys.length === 1 ? labelValue(row[keys[0]!.i]) : keys.map(({ i: k }) => labelValue(row[k])).join('\u0000');
        let series = metric.series.get(id);
        if (series === undefined) metric.series.set(id, (series = { labels: Object.fromEntries(keys.map(({ c, i: k }) => [metricName(c.name), labelValue(row[k])])), value: 0 }));
        this.update(series, type, row[i], sumAt === undefined ? undefined : (row[sumAt] as number), cumulative);
      }
    });
  }

  private update(series: Series, type: MetricType, cell: Cell | undefined, sum: number | undefined, cumulative: boolean): void {
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
      const sketch = this.keepSketches ? sketchBehind(q) : undefined;
      if (sketch !== undefined) {
        // A copy: a query without windows goes on adding to the sketch it finalized.
        if (cumulative || series.sketch === undefined) series.sketch = emptySketch();
        sketchMerge(series.sketch, sketch);
      }
      if (sum !== undefined) series.sum = (cumulative ? 0 : (series.sum ?? 0)) + sum;
    }
  }

  private metricFor(column: ResultColumn, type: MetricType, seconds: boolean): AnswerMetric {
    const name = `${this.prefix}_${metricName(column.name)}${seconds ? '_seconds' : ''}`;
    let metric = this.metrics.get(name);
    if (metric === undefined) {
      metric = { name, help: `fay: ${column.name}${seconds ? ' (seconds)' : ''}`, type, per: seconds ? 1e9 : 1, series: new Map() };
      this.metrics.set(name, metric);
    }
    return metric;
  }

  setCoverage(c: NonNullable<ResultMessage['coverage']>): void {
    this.coverage.expected = c.expected.length;
    this.coverage.reporting = c.reporting.length;
    this.coverage.missing = c.missing.length;
  }

  private sayOnce(key: string, text: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.say(text);
  }
}
