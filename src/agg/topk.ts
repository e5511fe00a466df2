import { wireArray, wireNumber, type AggregateKind, type Scalar, type TopKResult } from './aggregate.js';
import { scalarKey } from './hash.js';

interface Counter {
  value: Scalar;
  count: number;
  /** How much `count` may overstate. */
  error: number;
}

/**
 * topk(x, k): space-saving counters (Metwally et al. 2005), with room for
 * several times k values. While every value fits the counts are exact; after,
 * a new value takes over the smallest counter and inherits its count as error.
 * Merging adds counters (a value missing from a full side may have had up to
 * that side's smallest count) and keeps the largest.
 */
export interface TopKState {
  counters: Map<string, Counter>;
  total: number;
}

function smallest(s: TopKState, capacity: number): number {
  if (s.counters.size < capacity) return 0;
  let least = Infinity;
  for (const c of s.counters.values()) least = Math.min(least, c.count);
  return least;
}

function keepLargest(s: TopKState, capacity: number): void {
  if (s.counters.size <= capacity) return;
  const kept = [...s.counters].sort(([ka, a], [kb, b]) => b.count - a.count || (ka < kb ? -1 : 1)).slice(0, capacity);
  s.counters = new Map(kept);
}

/** Ties rank numbers by value, then anything else by its text. */
function compareScalars(a: Scalar, b: Scalar): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return scalarKey(a) < scalarKey(b) ? -1 : scalarKey(a) > scalarKey(b) ? 1 : 0;
}

export function topk(k: number): AggregateKind<TopKState, TopKResult> {
  const capacity = Math.max(4 * k, 64);
  return {
    name: 'topk',
    empty: () => ({ counters: new Map(), total: 0 }),
    add: (s, v) => {
      s.total++;
      const key = scalarKey(v);
      const counter = s.counters.get(key);
      if (counter) return void counter.count++;
      if (s.counters.size < capacity) return void s.counters.set(key, { value: v as Scalar, count: 1, error: 0 });
      let victim: string | undefined;
      let least = Infinity;
      for (const [k2, c] of s.counters) {
        if (c.count < least) {
          least = c.count;
          victim = k2;
        }
      }
      s.counters.delete(victim!);
      s.counters.set(key, { value: v as Scalar, count: least + 1, error: least });
    },
    merge: (into, from) => {
      const intoFloor = smallest(into, capacity);
      const fromFloor = smallest(from, capacity);
      for (const [key, c] of into.counters) {
        if (!from.counters.has(key)) {
          c.count += fromFloor;
          c.error += fromFloor;
        }
      }
      for (const [key, c] of from.counters) {
        const mine = into.counters.get(key);
        if (mine) {
          mine.count += c.count;
          mine.error += c.error;
        } else {
          into.counters.set(key, { value: c.value, count: c.count + intoFloor, error: c.error + intoFloor });
        }
      }
      into.total += from.total;
      keepLargest(into, capacity);
    },
    finalize: (s) => ({
      kind: 'topk',
      items: [...s.counters.values()]
        .sort((a, b) => b.count - a.count || compareScalars(a.value, b.value))
        .slice(0, k)
        .map((c) => ({ value: c.value, count: c.count, error: c.error })),
      total: s.total,
    }),
    encode: (s) => [s.total, [...s.counters.values()].flatMap((c) => [c.value, c.count, c.error])],
    decode: (w) => {
      const [total, flat] = wireArray(w, 2);
      const items = wireArray(flat);
      if (items.length % 3 !== 0) throw new TypeError('topk counters are [value, count, error, …]');
      const state: TopKState = { counters: new Map(), total: wireNumber(total) };
      for (let i = 0; i < items.length; i += 3) {
        const value = items[i] as Scalar;
        state.counters.set(scalarKey(value), { value, count: wireNumber(items[i + 1]), error: wireNumber(items[i + 2]) });
      }
      keepLargest(state, capacity);
      return state;
    },
  };
}
