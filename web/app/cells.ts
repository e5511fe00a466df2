import type { HistResult, QuantilesResult } from '../../src/agg/aggregate.js';
import type { Cell, ResultColumn } from '../../src/cluster/rows.js';
import { formatCell, histogramLabels } from '../../src/output/format.js';
import { printableLine } from '../../src/output/printable.js';
import { svg } from './svg.js';

/**
 * A result's cells as the page shows them: numbers and times as the terminal prints them, a
 * histogram drawn as bars (its buckets bounded by times for durations), quantiles as marks on a
 * logarithmic scale with their values.
 */

/** A histogram: a bar per bucket, its bounds and its count beside it. */
function histogram(hist: HistResult, unit: ResultColumn['unit']): SVGSVGElement {
  const labels = histogramLabels(hist, unit);
  const rowHeight = 14;
  const labelWidth = 7 * Math.max(4, ...labels.map((l) => l.length));
  const barWidth = 160;
  const most = Math.max(1, ...hist.buckets.map((b) => b.count));
  const chart = svg('svg', { class: 'hist', width: labelWidth + barWidth + 60, height: rowHeight * hist.buckets.length + 2 });
  hist.buckets.forEach((b, i) => {
    const y = i * rowHeight;
    chart.append(svg('text', { x: labelWidth - 4, y: y + 11, 'text-anchor': 'end' }, labels[i]));
    chart.append(svg('rect', { x: labelWidth, y: y + 2, width: Math.max(b.count > 0 ? 1 : 0, (b.count / most) * barWidth), height: rowHeight - 3 }));
    chart.append(svg('text', { x: labelWidth + barWidth + 6, y: y + 11 }, String(b.count)));
  });
  return chart;
}

/** Quantiles: a mark per quantile on a logarithmic scale from the smallest to the largest, each labelled. */
function quantiles(q: QuantilesResult, unit: ResultColumn['unit']): HTMLElement {
  const box = document.createElement('div');
  box.className = 'quantiles';
  const values = q.quantiles.filter((x): x is { p: number; value: number } => x.value !== null && x.value > 0);
  if (values.length > 0) {
    const width = 220;
    const low = Math.log(Math.min(...values.map((v) => v.value)));
    const high = Math.log(Math.max(...values.map((v) => v.value)));
    const x = (v: number) => 8 + (high === low ? width / 2 : ((Math.log(v) - low) / (high - low)) * width);
    const strip = svg('svg', { width: width + 16, height: 16 });
    strip.append(svg('line', { x1: 8, x2: width + 8, y1: 8, y2: 8 }));
    for (const v of values) strip.append(svg('circle', { cx: x(v.value), cy: 8, r: 4 }, undefined));
    box.append(strip);
  }
  const text = document.createElement('span');
  text.textContent = formatCell(q, unit);
  box.append(text);
  return box;
}

/** A table cell for a result's cell. */
export function cellElement(cell: Cell | undefined, column: ResultColumn | undefined): HTMLTableCellElement {
  const td = document.createElement('td');
  const unit = column?.unit;
  if (typeof cell === 'object' && cell !== null && cell.kind === 'hist') {
    td.append(histogram(cell, unit));
    td.title = formatCell(cell, unit);
  } else if (typeof cell === 'object' && cell !== null && cell.kind === 'quantiles') td.append(quantiles(cell, unit));
  else if (typeof cell === 'string' && cell.includes('\n')) {
    // A stack: a frame a line.
    td.textContent = cell.split('\n').map(printableLine).join('\n');
    td.className = 'stack';
  } else td.textContent = formatCell(cell, unit);
  if (typeof cell === 'number') td.className = 'number';
  return td;
}
