import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

/**
 * The runtime a process holds is replaced only by another version (install.ts asks for its version):
 * a change to target/runtime.js that keeps the version would leave processes attached before it
 * running the old code. Each version's source, by the first 16 hex digits of its SHA-256 (the older
 * versions' stay: a version is never given twice).
 */
const RECORDED: Record<number, string> = {
  10: 'c458289a812b0945',
  11: 'e331436837ef4564',
  12: '57f80d3ac59c9a8a',
  13: '505dc77956f403c7',
  14: '3a1a85c8c7980507',
};

describe('the runtime’s version', () => {
  it('changes whenever the runtime’s source does', () => {
    const source = readFileSync(new URL('./target/runtime.js', import.meta.url), 'utf8');
    const version = Number(/const VERSION = (\d+);/.exec(source)?.[1]);
    const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
    const recorded = RECORDED[version];
    assert.ok(recorded !== undefined, `version ${version} is new: record its hash here, ${hash}`);
    assert.equal(recorded, hash, `target/runtime.js changed since version ${version} was recorded: give it version ${version + 1} (const VERSION)`);
  });
});
