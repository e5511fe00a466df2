import uPlot from 'uplot';
import type { ResultMessage } from '../../src/cluster/cluster-stage.js';
import type { Cell } from '../../src/cluster/rows.js';
import { formatDuration } from '../../src/output/format.js';

/** Series drawn at most: the groups of the first window in which they appear, the largest first. */
const MAX_SERIES = 10;
/** Points kept: an hour of a once-a-second query (uPlot draws that many in milliseconds). */
const MAX_POINTS = 3600;

/** A cell as the number the chart draws: a count or sum as it is, quantiles by their highest one, a histogram by its total. */
function plotted(cell: Cell | undefined): number | null {
  if (typeof cell === 'number') return cell;
  if (typeof cell === 'object' && cell !== null) {
    if (cell.kind === 'quantiles') return cell.quantiles.at(-1)?.value ?? null;
    if (cell.kind === 'hist') return cell.total;
  }
  return null;
}

/**
 * The time-series chart of an `every`/`window` query: a point per closed window, a series per
 * group (the first aggregate of up to MAX_SERIES groups), durations on a time axis.
 */
export class TimeChart {
  private chart: uPlot | undefined;
  private series: string[] = [];
  private times: number[] = [];
  private values: (number | null)[][] = [];
  private timeAxis = false;

  constructor(private readonly element: HTMLElement) {}

  reset(): void {
    this.chart?.destroy();
    this.chart = undefined;
    this.series = [];
    this.times = [];
    this.values = [];
    this.element.dataset.points = '0';
  }

  /** A closed window's point; drawn now, or (`draw` false: the view is paused) at the next redraw(). */
  add(result: ResultMessage, draw = true): void {
    const keys = result.columns.filter((c) => c.role === 'key').length;
    const first = result.columns.findIndex((c) => c.role === 'aggregate');
    if (first < 0) return;
    const column = result.columns[first]!;
    this.timeAxis = column.unit === 'ns';
    const suffix = column.function === 'quantiles' ? ' (highest quantile)' : '';
    this.times.push(result.endNs / 1e9);
    const at = new Map(result.rows.map((r) => [keys === 0 ? `${column.name}${suffix}` : `${r.slice(0, keys).map(String).join(' ')}${suffix}`, r[first]]));
    for (const name of at.keys()) {
      if (this.series.length >= MAX_SERIES) break;
      if (!this.series.includes(name)) {
        this.series.push(name);
        this.values.push(this.times.slice(0, -1).map(() => null));
      }
    }
    this.series.forEach((name, i) => this.values[i]!.push(plotted(at.get(name))));
    if (this.times.length > MAX_POINTS) {
      this.times.shift();
      for (const v of this.values) v.shift();
    }
    if (draw) this.redraw();
  }

  /** What the chart shows: each window's end (s since 1970) and each series' values, for Download JSON. */
  data(): { times: number[]; series: Record<string, (number | null)[]> } {
    return { times: [...this.times], series: Object.fromEntries(this.series.map((name, i) => [name, [...this.values[i]!]])) };
  }

  redraw(): void {
    this.element.dataset.points = String(this.times.length);
    if (this.times.length === 0) return;
    const data: uPlot.AlignedData = [this.times, ...this.values];
    if (this.chart && this.chart.series.length === this.series.length + 1) {
      this.chart.setData(data);
      return;
    }
    this.chart?.destroy();
    const time = this.timeAxis;
    this.chart = new uPlot(
      {
        width: Math.max(300, Math.min(900, document.body.clientWidth - 40)),
        height: 240,
        series: [{}, ...this.series.map((label, i) => ({ label, stroke: `hsl(${(i * 67) % 360} 65% 45%)`, ...(time && { value: (_: uPlot, v: number | null) => (v === null ? '-' : formatDuration(v)) }) }))],
        axes: [{}, time ? { values: (_: uPlot, ticks: number[]) => ticks.map((t) => formatDuration(t)), size: 70 } : {}],
      },
      data,
      this.element,
    );
  }
}
