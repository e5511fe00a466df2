import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { planStages, type StagedPlan } from '../plan/planner.js';
import { bindQuery } from '../query/binder.js';
import { compileQuery } from '../query/compile.js';
import { fixtureRegistry } from '../testing/catalog-fixture.js';
import { connect, type Fay } from './fay.js';
import { minutes, now, seconds } from './helpers.js';

const catalog = fixtureRegistry();
const NOW = 1_800_000_000_000_000_000;

/** A plan without what only says where it came from: the query text and source positions. */
function comparable(plan: StagedPlan): unknown {
  return JSON.parse(JSON.stringify(plan, (key, value: unknown) => (key === 'span' || key === 'query' ? undefined : value)));
}

/** Builds a FayLINQ query; gives its syntax tree and FayQL text. */
type Built = { syntaxTree(): Parameters<typeof bindQuery>[0]; toFayQL(): string };

describe('FayLINQ and FayQL plan the same', () => {
  let fay: Fay;
  before(async () => {
    fay = await connect();
  });

  const pid = 4242;
  // Each row: what it shows, the FayLINQ query, its FayQL spelling, and optionally the same query as a person might type it.
  const table: [string, () => Built, string, string?][] = [
    ['the seed’s kmalloc count, as the issue spells it', () => fay.tracepoint('kmem:kmalloc*').where(e => e.time > now() - minutes(5)).count(), 'tracepoint:kmem:kmalloc* | where time > now() - 5m | count()'],
    ['a latency histogram by process', () => fay.syscalls('read').groupBy((e) => ({ comm: e.comm })).hist((e) => e.duration), 'syscall:read | hist = hist(duration) by comm', 'syscall:read|hist=hist(duration)   by comm'],
    [
      'parameters and string helpers',
      () => fay.syscalls('openat', 'openat2').where((e, p) => e.pid === p.pid && e.args.filename.startsWith('/etc/'), { pid }).groupBy((e) => e.args.filename).count(),
      'syscall:openat, syscall:openat2 | where pid == 4242 and args.filename =~ "/etc/*" | count() by key = args.filename',
    ],
    [
      'several aggregates, top, every',
      () =>
        fay
          .syscalls('read')
          .groupBy((e) => ({ comm: e.comm, big: e.ret > 4096 }))
          .aggregate((a) => ({ n: a.count(), lat: a.quantiles((e) => e.duration, 0.5, 0.99), bytes: a.sum((e) => e.ret) }))
          .top(5, 'bytes')
          .every('1s'),
      'syscall:read | n = count(), lat = quantiles(duration, 0.5, 0.99), bytes = sum(ret) by comm, big = ret > 4096 | top 5 by bytes | every 1s',
    ],
    [
      'a filter on aggregated rows',
      () => fay.syscalls('openat').groupBy((e) => ({ comm: e.comm })).aggregate((a) => ({ count: a.count(), slow: a.max((e) => e.duration) })).where((r, p) => r.count > p.n || r.slow > 1000, { n: 100 }),
      'syscall:openat | count(), slow = max(duration) by comm | where count > 100 or slow > 1000',
    ],
    ['sampling, scaled', () => fay.syscalls('getppid').sample(0.01).aggregate((a) => ({ n: a.countScaled() })), 'syscall:getppid | sample 1% | n = count() scaled'],
    ['sample n in m and sliding windows', () => fay.syscalls('getppid').sample(1, 100).distinct((e) => e.pid).window('1m', '10s'), 'syscall:getppid | sample 1 in 100 | distinct = distinct(pid) | window 1m slide 10s'],
    ['last', () => fay.syscalls('write').groupBy((e) => ({ comm: e.comm })).sum((e) => e.args.count).last('5m').every('10s'), 'syscall:write | sum = sum(args.count) by comm | last 5m | every 10s'],
    ['select and take', () => fay.syscalls('execve').select((e) => ({ pid: e.pid, file: e.args.filename })).take(10), 'syscall:execve | select pid, file = args.filename | limit 10'],
    ['host selection', () => fay.syscalls('openat').on(['web-*', 'db1']).groupBy((e) => ({ host: e.host })).count(), 'syscall:openat | on host =~ "web-*" or host =~ "db1" | count() by host'],
    [
      'lists and negation',
      () => fay.syscalls('close').where((e) => !['bash', 'sshd'].includes(e.comm) && e.ret < 0 && e.duration > seconds(1)).count(),
      'syscall:close | where not comm in ("bash", "sshd") and ret < 0 and duration > 1s | count()',
      'syscall:close\n  | where not (comm in ("bash", "sshd")) && ret < 0 && duration > 1000ms  # noisy shells out\n  | count()',
    ],
    ['uprobes', () => fay.uprobe('libc', 'malloc').groupBy((e) => ({ comm: e.comm })).aggregate((a) => ({ bytes: a.hist((e) => e.args[0]!) })), 'uprobe:libc:malloc | bytes = hist(args[0]) by comm'],
    ['JavaScript functions', () => fay.js('comm=node', 'fs.readFile*').where((e) => e.threw).avg((e) => e.duration), 'js:comm=node:fs.readFile* | where threw | avg = avg(duration)'],
    [
      'nested fields of arguments',
      () => fay.js('comm=node', './app.js#handle').groupBy((e) => ({ url: e.args[0]!.url, status: e.args[1]!.statusCode!.number })).count(),
      'js:comm=node:./app.js#handle | count() by url = args[0].url, status = args[1].statusCode.number',
    ],
    ['a script path with a space', () => fay.js('comm=node', '/srv/my app/db.js#query').count(), 'js:comm=node:"/srv/my app/db.js#query" | count()'],
    ['diagnostics_channel', () => fay.dc('http.server.request.start').groupBy((e) => ({ pid: e.pid })).count(), 'dc:http.server.request.start | count() by pid'],
    [
      'categorising hosts by their system calls',
      () => fay.syscalls('*').groupBy((e) => ({ host: e.host, probe: e.probe })).count().every('10s').categorize('host', 'probe', { k: 3 }),
      'syscall:* | count() by host, probe | every 10s | categorize host by probe k=3',
      'syscall:* | count() by host, probe every 10s | categorize host by probe k=3',
    ],
  ];

  for (const [name, build, fayql, typed] of table) {
    it(name, () => {
      const q = build();
      assert.equal(q.toFayQL(), fayql, 'its FayQL spelling');
      // FayLINQ's own syntax tree, bound as built (not re-parsed from its text)…
      const fromLinq = planStages(bindQuery(q.syntaxTree(), q.toFayQL(), { catalog, nowNs: NOW }));
      // …plans the same as the FayQL text written by hand.
      const fromText = planStages(compileQuery(typed ?? fayql, catalog, NOW));
      assert.deepEqual(comparable(fromLinq), comparable(fromText));
    });
  }
});
