import type { ResultMessage } from '../../src/cluster/cluster-stage.js';
import { formatCell } from '../../src/output/format.js';
import { svg } from './svg.js';

/**
 * The categories of a `categorize` query at a glance: a point per entity (host, comm, pid…), its
 * outlier score across, its distance to its category's centre up, coloured by category; beside it
 * each category with its size and the calls that set it apart. The table below has every figure.
 */

const colour = (category: number) => `hsl(${(category * 137) % 360} 60% 45%)`;

export function isCategories(result: ResultMessage): boolean {
  return ['category', 'distance', 'outlier', 'features'].every((name) => result.columns.some((c) => c.name === name));
}

export class CategoryView {
  constructor(private readonly element: HTMLElement) {}

  clear(): void {
    this.element.replaceChildren();
    this.element.dataset.points = '0';
  }

  show(result: ResultMessage): void {
    const at = (name: string) => result.columns.findIndex((c) => c.name === name);
    const [category, size, distance, outlier, features] = ['category', 'size', 'distance', 'outlier', 'features'].map(at) as [number, number, number, number, number];
    const points = result.rows.map((row) => ({
      name: formatCell(row[0]),
      category: Number(row[category]),
      distance: Number(row[distance]),
      outlier: Number(row[outlier]),
    }));
    const width = 420;
    const height = 260;
    const pad = 36;
    const maxX = Math.max(1, ...points.map((p) => p.outlier));
    const maxY = Math.max(0.01, ...points.map((p) => p.distance));
    const plot = svg('svg', { width, height, class: 'scatter' });
    const add = <K extends keyof SVGElementTagNameMap>(name: K, attributes: Record<string, string | number>, text?: string) => plot.appendChild(svg(name, attributes, text));
    add('line', { x1: pad, y1: height - pad, x2: width - 8, y2: height - pad, class: 'axis' });
    add('line', { x1: pad, y1: 8, x2: pad, y2: height - pad, class: 'axis' });
    add('text', { x: width / 2, y: height - 6, 'text-anchor': 'middle' }, 'outlier score');
    add('text', { x: 12, y: height / 2, transform: `rotate(-90 12 ${height / 2})`, 'text-anchor': 'middle' }, 'distance to its category');
    for (const p of points) {
      const dot = add('circle', {
        cx: pad + (p.outlier / maxX) * (width - pad - 16),
        cy: height - pad - (p.distance / maxY) * (height - pad - 16),
        r: 5,
        fill: colour(p.category),
        'data-category': p.category,
      });
      dot.append(svg('title', {}, `${p.name}: category ${p.category}, distance ${p.distance}, outlier ${p.outlier}`));
    }
    const legend = document.createElement('ul');
    legend.className = 'legend';
    const seen = new Set<number>();
    for (const row of result.rows) {
      const c = Number(row[category]);
      if (seen.has(c)) continue;
      seen.add(c);
      const li = document.createElement('li');
      li.style.setProperty('--colour', colour(c));
      li.textContent = `category ${c}: ${formatCell(row[size])} · ${formatCell(row[features])}`;
      legend.append(li);
    }
    this.element.replaceChildren(plot, legend);
    this.element.dataset.points = String(points.length);
  }
}
