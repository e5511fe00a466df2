import { wireArray, wireNumber, type AggregateKind, type SampleResult, type Scalar } from './aggregate.js';

type Event = Readonly<Record<string, Scalar>>;

/**
 * sample(n): a uniform sample of whole events without replacement, by bottom-k
 * sampling: each event draws a random key and the n smallest keys are kept.
 * The n smallest keys of a union are the n smallest of its parts' samples, so
 * merging is exact: a merged sample is what one reservoir would have kept.
 */
export interface ReservoirState {
  /** Sorted by key, at most n. */
  items: { key: number; event: Event }[];
  seen: number;
}

function insert(s: ReservoirState, n: number, key: number, event: Event): void {
  const items = s.items;
  if (items.length >= n && key >= items[items.length - 1]!.key) return;
  let at = items.length;
  while (at > 0 && items[at - 1]!.key > key) at--;
  items.splice(at, 0, { key, event });
  if (items.length > n) items.pop();
}

export function sample(n: number, random: () => number = Math.random): AggregateKind<ReservoirState, SampleResult> {
  return {
    name: 'sample',
    empty: () => ({ items: [], seen: 0 }),
    add: (s, v) => {
      s.seen++;
      insert(s, n, random(), v as Event);
    },
    merge: (into, from) => {
      into.seen += from.seen;
      for (const item of from.items) insert(into, n, item.key, item.event);
    },
    finalize: (s) => ({ kind: 'sample', events: s.items.map((i) => i.event), seen: s.seen }),
    encode: (s) => [s.seen, s.items.flatMap((i) => [i.key, i.event])],
    decode: (w) => {
      const [seen, flat] = wireArray(w, 2);
      const items = wireArray(flat);
      const state: ReservoirState = { items: [], seen: wireNumber(seen) };
      for (let i = 0; i + 1 < items.length; i += 2) {
        const event = items[i + 1];
        if (!event || typeof event !== 'object' || Array.isArray(event)) throw new TypeError('a sampled event is an object');
        insert(state, n, wireNumber(items[i]), event as Event);
      }
      return state;
    },
  };
}
