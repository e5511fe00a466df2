import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent } from '../agent/agent.js';
import { EmbeddedCluster } from '../cluster/embedded.js';
import { FayError } from '../errors.js';
import { globToRegExp } from '../plan/expr.js';
import { LANGUAGE_LIMITS } from '../plan/limits.js';
import { BpftraceSymbolLister } from '../probes/bpf/symbols.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';
import { PROTOTYPE_NAMES, PROTOTYPE_PLACES } from '../testing/fuzz.js';

const cluster = new EmbeddedCluster(new Agent(fixtureRegistry(), 'testhost'));

/** How explaining a query ended: its user error, or the plan; anything else thrown fails the test. */
function outcome(query: string): { error?: FayError; ms: number } {
  const started = performance.now();
  try {
    cluster.explain(query);
    return { ms: performance.now() - started };
  } catch (error) {
    if (!(error instanceof FayError)) throw error;
    return { error, ms: performance.now() - started };
  }
}

/** The user error a query is refused with, within a second. */
function refusal(query: string): FayError {
  const { error, ms } = outcome(query);
  assert.ok(error, `${query.slice(0, 80)}… was accepted`);
  assert.ok(ms < 1000, `${Math.round(ms)} ms to refuse ${query.slice(0, 80)}…`);
  return error;
}

/** Every number anywhere in a value, to find NaN and infinities in a plan. */
function numbers(value: unknown, out: number[] = [], seen = new Set<object>()): number[] {
  if (typeof value === 'number') out.push(value);
  else if (value !== null && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) numbers(v, out, seen);
  }
  return out;
}

describe('the language has limits, and says so', () => {
  it('refuses let chains that grow exponentially once written out, at once', () => {
    let query = 'syscall:read | let b0 = pid';
    for (let i = 1; i <= 40; i++) query += ` | let b${i} = b${i - 1} + b${i - 1}`;
    const error = refusal(`${query} | where b40 > 0 | count()`);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, new RegExp(`more than ${LANGUAGE_LIMITS.maxExpressionNodes} parts`));
    // A chain that stays small is fine.
    assert.equal(outcome('syscall:read | let a = pid + 1 | let b = a * 2 | let c = b + a | where c > 0 | count()').error, undefined);
  });

  it('reads names as the language has them, never through Object.prototype', () => {
    for (const name of PROTOTYPE_NAMES) {
      for (const place of PROTOTYPE_PLACES) {
        const query = place(name);
        const { error } = outcome(query);
        if (error) {
          assert.ok(error.exitCode === 2 || error.exitCode === 3, query);
          continue;
        }
        // Accepted (a column named toString, a string "constructor"): then with no setting made of NaN.
        const plan = cluster.plan(query);
        assert.deepEqual(numbers(plan).filter((n) => !Number.isFinite(n)), [], query);
      }
    }
    assert.match(refusal('syscall:read | count() every 1constructor').message, /unknown unit "constructor"/);
    assert.match(refusal('syscall:read | count() | window 1valueOf').message, /unknown unit "valueOf"/);
    assert.match(refusal('syscall:read | where toString()').message, /unknown function toString\(\)/);
    assert.match(refusal('syscall:read | let __proto__ = pid | count() by __proto__').message, /__proto__ cannot name a column/);
  });

  it('refuses input nested or repeated past its documented limits, with the limit', () => {
    const deep = 5000;
    const cases: [string, RegExp][] = [
      [`syscall:read | where ${'('.repeat(deep)}pid == 1${')'.repeat(deep)}`, /nests more than 100 levels deep/],
      [`syscall:read | where ${'not '.repeat(deep)}true`, /nests more than 100 levels deep/],
      [`syscall:read | where ${'-'.repeat(deep)}1 == pid`, /nests more than 100 levels deep/],
      [`syscall:read | where ${Array.from({ length: 2000 }, (_, i) => `pid == ${i}`).join(' and ')}`, /more than 10000 parts|nests more than 100/],
      [`syscall:read | where pid in (${Array.from({ length: deep }, (_, i) => i).join(', ')})`, /an in list holds at most 1000 values/],
      [`syscall:read${' | where true'.repeat(deep)} | count()`, /a query has at most 64 stages/],
      [`syscall:${'r'.repeat(1_000_000)} | count()`, /the query is \d+ characters long; the most is 65536/],
      [`syscall:${'r'.repeat(2000)} | count()`, /at most 1024 characters/],
      [`syscall:read | where comm =~ "${'*'.repeat(50_000)}"`, /a pattern is at most 1024 characters/],
      [`syscall:read | where comm == "${'x'.repeat(70_000)}"`, /the query is \d+ characters long; the most is 65536/],
    ];
    for (const [query, message] of cases) {
      const error = refusal(query);
      assert.equal(error.exitCode, 2, query.slice(0, 80));
      assert.match(error.message, message, query.slice(0, 80));
    }
    // At the limit, not past it: 100 levels and 1000 values are fine.
    assert.equal(outcome(`syscall:read | where ${'('.repeat(99)}pid == 1${')'.repeat(99)} | count()`).error, undefined);
    assert.equal(outcome(`syscall:read | where pid in (${Array.from({ length: 1000 }, (_, i) => i).join(', ')}) | count()`).error, undefined);
  });

  it('matches globs in time linear in the text, whatever their stars', () => {
    // A backtracking matcher takes exponential time on this; one that finds each part once does not.
    const glob = `${'*a'.repeat(400)}*b`;
    const started = performance.now();
    assert.equal(globToRegExp(glob).test('a'.repeat(100_000)), false);
    assert.equal(globToRegExp(glob).test(`${'a'.repeat(100_000)}b`), true);
    assert.ok(performance.now() - started < 1000, `${Math.round(performance.now() - started)} ms`);
    assert.equal(globToRegExp('*.js').test('lib/a.js'), true);
    assert.equal(globToRegExp('a?c').test('abc'), true);
    assert.equal(globToRegExp('a?c').test('ac'), false);
  });

  it('refuses numbers beyond what stays exact, and periods shorter than 10 ms', () => {
    for (const n of ['18446744073709551616', '9007199254740993', '1' + '0'.repeat(400)]) {
      assert.match(refusal(`syscall:read | where pid == ${n}`).message, /numbers in FayQL are at most 9007199254740991/, n);
    }
    assert.match(refusal('syscall:read | count() every 1ns').message, /results come every 10ms at the most often/);
    assert.match(refusal('syscall:read | count() every 9ms').message, /every 10ms at the most often/);
    assert.match(refusal('syscall:read | count() | window 1000d slide 1ms').message, /durations in FayQL are at most/);
    assert.equal(outcome('syscall:read | count() every 10ms').error, undefined);
  });

  it('names no binary with a control character in it, NUL above all', () => {
    const lister = new BpftraceSymbolLister('/nonexistent/bpftrace');
    for (const path of ['/usr/bin/no\u0000de', '/usr/bin/node\n', 'li\u0007bc']) assert.equal(lister.resolveBinary(path), undefined, JSON.stringify(path));
    const error = refusal('uprobe:"/usr/bin/no\\0de":uv_fs_open | count()');
    assert.equal(error.exitCode, 2);
  });
});
