import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { RUNTIME_VERSION } from './runtime/contract.js';
import { bundleRuntime } from './runtime-script.js';

/**
 * The runtime a process holds is replaced only by another version (install.ts asks for its version):
 * a change to the runtime that keeps the version would leave processes attached before it running
 * the old code. Each version's script, as the inspector evaluates it, by the first 16 hex digits of
 * its SHA-256 (the older versions' stay: a version is never given twice). Up to 14 the runtime was
 * one JavaScript file (target/runtime.js); from 15 it is runtime/*.ts, bundled (comments do not count).
 */
const RECORDED: Record<number, string> = {
  10: 'c458289a812b0945',
  11: 'e331436837ef4564',
  12: '57f80d3ac59c9a8a',
  13: '505dc77956f403c7',
  14: '3a1a85c8c7980507',
  15: 'bb77bf2cb6067d7e',
  16: '432ff8426f51167d',
  17: '8f8d3402a5dfb62c',
  18: '150642d61c44b86a',
  19: 'e3c3b344d5805351',
  20: 'a842d1ea945988bd',
  21: 'fdaa884d04f297cc',
  22: '2e7ec9228c1f8c91',
  23: '00f0d2f64a8260b6',
  24: '031a61e312908995',
  25: '1693ee92ebc79941',
  26: 'cc9d069c0f875c74',
};

describe('the runtime’s version', () => {
  it('changes whenever the runtime’s code does', () => {
    const hash = createHash('sha256').update(bundleRuntime()).digest('hex').slice(0, 16);
    const recorded = RECORDED[RUNTIME_VERSION];
    assert.ok(recorded !== undefined, `version ${RUNTIME_VERSION} is new: record its hash here, ${hash}`);
    assert.equal(recorded, hash, `the runtime changed since version ${RUNTIME_VERSION} was recorded: give it version ${RUNTIME_VERSION + 1} (RUNTIME_VERSION in runtime/contract.ts)`);
  });
});
