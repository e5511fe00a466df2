import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstallConfig } from './contract.js';

// The runtime takes Date.now when it loads: this one can be stepped as NTP or a resumed VM would.
const realNow = Date.now;
let stepMs = 0;
Date.now = () => realNow() + stepMs;
const { handlerHelpers } = await import('./helpers.js');
Date.now = realNow;

describe("the runtime's time of an event", () => {
  const helpers = handlerHelpers({ pid: 1, comm: 'test', host: 'h' } as InstallConfig);
  // Within 5 ms: a reading is compared with one taken after it (a preemption may come between); the steps are seconds.
  const near = (ns: number, wallMs: number) => assert.ok(Math.abs(ns / 1e6 - wallMs) <= 5, `${ns / 1e6 - wallMs} ms from the wall clock`);

  it('is the wall clock, to the µs', () => {
    near(helpers.timeNs(), realNow());
    const a = helpers.timeNs();
    const b = helpers.timeNs();
    assert.ok(b >= a && b - a < 1e6, 'consecutive readings are close and in order');
  });

  it('follows a step of the wall clock after the process started, forward and back', () => {
    stepMs = 4193;
    near(helpers.timeNs(), realNow() + 4193);
    stepMs = -10_000;
    near(helpers.timeNs(), realNow() - 10_000);
    stepMs = 0;
    near(helpers.timeNs(), realNow());
  });
});
