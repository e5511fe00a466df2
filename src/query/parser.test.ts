import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QueryError } from '../errors.js';
import type { ExprNode, QueryNode } from './ast.js';
import { parseExpression, parseQuery } from './parser.js';
import { printExpression, printQuery } from './printer.js';

/** A tree without source positions, to compare the meaning of two parses. */
function shape(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(shape);
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).filter(([k]) => k !== 'span').map(([k, v]) => [k, shape(v)]));
  }
  return node;
}

function syntaxError(query: string): QueryError {
  try {
    parseQuery(query);
  } catch (error) {
    assert.ok(error instanceof QueryError, `expected a QueryError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${query} to be rejected`);
}

const QUERIES = [
  'syscall:*',
  'syscall:openat, syscall:openat2 | count()',
  'syscall:* | where comm == "node" | count() by comm, probe | top 10',
  'tracepoint:kmem:kmalloc | where time > now() - 5m | count()',
  'uprobe:/usr/bin/node:uv_fs_open | count() by host every 1s',
  'syscall:read | hist(ret) by comm | limit 5',
  'profile:99hz | where comm == "node" | count() by ustack | top 20',
  'syscall:openat | where args.filename =~ "/etc/*" and not (ret < 0 or duration >= 1ms) | select pid, name = args.filename',
  'uprobe:/bin/x:f | let d = duration / 1000, big = args[0] > 10 | where big | n = count(), avg(d) by pid | top 3 by n asc',
  'syscall:getppid | where pid in (1, 2, 3) and comm not in ("a", "b") | count()',
  'syscall:write | where -args.count + 3 * (2 - 1) % 2 != 0 | sum(args.count) by comm | where sum(args.count) > 0',
  'tracepoint:sched:sched_switch | count() by args.next_comm every 250ms | every 1s',
  'syscall:openat | where comm == "tab\\there \\"quoted\\" \\\\ back" | count()',
  "uprobe:\"/opt/my app/bin\":main | count()",
  'js:comm=node:./lib/db.js#query* | count()',
  'syscall:read | sample 1% | n = count() scaled, sample(5) by comm | window 1m slide 10s',
  'syscall:read | sample 1 in 100 | count() | last 5m | every 10s',
  'syscall:openat | on host =~ "web-*" or host in ("db1", "db2") | count() by host',
];

describe('FayQL parser', () => {
  it('parses the queries of the design document', () => {
    for (const query of QUERIES) assert.doesNotThrow(() => parseQuery(query), query);
  });

  it('prints queries that parse back to the same tree', () => {
    for (const query of QUERIES) {
      const tree = parseQuery(query);
      const printed = printQuery(tree);
      assert.deepEqual(shape(parseQuery(printed)), shape(tree), `${query}\nprinted as\n${printed}`);
      assert.equal(printQuery(parseQuery(printed)), printed, 'printing is stable');
    }
  });

  it('keeps precedence: and binds tighter than or, comparison tighter than and', () => {
    const e = parseExpression('a == 1 or b == 2 and c == 3') as Extract<ExprNode, { kind: 'Binary' }>;
    assert.equal(e.operator, '||');
    assert.equal((e.right as Extract<ExprNode, { kind: 'Binary' }>).operator, '&&');
    assert.equal(printExpression(parseExpression('(a + b) * c')), '(a + b) * c');
    assert.equal(printExpression(parseExpression('a - (b - c)')), 'a - (b - c)');
    assert.equal(printExpression(parseExpression('(a - b) - c')), 'a - b - c');
  });

  it('reads durations in nanoseconds', () => {
    const values = ['1ns', '2us', '3ms', '1.5s', '5m', '2h', '1d'].map((d) => (parseExpression(d) as { value: number }).value);
    assert.deepEqual(values, [1, 2000, 3_000_000, 1_500_000_000, 300_000_000_000, 7_200_000_000_000, 86_400_000_000_000]);
  });

  it('reads probe points with paths, globs and quoted parts as one token', () => {
    const query: QueryNode = parseQuery('uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:mall*, js:pid=12:fs.readFile* | count()');
    assert.deepEqual(query.sources.map((s) => s.text), ['uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:mall*', 'js:pid=12:fs.readFile*']);
  });

  it('points at the line and column of a syntax error', () => {
    const error = syntaxError('syscall:openat\n  | where comm == \n  | count()');
    assert.equal(error.span.start, 'syscall:openat\n  | where comm == \n  '.length);
    assert.equal(
      error.describe(),
      [
        'error at line 3, column 3: expected an expression, found "|"',
        '3 |   | count()',
        '      ^',
      ].join('\n'),
    );
  });

  it('says what was expected', () => {
    const cases: [string, RegExp, number][] = [
      ['syscall:openat | where comm = "x"', /use == to test equality/, 28],
      ['syscall:openat | count(', /expected an expression, found end of query/, 23],
      ['syscall:openat | count() by', /expected an expression/, 27],
      ['syscall:openat | frobnicate', /expected "\(" after frobnicate/, 27],
      ['syscall:openat | top x', /expected a whole number after top/, 21],
      ['syscall:openat | count() every 10', /expected a duration such as 1s after every/, 31],
      ['syscall:openat | where a < b < c', /comparisons do not chain/, 29],
      ['syscall:openat | where comm == "open', /unterminated string/, 31],
      ['syscall:openat | where x == 5parsecs', /unknown unit "parsecs"/, 29],
      ['syscall:openat count()', /expected "\|" or "," after the probe point/, 15],
      ['| count()', /expected a probe point/, 0],
      ['syscall:openat | count() | where', /expected an expression, found end of query/, 32],
    ];
    for (const [query, message, column] of cases) {
      const error = syntaxError(query);
      assert.match(error.message, message, query);
      assert.equal(error.span.start, column, `${query}: ${error.message}`);
    }
  });

  it('treats # as a comment outside probe points', () => {
    const query = parseQuery('syscall:openat # every open\n| count() # how many');
    assert.equal(printQuery(query), 'syscall:openat | count()');
  });
});
