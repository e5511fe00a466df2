import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bufferBytes, socketAddressText } from './sockaddr.js';

describe('socket addresses from the bytes bpftrace prints', () => {
  it('reads printable bytes as themselves and the others from their escapes', () => {
    assert.deepEqual(bufferBytes('\\x02\\x00\\x00P\\x7f\\x00\\x00\\x01'), [2, 0, 0, 80, 127, 0, 0, 1]);
  });

  it('writes IPv4 and IPv6 addresses with their ports, and nothing for other families', () => {
    const v6 = (family: number, port: number, groups: number[]) => [
      family & 0xff, family >> 8, port >> 8, port & 0xff, 0, 0, 0, 0,
      ...groups.flatMap((g) => [g >> 8, g & 0xff]),
    ];
    assert.equal(socketAddressText([2, 0, 0x1f, 0x90, 10, 1, 2, 3]), '10.1.2.3:8080');
    assert.equal(socketAddressText(v6(10, 443, [0, 0, 0, 0, 0, 0, 0, 1])), '[::1]:443');
    assert.equal(socketAddressText(v6(10, 80, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])), '[2001:db8::1]:80');
    assert.equal(socketAddressText(v6(10, 80, [0x2001, 0xdb8, 0, 1, 0, 0, 0, 1])), '[2001:db8:0:1::1]:80', 'the longer run of zeros');
    assert.equal(socketAddressText(v6(10, 80, [0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])), '[2001:db8:0:1:1:1:1:1]:80', 'one zero group stays');
    assert.equal(socketAddressText(v6(10, 80, [0, 0, 0, 0, 0, 0, 0, 0])), '[::]:80');
    assert.equal(socketAddressText([1, 0, 0x2f, 0x74, 0x6d, 0x70, 0, 0]), '', 'AF_UNIX');
    assert.equal(socketAddressText([2, 0]), '', 'too short');
  });
});
