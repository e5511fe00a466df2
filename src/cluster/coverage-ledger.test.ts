import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoverageLedger } from './coverage-ledger.js';

const MS = 1e6;

describe('the coverage ledger', () => {
  const ledger = () => new CoverageLedger(150 * MS, () => 'unexplained');

  it('takes a short unexplained break between windows for rounding, a longer one for a gap', () => {
    const l = ledger();
    l.window('a', 0, 300 * MS);
    l.window('a', 400 * MS, 700 * MS);
    assert.deepEqual(l.gaps(700 * MS), []);
    l.window('a', 1000 * MS, 1300 * MS);
    assert.deepEqual(l.gaps(1300 * MS), [{ host: 'a', startNs: 700 * MS, endNs: 1000 * MS, reason: 'unexplained' }]);
  });

  it('counts a break the host explained as a gap however short (probes off for 20 ms)', () => {
    const l = ledger();
    l.window('a', 0, 300 * MS);
    l.interrupted('a', 'its lease ran out', 310 * MS);
    l.window('a', 320 * MS, 600 * MS);
    assert.deepEqual(l.gaps(600 * MS), [{ host: 'a', startNs: 300 * MS, endNs: 320 * MS, reason: 'its lease ran out' }]);
  });

  it('finds no gap where an explained interruption is followed by a window that starts where the last ended', () => {
    const l = ledger();
    l.window('a', 0, 300 * MS);
    l.interrupted('a', 'its lease ran out', 300 * MS);
    l.window('a', 300 * MS, 600 * MS);
    assert.deepEqual(l.gaps(600 * MS), []);
  });
});
