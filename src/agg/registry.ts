import type { AggregateFunction, AggregateKind } from './aggregate.js';
import { avg, count, first, last, max, min, stddev, sum } from './basic.js';
import { quantiles } from './ddsketch.js';
import { hist, lhist } from './histograms.js';
import { distinct } from './hyperloglog.js';
import { sample } from './reservoir.js';
import { topk } from './topk.js';

/** An aggregate as a query calls it: the function and its constant parameters. */
export interface AggregateCall {
  readonly function: AggregateFunction;
  readonly params: readonly number[];
}

/** The mergeable state kind for one aggregate call, e.g. quantiles(x, 0.5, 0.99) → a DDSketch reporting p50 and p99. */
export function createAggregate(call: AggregateCall): AggregateKind {
  const p = call.params;
  switch (call.function) {
    case 'count':
      return count;
    case 'sum':
      return sum;
    case 'min':
      return min;
    case 'max':
      return max;
    case 'avg':
      return avg;
    case 'stddev':
      return stddev;
    case 'hist':
      return hist;
    case 'lhist':
      return lhist({ min: p[0]!, max: p[1]!, step: p[2]! });
    case 'quantiles':
      return quantiles(p);
    case 'distinct':
      return distinct;
    case 'topk':
      return topk(p[0]!);
    case 'first':
      return first;
    case 'last':
      return last;
    case 'sample':
      return sample(p[0]!);
  }
}
