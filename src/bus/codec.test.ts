import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusMessageError, decodeMessage, encodeMessage } from './codec.js';

/** Bus bytes: large messages gzipped for a bus that leaves the process, plain JSON on one that does not; both read back. */
describe('the bus codec', () => {
  const big = { kind: 'window', table: Array.from({ length: 500 }, (_, i) => [`proc-${i % 50}`, i]) };

  it('gzips a large message for the wire and leaves it JSON on an in-process bus', () => {
    const wire = encodeMessage(big);
    assert.deepEqual([wire[0], wire[1]], [0x1f, 0x8b]);
    const local = encodeMessage(big, false);
    assert.equal(Buffer.from(local).toString('utf8'), JSON.stringify(big));
    assert.ok(wire.length < local.length / 3, `${wire.length} gzipped against ${local.length}`);
    assert.deepEqual(decodeMessage(wire, 1 << 20), big);
    assert.deepEqual(decodeMessage(local, 1 << 20), big);
  });

  it('refuses what inflates past the limit, and what is not JSON', () => {
    const wire = encodeMessage(big);
    assert.throws(() => decodeMessage(wire, 2000), BusMessageError);
    assert.throws(() => decodeMessage(Buffer.from('{not json'), 100), BusMessageError);
  });
});
