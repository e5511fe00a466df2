/**
 * Generated FayQL inputs for the fuzz suite (test/fuzz.test.ts): grammar-aware mutations of the
 * documented queries, random bytes, deep nesting, names of Object.prototype wherever a name is
 * read, and huge literals and globs. Deterministic for a seed, so that a failure can be replayed.
 */

import { prng } from '../prng.js';

/** Queries as the documentation writes them: the seeds of the mutations. */
export const SEED_QUERIES: readonly string[] = [
  'syscall:openat | where ret < 0 | count() by comm, args.filename | top 5',
  'syscall:read | hist(ret) by comm every 1s',
  'uprobe:/usr/bin/node:uv_fs_open | count(), quantiles(duration, 0.5, 0.99) by pid | window 1m slide 10s',
  'syscall:write | sample 1% | n = count() scaled, topk(comm, 5)',
  'syscall:openat | select comm, args.filename, ret | record last 1000 dump when ret == -13',
  'js:comm=api-*:fs.readFile* | count(), hist(duration) by pid',
  'js:pid=4242:./lib/db.js#query* | quantiles(duration, 0.5, 0.99) by probe, threw',
  'dc:http.server.request.start | count() by msg.request.method, msg.request.url | top 10',
  'profile:js:pid=4242:99hz | count() by jsstack | top 20',
  'syscall:* | where comm == "node" | count() by comm, probe | top 10',
  'tracepoint:kmem:kmalloc | where time > now() - 5m | count()',
  'syscall:openat, syscall:openat2 | where comm == "node" and ret < 0 | count() by comm, args.filename | top 10',
  'syscall:read | where pid in (1, 2, 3) and not comm =~ "fay*" | let kb = ret / 1024 | sum(kb), avg(ret), min(ret), max(ret) by comm | last 1m every 10s',
  'profile:99hz | where comm == "node" | count() by ustack | top 20',
  'syscall:getppid | count() | on host =~ "web-*"',
  'interval:100ms | count()',
  'syscall:clock_nanosleep | lhist(duration, 0, 100000000, 1000000), stddev(duration), distinct(pid), first(comm), last(comm), sample(3)',
  'syscall:openat | where str(args[1]) == "/etc/passwd" | count() by tid | limit 3',
  'kernel:vfs_read | count()',
  'syscall:read | count() by comm | where count > 10 | let rate = count / 10 | top 3 by rate asc',
];

/** Names that live on Object.prototype (and the names a JavaScript object treats specially). */
export const PROTOTYPE_NAMES: readonly string[] = [
  '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf',
  'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__lookupGetter__', 'then', 'length', 'name',
];

/** Every place a query reads a name: where a prototype's name must be refused (or read) like any other. */
export const PROTOTYPE_PLACES: readonly ((name: string) => string)[] = [
  (p) => `syscall:read | where ${p} == 1`,
  (p) => `syscall:read | where ${p}()`,
  (p) => `syscall:read | ${p}(ret)`,
  (p) => `syscall:read | sum(1${p})`,
  (p) => `syscall:read | count() every 1${p}`,
  (p) => `syscall:read | count() | window 1${p}`,
  (p) => `syscall:read | ${p} = count()`,
  (p) => `syscall:read | count() by ${p} = comm`,
  (p) => `syscall:read | count() by comm | top 1 by ${p}`,
  (p) => `syscall:read | let ${p} = pid | count() by ${p}`,
  (p) => `syscall:read | select ${p} = comm`,
  (p) => `${p}:read | count()`,
  (p) => `syscall:${p} | count()`,
  (p) => `tracepoint:${p}:${p} | count()`,
  (p) => `js:pid=1:${p}.${p} | count()`,
  (p) => `js:${p}=1:fs.readFile | count()`,
  (p) => `dc:${p} | count() by msg.${p}`,
  (p) => `profile:${p} | count()`,
  (p) => `interval:1${p} | count()`,
  (p) => `syscall:read | where args.${p} == 1`,
  (p) => `syscall:read | count() by args[0].${p}`,
  (p) => `syscall:read | where comm == "${p}" | count() by comm`,
];

const KEYWORDS = ['where', 'let', 'select', 'by', 'every', 'window', 'slide', 'last', 'top', 'limit', 'scaled', 'record', 'on', 'and', 'or', 'not', 'in', 'true', 'false', 'asc', 'desc', 'dump', 'when', 'sample'];
const OPERATORS = ['==', '!=', '<=', '>=', '=~', '!~', '&&', '||', '|', ',', '(', ')', '[', ']', '.', '=', '<', '>', '+', '-', '*', '/', '%', '!', ':'];
const FUNCTIONS = ['count', 'sum', 'min', 'max', 'avg', 'stddev', 'hist', 'lhist', 'quantiles', 'distinct', 'topk', 'first', 'last', 'sample', 'now', 'str'];
const FIELDS = ['comm', 'pid', 'tid', 'ret', 'duration', 'probe', 'host', 'time', 'args.filename', 'args[0]', 'args[0].url', 'msg.request.url', 'ustack', 'kstack', 'jsstack', 'cpu', 'uid'];
const PROVIDERS = ['syscall', 'tracepoint', 'uprobe', 'kernel', 'profile', 'interval', 'js', 'dc', 'profile:js', 'kprobe', 'u', 't'];
const UNITS = ['ns', 'us', 'µs', 'ms', 's', 'm', 'h', 'd', ...PROTOTYPE_NAMES];

/** One generator of inputs, by its name in a failure's report. */
export interface FuzzInput {
  readonly kind: string;
  readonly text: string;
}

/** The first n inputs of a seed's stream, a mix of every kind, one at a time (some are megabytes long). */
export function* fuzzInputs(seed: number, n: number): Generator<FuzzInput> {
  const random = prng(seed);
  const int = (k: number) => Math.floor(random() * k);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => random() < p;

  const hugeNumber = () =>
    pick([
      '9'.repeat(20 + int(400)),
      `0x${'f'.repeat(17 + int(40))}`,
      '1e308',
      '9007199254740993',
      '-9223372036854775809',
      `${int(10)}.${'9'.repeat(int(500))}`,
      '1_000_000_000_000_000_000',
    ]);
  const glob = () => {
    const parts = ['*', '?', '[a-z]', '[!x]', 'a', '**', '*a*', '?*?'];
    let g = '';
    const length = chance(0.2) ? 10_000 + int(60_000) : int(40);
    while (g.length < length) g += pick(parts);
    return g;
  };
  const name = () => (chance(0.5) ? pick(PROTOTYPE_NAMES) : pick([...FIELDS, ...FUNCTIONS, ...KEYWORDS, 'x', 'kb', 'a1']));
  const string = () => {
    const bodies = ['node', '', '\\0', '\\x1b[2J', '\\x00', 'a\\\\b', '\\"', "'", 'é', '\u202e', 'x'.repeat(int(3) === 0 ? 70_000 : 64)];
    return `"${pick(bodies)}"`;
  };
  const token = (): string => {
    switch (int(9)) {
      case 0:
        return pick(KEYWORDS);
      case 1:
        return pick(OPERATORS);
      case 2:
        return `${pick(FUNCTIONS)}(${chance(0.5) ? name() : ''})`;
      case 3:
        return name();
      case 4:
        return chance(0.3) ? hugeNumber() : String(int(1000) - 10);
      case 5:
        return `${chance(0.5) ? int(100) : hugeNumber()}${pick(UNITS)}`;
      case 6:
        return string();
      case 7:
        return `${pick(PROVIDERS)}:${chance(0.3) ? glob() : name()}`;
      default:
        return pick(['|', '|', ',', '(', ')']);
    }
  };
  const tokens = (q: string) => q.match(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\S+/g) ?? [];

  const mutate = (q: string): string => {
    const t = tokens(q);
    const rounds = 1 + int(4);
    for (let r = 0; r < rounds; r++) {
      const at = int(t.length + 1);
      switch (int(7)) {
        case 0:
          t.splice(at, 1);
          break;
        case 1:
          t.splice(at, 0, token());
          break;
        case 2:
          t[Math.min(at, t.length - 1)] = token();
          break;
        case 3:
          if (at > 0 && at < t.length) [t[at - 1], t[at]] = [t[at]!, t[at - 1]!];
          break;
        case 4:
          t.splice(at, 0, ...t.slice(0, 1 + int(4)));
          break;
        case 5:
          t.splice(at, 0, '|', pick(['where', 'let x =', 'select', 'top', 'limit', 'every', 'window', 'last', 'on', 'record last']), token());
          break;
        default:
          t.splice(at, 0, ...tokens(pick(SEED_QUERIES)).slice(int(5)));
      }
    }
    return t.join(chance(0.9) ? ' ' : '');
  };

  const deep = (): string => {
    const depth = pick([50, 99, 100, 101, 150, 850, 3000, 20_000]);
    const base = 'syscall:read | where ';
    switch (int(9)) {
      case 0:
        return `${base}${'('.repeat(depth)}pid == 1${')'.repeat(depth)}`;
      case 1:
        return `${base}${'not '.repeat(depth)}true`;
      case 2:
        return `${base}${Array.from({ length: depth }, (_, i) => `pid == ${i}`).join(' and ')}`;
      case 3:
        return `${base}pid in (${Array.from({ length: depth }, (_, i) => i).join(', ')})`;
      case 4:
        return `syscall:read${' | where true'.repeat(depth)} | count()`;
      case 5:
        return `${base}${'-'.repeat(depth)}1 == pid`;
      case 6: {
        // let chains that double: exponential once written out.
        let q = 'syscall:read | let a0 = pid';
        for (let i = 1; i <= Math.min(depth, 64); i++) q += ` | let a${i} = a${i - 1} ${pick(['+', '*', '-'])} a${i - 1}`;
        return `${q} | where a${Math.min(depth, 64)} > 0 | count()`;
      }
      case 7:
        return `${Array.from({ length: Math.min(depth, 200) }, (_, i) => `syscall:r${'e'.repeat(i % 3)}ad`).join(', ')} | count()`;
      default:
        return `syscall:read | ${Array.from({ length: Math.min(depth, 300) }, (_, i) => `c${i} = count()`).join(', ')}`;
    }
  };

  const prototypes = (): string => pick(PROTOTYPE_PLACES)(pick(PROTOTYPE_NAMES));

  const bytes = (): string => {
    const length = chance(0.05) ? 100_000 + int(1_000_000) : int(200);
    let s = '';
    for (let i = 0; i < length; i++) {
      const r = random();
      s += r < 0.6 ? String.fromCharCode(32 + int(95)) : r < 0.8 ? String.fromCharCode(int(32)) : r < 0.95 ? String.fromCharCode(128 + int(2000)) : String.fromCodePoint(0x10000 + int(0x1000));
    }
    return chance(0.5) ? `${pick(SEED_QUERIES).slice(0, int(40))}${s}` : s;
  };

  const literal = (): string => {
    const probe = pick(['syscall:read', 'js:pid=1:fs.readFile', 'uprobe:/usr/bin/node:uv_fs_open']);
    return pick([
      `${probe} | where pid == ${hugeNumber()}`,
      `${probe} | where comm =~ "${glob()}"`,
      `syscall:${glob()} | count()`,
      `tracepoint:${glob()}:${glob()} | count()`,
      `uprobe:/usr/bin/node:${glob()} | count()`,
      `uprobe:"/usr/bin/no\\0de":uv_fs_open | count()`,
      `uprobe:/usr/bin/no\u0000de:uv_fs_open | count()`,
      `syscall:${'r'.repeat(chance(0.5) ? 1_000_000 : 2000)} | count()`,
      `${probe} | count() every ${hugeNumber()}ns`,
      `${probe} | count() every 1ns`,
      `${probe} | count() | window 1000d slide 1ms`,
      `${probe} | count() | last 1h every 10ms`,
      `${probe} | top ${hugeNumber()}`,
      `${probe} | count() | top ${hugeNumber()}`,
      `${probe} | lhist(ret, 0, ${hugeNumber()}, 1)`,
      `${probe} | quantiles(ret, 0.${'9'.repeat(400)})`,
      `${probe} | topk(comm, ${hugeNumber()})`,
      `${probe} | record last ${hugeNumber()}`,
      `${probe} | sample ${hugeNumber()} in ${hugeNumber()}`,
      `${probe} | where comm == ${string()} | count()`,
      `syscall:read | where ret ${pick(['/', '%', '*'])} 0 == 0 | count()`,
      `tracepoint:syscalls:sys_enter_*, tracepoint:syscalls:sys_exit_* | count()`,
      `tracepoint:ftrace:* | count()`,
    ]);
  };

  for (let i = 0; i < n; i++) {
    const r = random();
    if (r < 0.45) yield { kind: 'mutation', text: mutate(pick(SEED_QUERIES)) };
    else if (r < 0.55) yield { kind: 'deep', text: deep() };
    else if (r < 0.7) yield { kind: 'prototype', text: prototypes() };
    else if (r < 0.8) yield { kind: 'bytes', text: bytes() };
    else yield { kind: 'literal', text: literal() };
  }
}

/** Input `index` of a seed's stream (to show a failing one again). */
export function fuzzInput(seed: number, index: number): FuzzInput {
  let i = 0;
  for (const input of fuzzInputs(seed, index + 1)) if (i++ === index) return input;
  throw new Error(`no input ${index}`);
}
