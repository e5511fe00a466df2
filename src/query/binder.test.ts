import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QueryError } from '../errors.js';
import { printExpr } from '../plan/print-expr.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';
import { compileQuery } from './compile.js';

const catalog = fixtureRegistry();
const NOW = 1_800_000_000_000_000_000;

function rejected(query: string): QueryError {
  try {
    compileQuery(query, catalog, NOW);
  } catch (error) {
    assert.ok(error instanceof QueryError, `expected a QueryError for ${query}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${query} to be rejected`);
}

describe('binding queries to this machine’s probe points', () => {
  it('resolves fields by name and type and inlines let', () => {
    const plan = compileQuery(
      'syscall:openat | let late = duration > 1ms | where late and args.filename =~ "/etc/*" | count() by comm',
      catalog,
      NOW,
    );
    assert.equal(printExpr(plan.filter!), 'duration > 1000000 and args.filename =~ "/etc/*"');
    assert.equal(plan.output.kind, 'Aggregate');
  });

  it('gives an aggregate of durations their unit, ns, which a count or a computed value does not keep', () => {
    const plan = compileQuery('syscall:read | count(), avg(duration), p = quantiles(duration, 0.5), hist(duration), sum(duration / 1000), max(ret) by comm', catalog, NOW);
    assert.ok(plan.output.kind === 'Aggregate');
    assert.deepEqual(
      plan.output.aggregates.map((a) => [a.name, a.unit]),
      [['count', undefined], ['avg(duration)', 'ns'], ['p', 'ns'], ['hist(duration)', 'ns'], ['sum(duration / 1000)', undefined], ['max(ret)', undefined]],
    );
  });

  it('folds now() and durations into constants', () => {
    const plan = compileQuery('tracepoint:kmem:kmalloc | where time > now() - 5m | count()', catalog, NOW);
    assert.equal(printExpr(plan.filter!), `time > ${NOW - 300e9}`);
  });

  it('names columns after what they compute unless named', () => {
    const plan = compileQuery('syscall:read | n = count(), avg(ret), hist(ret) by comm, big = ret > 100', catalog, NOW);
    assert.ok(plan.output.kind === 'Aggregate');
    assert.deepEqual(plan.output.keys.map((k) => k.name), ['comm', 'big']);
    assert.deepEqual(plan.output.aggregates.map((a) => a.name), ['n', 'avg(ret)', 'hist(ret)']);
  });

  it('reads on as a condition on the host alone, kept apart from the event filter', () => {
    const plan = compileQuery('syscall:openat | on host =~ "web-*" and host != "web-9" | where ret < 0 | count()', catalog, NOW);
    assert.equal(printExpr(plan.hosts!), 'host =~ "web-*" and host != "web-9"');
    assert.equal(printExpr(plan.filter!), 'ret < 0');
    assert.equal(compileQuery('syscall:openat | count()', catalog, NOW).hosts, undefined);
    assert.match(rejected('syscall:openat | on comm == "web" | count()').message, /on picks hosts by name, so it reads host alone/);
    assert.match(rejected('syscall:openat | on host | count()').message, /on needs a condition on host/);
    assert.match(rejected('syscall:openat | on host == "a" | on host == "b" | count()').message, /on is given twice/);
  });

  it('offers only the fields every probe point has', () => {
    const error = rejected('syscall:openat, tracepoint:kmem:kmalloc | count() by args.filename');
    assert.match(error.message, /args.filename is not a field of tracepoint:kmem:kmalloc/);
    assert.doesNotThrow(() => compileQuery('syscall:openat, syscall:openat2 | count() by args.filename', catalog, NOW));
  });

  it('names the closest valid names for a misspelling', () => {
    const cases: [string, RegExp, RegExp][] = [
      ['syscall:opnat | count()', /no system call matches "opnat"/, /did you mean syscall:openat/],
      ['syscall:openat | count() by comn', /unknown field comn/, /did you mean comm/],
      ['syscall:openat | where args.filenme == "x" | count()', /unknown field args.filenme/, /args.filename/],
      ['syscall:openat | cuont() by comm', /unknown aggregate cuont\(\)/, /did you mean count/],
      ['tracepoint:kmem:kmaloc | count()', /no tracepoint matches/, /tracepoint:kmem:kmalloc/],
      ['syscal:openat | count()', /unknown provider "syscal"/, /did you mean syscall:openat/],
      ['kretprobe:vfs_read | count()', /"kretprobe" is bpftrace's name: here it is kernel:, whose probes see a call's entry and return as one event/, /did you mean kernel:vfs_read/],
      ['t:sched:sched_switch | count()', /"t" is bpftrace's name: here it is tracepoint:$/, /did you mean tracepoint:sched:sched_switch/],
      ['syscall:openat | where strr(comm) == "x"', /unknown function strr\(\)/, /did you mean str/],
    ];
    for (const [query, message, hint] of cases) {
      const error = rejected(query);
      assert.match(error.message, message, query);
      assert.match(error.hint ?? '', hint, query);
    }
  });

  it('checks types and points at the offending part', () => {
    const cases: [string, RegExp, string][] = [
      ['syscall:openat | where comm > 3', /comm is a string/, '3'],
      ['syscall:openat | where comm < "x"', /strings compare with == and !=/, 'comm < "x"'],
      ['syscall:openat | where pid', /a where clause needs a condition/, 'pid'],
      ['syscall:openat | sum(comm)', /sum\(\) needs a number/, 'comm'],
      ['syscall:openat | count(pid)', /count\(\) takes no argument/, 'count(pid)'],
      ['syscall:openat | where comm =~ 5', /=~ takes a string pattern/, '5'],
      ['syscall:openat | top 5', /top ranks aggregated rows/, 'top 5'],
      ['syscall:openat | count() | count()', /a query aggregates once/, 'count()'],
      ['syscall:openat | count() | top 3 by nope', /no such column/, 'nope'],
      ['syscall:openat | where count() > 1', /count\(\) is an aggregate/, 'count'],
      ['syscall:openat | let pid = 1', /already a field/, 'pid'],
    ];
    for (const [query, message, pointed] of cases) {
      const error = rejected(query);
      assert.match(error.message, message, query);
      const at = query.lastIndexOf(pointed);
      assert.equal(query.slice(error.span.start, error.span.end), pointed, `${query}: ${error.message} at ${error.span.start} (expected ${at})`);
    }
  });

  it('reads every, window, slide and last as a period and what each result covers', () => {
    const cases: [string, { periodNs: number | undefined; coverNs: number | undefined }][] = [
      ['syscall:read | count()', { periodNs: undefined, coverNs: undefined }],
      ['syscall:read | count() every 2s', { periodNs: 2e9, coverNs: 2e9 }],
      ['syscall:read | count() | window 10s', { periodNs: 10e9, coverNs: 10e9 }],
      ['syscall:read | count() | window 1m slide 10s', { periodNs: 10e9, coverNs: 60e9 }],
      ['syscall:read | count() | window 1m | every 10s', { periodNs: 10e9, coverNs: 60e9 }],
      ['syscall:read | count() | last 5m', { periodNs: undefined, coverNs: 300e9 }],
      ['syscall:read | count() | last 5m | every 30s', { periodNs: 30e9, coverNs: 300e9 }],
    ];
    for (const [query, windowing] of cases) assert.deepEqual(compileQuery(query, catalog, NOW).windowing, windowing, query);
    const errors: [string, RegExp][] = [
      ['syscall:read | count() | window 1m slide 7s', /1m is not a whole number of periods of 7s/],
      ['syscall:read | count() | window 5s slide 10s', /covers 5s, less than the period/],
      ['syscall:read | count() | window 1m | last 1m', /window or last, not both/],
      ['syscall:read | count() | window 1m slide 10s | every 5s', /drop every/],
      ['syscall:read | window 1s', /window sets when aggregated results are emitted/],
      ['syscall:read | count() every 1s | every 2s', /every is given twice/],
    ];
    for (const [query, message] of errors) assert.match(rejected(query).message, message, query);
  });

  it('takes the parameters aggregates need, and checks them', () => {
    const plan = compileQuery('syscall:read | quantiles(ret, 0.5, 0.999), lhist(ret, 0, 100, 10), topk(comm, 5), sample(3)', catalog, NOW);
    assert.ok(plan.output.kind === 'Aggregate');
    assert.deepEqual(plan.output.aggregates.map((a) => [a.name, a.params]), [
      ['quantiles(ret, 0.5, 0.999)', [0.5, 0.999]],
      ['lhist(ret, 0, 100, 10)', [0, 100, 10]],
      ['topk(comm, 5)', [5]],
      ['sample(3)', [3]],
    ]);
    assert.deepEqual(plan.output.aggregates[3]!.columns?.map((c) => c.name), ['time', 'probe', 'pid', 'comm', 'args.fd', 'args.buf', 'args.count']);
    const errors: [string, RegExp][] = [
      ['syscall:read | quantiles(ret)', /quantiles\(\) takes a value and 1 to 16 constants, e.g. quantiles\(duration, 0.5, 0.99\)/],
      ['syscall:read | quantiles(ret, 1.5)', /a quantile is from 0 to 1/],
      ['syscall:read | lhist(ret, 10, 0, 1)', /needs min < max/],
      ['syscall:read | lhist(ret, 0, 100000, 1)', /more than 1000 buckets/],
      ['syscall:read | topk(comm, 0)', /k is a whole number from 1 to 1000/],
      ['syscall:read | topk(comm, pid)', /the parameters of topk\(\) are constants/],
      ['syscall:read | sample(0)', /n is a whole number from 1 to 10000/],
      ['syscall:read | distinct(kstack)', /a number or a string, not a stack/],
      ['syscall:read | where ret > 1.5 | count()', /numbers in expressions are integers/],
    ];
    for (const [query, message] of errors) assert.match(rejected(query).message, message, query);
  });
});
