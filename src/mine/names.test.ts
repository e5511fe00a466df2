import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Names } from './names.js';

/** A string with the same text as `text` but an object of its own, as JSON.parse gives each occurrence. */
const copyOf = (text: string): string => (JSON.parse(JSON.stringify([text])) as string[])[0]!;

describe('Names: a window\'s features numbered as first met', () => {
  it('numbers names in the order first met, and a name met again (another string of the same text) keeps its number', () => {
    const names = new Names();
    const first = ['syscall:read', 'syscall:write', 'syscall:openat', '', 'a', 'syscall:read2'];
    assert.deepEqual(first.map((n) => names.number(n)), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...first].reverse().map((n) => names.number(copyOf(n))), [5, 4, 3, 2, 1, 0]);
    assert.deepEqual(names.list(), first);
    assert.equal(names.size, 6);
  });

  it('keeps every number through growth, for names alike but in one character', () => {
    const names = new Names();
    const many = Array.from({ length: 5000 }, (_, i) => `syscall:call_${String(i).padStart(5, '0')}`);
    many.forEach((n, i) => assert.equal(names.number(n), i));
    for (let i = many.length - 1; i >= 0; i -= 7) assert.equal(names.number(copyOf(many[i]!)), i);
    assert.equal(names.size, 5000);
    assert.equal(names.hashing, true, 'these names hash apart');
  });

  it('names alike in every character it samples still get their own numbers (it stops hashing its own way)', () => {
    const names = new Names();
    // Length, first, middle and last four characters the same: one hash for all.
    const alike = Array.from({ length: 3000 }, (_, i) => `p${String(i).padStart(6, '0')}qqqqqqqqq`);
    alike.forEach((n, i) => assert.equal(names.number(n), i));
    assert.equal(names.hashing, false);
    alike.forEach((n, i) => assert.equal(names.number(copyOf(n)), i));
    assert.equal(names.number('new'), 3000);
  });

  it('starts empty again when cleared', () => {
    const names = new Names();
    names.number('x');
    names.number('y');
    names.clear();
    assert.equal(names.size, 0);
    assert.equal(names.number('y'), 0);
    assert.deepEqual(names.list(), ['y']);
  });
});
