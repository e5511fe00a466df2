import flamegraph from 'd3-flame-graph';
import { select } from 'd3-selection';
import type { ResultMessage } from '../../src/cluster/cluster-stage.js';
import { foldedLines } from '../../src/output/folded-stacks.js';

/**
 * The flame graph of a count by a stack (`profile:` and `profile:js:` queries, or any): the
 * result's stacks, as `--folded` prints them, made a tree; d3-flame-graph draws it. Click a frame
 * to zoom in, Reset to zoom out, Search to mark the frames whose name has the text.
 */

interface Frame {
  name: string;
  value: number;
  children: Frame[];
}

/** Whether a result is one stack and one count per row: what a flame graph draws. */
export function isStackResult(result: ResultMessage): boolean {
  const keys = result.columns.filter((c) => c.role === 'key');
  const aggregates = result.columns.filter((c) => c.role === 'aggregate');
  return keys.length === 1 && /stack/i.test(keys[0]!.name) && aggregates.length === 1 && (aggregates[0]!.function === 'count' || aggregates[0]!.function === 'sum');
}

/** The tree of folded stack lines (`outer;inner count`). */
export function stackTree(lines: readonly string[]): Frame {
  const root: Frame = { name: 'all', value: 0, children: [] };
  for (const line of lines) {
    const space = line.lastIndexOf(' ');
    const count = Number(line.slice(space + 1));
    if (!(count > 0)) continue;
    root.value += count;
    let node = root;
    for (const name of line.slice(0, space).split(';')) {
      let child = node.children.find((c) => c.name === name);
      if (!child) node.children.push((child = { name, value: 0, children: [] }));
      child.value += count;
      node = child;
    }
  }
  return root;
}

export class FlameView {
  private readonly chart = flamegraph().width(900).cellHeight(18).transitionDuration(0).minFrameSize(1).sort(true).title('');

  constructor(
    private readonly element: HTMLElement,
    search: HTMLInputElement,
    reset: HTMLButtonElement,
  ) {
    search.addEventListener('input', () => {
      if (search.value === '') this.chart.clear();
      else this.chart.search(search.value);
    });
    reset.addEventListener('click', () => this.chart.resetZoom());
  }

  clear(): void {
    this.element.replaceChildren();
    this.element.dataset.frames = '0';
  }

  show(result: ResultMessage): void {
    const tree = stackTree(foldedLines(result));
    this.chart.width(Math.max(300, Math.min(1100, document.body.clientWidth - 40)));
    this.element.replaceChildren();
    select(this.element).datum(tree).call(this.chart);
    this.element.dataset.frames = String(this.element.querySelectorAll('g.frame').length);
  }
}
