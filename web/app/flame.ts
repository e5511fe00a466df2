import flamegraph, { type FlameGraph } from 'd3-flame-graph';
import { select } from 'd3-selection';
import type { ResultMessage } from '../../src/cluster/cluster-stage.js';
import { foldedLines } from '../../src/output/folded-stacks.js';
import { stackTree } from './stacks.js';

/**
 * The flame graph of a count by a stack (`profile:` and `profile:js:` queries, or any): the
 * result's stacks, as `--folded` prints them, made a tree; d3-flame-graph draws it. Click a frame
 * to zoom in, Reset to zoom out, Search to mark the frames whose name has the text.
 */

/** A chart for one tree: d3-flame-graph sizes its drawing to the first tree it is given. */
function chartFor(width: number): FlameGraph {
  return flamegraph().width(width).cellHeight(18).transitionDuration(0).minFrameSize(1).sort(true).title('');
}

export class FlameView {
  private chart: FlameGraph | undefined;

  constructor(
    private readonly element: HTMLElement,
    private readonly search: HTMLInputElement,
    reset: HTMLButtonElement,
  ) {
    search.addEventListener('input', () => {
      if (search.value === '') this.chart?.clear();
      else this.chart?.search(search.value);
    });
    reset.addEventListener('click', () => this.chart?.resetZoom());
  }

  clear(): void {
    this.chart = undefined;
    this.element.replaceChildren();
    this.element.dataset.frames = '0';
  }

  show(result: ResultMessage): void {
    const tree = stackTree(foldedLines(result));
    this.chart = chartFor(Math.max(300, Math.min(1100, document.body.clientWidth - 40)));
    this.element.replaceChildren();
    select(this.element).datum(tree).call(this.chart);
    // A search stays on as the windows come.
    if (this.search.value !== '') this.chart.search(this.search.value);
    this.element.dataset.frames = String(this.element.querySelectorAll('g.frame').length);
  }
}
