import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WallClock } from './wall-clock.js';

/** A monotonic clock that advances 100 ns a read, and a wall clock derived from it with a step that can be set. */
function fakeClocks(startWallNs: number) {
  let mono = 1_000_000_000;
  let stepNs = 0;
  return {
    monotonicNs: () => (mono += 100),
    wallMs: () => Math.floor((startWallNs + mono - 1_000_000_000 + stepNs) / 1e6),
    step: (ns: number) => (stepNs += ns),
    mono: () => mono,
  };
}

describe('the wall clock in monotonic terms', () => {
  it('finds the offset to the microsecond from a clock that gives milliseconds', () => {
    const clocks = fakeClocks(1_796_610_970_306_057_200);
    const clock = new WallClock(clocks.wallMs, clocks.monotonicNs);
    const offset = clock.offset();
    // The true offset is start wall ns - 1e9 (the fake's monotonic start); found within a read or two.
    assert.ok(Math.abs(offset - (1_796_610_970_306_057_200 - 1_000_000_000)) <= 200, `off by ${offset - (1_796_610_970_306_057_200 - 1_000_000_000)} ns`);
  });

  it('follows a step of the wall clock, forward and back, and keeps its offset otherwise', () => {
    const clocks = fakeClocks(1_796_610_970_000_000_000);
    const clock = new WallClock(clocks.wallMs, clocks.monotonicNs);
    const before = clock.offset();
    assert.equal(clock.offset(), before, 'no step: the same offset');
    clocks.step(4_193_000_000);
    assert.ok(Math.abs(clock.offset() - before - 4_193_000_000) <= 200, 'stepped forward 4.193 s');
    clocks.step(-10_000_000_000);
    assert.ok(Math.abs(clock.offset() - before + 5_807_000_000) <= 200, 'stepped back 10 s');
  });

  it('agrees with Date.now() on this machine', () => {
    const clock = new WallClock();
    const offset = clock.offset();
    // Adjacent reads, the closest of five (a preemption between two reads is not the clock's error).
    const diffs = Array.from({ length: 5 }, () => {
      const wall = Number(process.hrtime.bigint()) + offset;
      return wall - Date.now() * 1e6;
    });
    const closest = diffs.reduce((a, b) => (Math.abs(a) < Math.abs(b) ? a : b));
    // Date.now() is floored to the ms: the wall clock is up to 1 ms past it.
    assert.ok(closest >= -0.5e6 && closest <= 1.5e6, `${closest / 1e6} ms from Date.now()`);
  });
});
