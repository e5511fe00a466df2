import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProbeUnavailableError, QueryError } from '../errors.js';
import { printExpr } from '../plan/print-expr.js';
import { BpfProvider } from '../probes/bpf/provider.js';
import { ProbeRegistry } from '../probes/registry.js';
import { compileQuery } from './compile.js';

const catalog = new ProbeRegistry([new BpfProvider()]);
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

  it('says plainly that kernel functions cannot be probed here, and why', () => {
    assert.throws(
      () => compileQuery('kernel:vfs_read | count()', catalog, NOW),
      (error: unknown) => {
        assert.ok(error instanceof ProbeUnavailableError);
        assert.equal(error.exitCode, 3);
        assert.match(error.message, /kernel:vfs_read cannot be probed on this machine/);
        assert.match(error.message, /CONFIG_KPROBES is not set|no kprobe/);
        assert.match(error.message, /fentry/);
        assert.match(error.hint ?? '', /syscall:read/);
        return true;
      },
    );
  });
});
