import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { Windower, type Emission } from './windows.js';

const kinds = [createAggregate({ function: 'count', params: [] }), createAggregate({ function: 'max', params: [] })];
const SECOND = 1e9;
const T0 = 1_800_000_000 * SECOND;

/** Period i covers [T0 + i s, T0 + (i+1) s) and holds the events given as [key, value]. */
function period(i: number, events: [string, number][]) {
  const table = new GroupTable(kinds);
  for (const [key, value] of events) table.add([key], [undefined, value], T0 + i * SECOND);
  return { table, startNs: T0 + i * SECOND, endNs: T0 + (i + 1) * SECOND, hosts: ['h1'], droppedEvents: i, uncountedEvents: 0 };
}

const PERIODS = [
  period(0, [['a', 5], ['a', 1]]),
  period(1, [['b', 7]]),
  period(2, []),
  period(3, [['a', 2], ['b', 1]]),
  period(4, [['a', 9]]),
];

function rows(e: Emission): Record<string, [number, number | null]> {
  return Object.fromEntries(e.table.finalize().map((g) => [g.key[0] as string, g.values as [number, number | null]]));
}

describe('windows over periods (event times, no clock)', () => {
  it('tumbling: each result is exactly its own period', () => {
    const w = new Windower(() => new GroupTable(kinds), 1);
    const out = PERIODS.map((p) => w.push(p));
    assert.deepEqual(out.map(rows), [{ a: [2, 5] }, { b: [1, 7] }, {}, { a: [1, 2], b: [1, 1] }, { a: [1, 9] }]);
    assert.deepEqual(out.map((e) => [(e.startNs - T0) / SECOND, (e.endNs - T0) / SECOND, e.complete]), [
      [0, 1, true], [1, 2, true], [2, 3, true], [3, 4, true], [4, 5, true],
    ]);
    assert.equal(w.finish(T0 + 5 * SECOND), undefined, 'nothing more to say at the end');
  });

  it('sliding (window 3s slide 1s, or last 3s): each result covers the last three periods, older ones drop out', () => {
    const w = new Windower(() => new GroupTable(kinds), 3);
    const out = PERIODS.map((p) => w.push(p));
    assert.deepEqual(out.map(rows), [
      { a: [2, 5] },
      { a: [2, 5], b: [1, 7] },
      { a: [2, 5], b: [1, 7] },
      { a: [1, 2], b: [2, 7] },
      { a: [2, 9], b: [1, 1] },
    ]);
    assert.deepEqual(out.map((e) => [(e.startNs - T0) / SECOND, (e.endNs - T0) / SECOND]), [[0, 1], [0, 2], [0, 3], [1, 4], [2, 5]]);
    assert.deepEqual(out.map((e) => e.droppedEvents), [0, 1, 3, 6, 9], 'drops add up over the periods a window covers');
    // The max of period 0 (5) is gone once period 0 left the window.
    assert.equal(rows(out[4]!).a![1], 9);
    assert.equal(rows(out[3]!).a![1], 2);
  });

  it('running: one result grows, and only the final one is complete', () => {
    const w = new Windower(() => new GroupTable(kinds), undefined);
    const out = PERIODS.map((p) => {
      const e = w.push(p);
      return { complete: e.complete, rows: rows(e) };
    });
    assert.ok(out.every((e) => !e.complete));
    assert.deepEqual(out[2]!.rows, { a: [2, 5], b: [1, 7] });
    const final = w.finish(T0 + 9 * SECOND)!;
    assert.equal(final.complete, true);
    assert.deepEqual(rows(final), { a: [4, 9], b: [2, 7] });
    assert.deepEqual([(final.startNs - T0) / SECOND, (final.endNs - T0) / SECOND], [0, 5]);
  });
});
