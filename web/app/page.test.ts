import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { colour, highlightHtml } from './highlight.js';
import { withRange } from './range.js';
import { stackTree } from './stacks.js';

/** The page's parts that need no browser: FayQL colouring, the history range, the flame graph's tree. */

describe("fay web's page, without a browser", () => {
  it('colours a query by its tokens, probe points first', () => {
    const text = 'syscall:openat, syscall:read | where comm == "x" | count() by comm every 1s';
    const kinds = colour(text).map((c) => `${c.kind}:${text.slice(c.start, c.end)}`);
    assert.deepEqual(kinds, [
      'probe:syscall:openat', 'operator:,', 'probe:syscall:read', 'pipe:|', 'keyword:where', 'name:comm', 'operator:==', 'string:"x"',
      'pipe:|', 'function:count', 'operator:(', 'operator:)', 'keyword:by', 'name:comm', 'keyword:every', 'number:1s',
    ]);
  });

  it('leaves what it cannot read plain, and escapes HTML', () => {
    assert.equal(highlightHtml('syscall:openat | where comm == "<b>" $'), '<span class="tok-probe">syscall:openat</span> <span class="tok-pipe">|</span> <span class="tok-keyword">where</span> <span class="tok-name">comm</span> <span class="tok-operator">==</span> <span class="tok-string">&quot;&lt;b&gt;&quot;</span> $\n');
  });

  it('writes the history range into a stored: query after its source, and leaves others as typed', () => {
    assert.equal(withRange('stored:opens | count() by comm', '1h', '', ''), 'stored:opens | where time > now() - 1h | count() by comm');
    assert.equal(withRange('stored:opens', '15m', '', ''), 'stored:opens | where time > now() - 15m');
    assert.equal(withRange('syscall:openat | count()', '1h', '', ''), 'syscall:openat | count()');
    assert.equal(withRange('stored:opens | count()', '', '', ''), 'stored:opens | count()');
    const from = new Date(Date.now() - 2 * 3600e3).toISOString().slice(0, 16);
    assert.match(withRange('stored:opens | count()', 'custom', from, ''), /^stored:opens \| where time >= now\(\) - 7\d{3}s \| count\(\)$/);
  });

  it('makes folded stacks a tree, each frame the sum of what is under it', () => {
    const tree = stackTree(['main;a;b 3', 'main;a 2', 'main;c 5', 'bad line', 'main;z 0']);
    assert.deepEqual(tree, {
      name: 'all', value: 10, children: [{ name: 'main', value: 10, children: [
        { name: 'a', value: 5, children: [{ name: 'b', value: 3, children: [] }] },
        { name: 'c', value: 5, children: [] },
      ] }],
    });
  });
});
