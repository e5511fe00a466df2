// A CommonJS service: an HTTP server, and commands on stdin ("<command> <n> [arg]") that call
// functions of lib.cjs n times and answer "done <command> <result>" on stdout.
const http = require('http');
const fs = require('fs');
const lib = require('./lib.cjs');
const serveCommands = require('./serve-commands.cjs');

// The code of the application functions the tests live-edit, as their closures run it now.
function sourceOfProbed() {
  return [lib.query, lib.classify, lib.manyReturns, lib.minified, lib.throwsAfterAwait, lib.commaReturn].map((f) => f.toString()).join('\n');
}

// What the probes may touch, as it was before any attach: the state command compares against it.
const originals = { statSync: fs.statSync, parse: JSON.parse, querySource: sourceOfProbed() };

if (process.env.TITLE) process.title = process.env.TITLE;
if (process.env.TRAP_SIGUSR1) process.on('SIGUSR1', () => console.error('the target handled SIGUSR1 itself'));

function burn(ms) {
  const until = Date.now() + ms;
  let x = 0;
  while (Date.now() < until) x += Math.sqrt(x + 1);
  return x > 0 ? ms : 0;
}

// Requests to /hold, unanswered until the release command.
const held = [];

// /delay/<ms> answers after that long, /missing with 404, /hold when released, anything else at once.
function handle(req, res) {
  if (req.url === '/hold') return void held.push(res);
  const delay = /^\/delay\/(\d+)/.exec(req.url);
  if (delay) return void setTimeout(() => res.end('ok'), Number(delay[1]));
  if (req.url.startsWith('/missing')) res.statusCode = 404;
  res.end(res.statusCode === 404 ? 'no' : 'ok');
}

// n requests to this process's own server, one after another, at path: the answers' statuses, joined.
function requestSelf(n, path) {
  const statuses = [];
  const one = () =>
    new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.address().port, path }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
  return (async () => {
    for (let i = 0; i < n; i++) statuses.push(await one());
    return statuses.join(',');
  })();
}

const server = http.createServer(handle);
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

const commands = {
  query: (n) => { let r; for (let i = 0; i < n; i++) r = lib.query(i); return r; },
  many: (n) => { let r = 0; for (let i = 0; i < n; i++) r += lib.manyReturns(i % 32).length; return r; },
  long: (n) => { let r = 0; for (let i = 0; i < n; i++) r = lib.longLine(i); return r; },
  minified: (n) => { let odd = 0; for (let i = 0; i < n; i++) if (lib.minified(i) === i) odd++; return odd; },
  classify: (n) => { let even = 0; for (let i = 0; i < n; i++) if (lib.classify(i - 1) === 'even') even++; return even; },
  slow: async (n, ms) => { for (let i = 0; i < n; i++) await lib.slowQuery(Number(ms)); return n; },
  delegate: async (n, ms) => { let r; for (let i = 0; i < n; i++) r = await lib.delegate(Number(ms)); return r; },
  reject: async (n, ms) => { let caught = 0; for (let i = 0; i < n; i++) await lib.rejectInside(Number(ms)).catch(() => caught++); return caught; },
  rejectArrow: async (n, ms) => { let caught = 0; for (let i = 0; i < n; i++) await lib.rejectsInArrow(Number(ms)).catch(() => caught++); return caught; },
  rejectForAwait: async (n, ms) => { let caught = 0; for (let i = 0; i < n; i++) await lib.rejectsAfterForAwait(Number(ms)).catch(() => caught++); return caught; },
  // Each of n rounds: the three async functions once each, odd rounds with input that makes the first two throw.
  settle: async (n) => {
    const outcomes = [];
    for (let i = 0; i < n; i++) {
      const bad = i % 2 === 1;
      for (const call of [() => lib.throwsBeforeAwait(bad ? '{' : '1'), () => lib.throwsAfterAwait(bad ? '{' : '[1]'), () => lib.recovers(1)]) {
        outcomes.push(await call().then((v) => `ok:${v}`, (e) => `err:${e.constructor.name}`));
      }
    }
    return outcomes.join(',');
  },
  interleave: async () => lib.interleaving(),
  comma: (n) => { let r = 0; for (let i = 0; i < n; i++) r += lib.commaReturn(i); return r; },
  fail: (n) => { let thrown = 0; for (let i = 0; i < n; i++) { try { lib.failing('boom ' + i); } catch (e) { if (e.message === 'boom ' + i) thrown++; } } return thrown; },
  parse: (n) => { let ok = 0; for (let i = 0; i < n; i++) if (lib.parseSafely(i % 2 ? '{' : String(i)) !== null) ok++; return ok; },
  // n calls with a request and a response; a getter and a proxy in the request count anything that
  // reads them (nothing may: the answer is how many times they were touched).
  nested: (n) => {
    let touched = 0;
    for (let i = 0; i < n; i++) {
      const inner = new Proxy({ a: 1 }, { get: () => (touched++, 1), getOwnPropertyDescriptor: () => (touched++, undefined), has: () => (touched++, true) });
      const req = { url: `/users/${i % 3}`, method: i % 2 ? 'POST' : 'GET', headers: { host: 'example.test' }, inner, get secret() { touched++; return 's'; } };
      lib.describeRequest(req, { statusCode: i % 3 === 2 ? 404 : 200 });
    }
    return touched;
  },
  request: (n, path) => requestSelf(n, path ?? '/'),
  // n fetch() calls (undici) to this process's own server, one after another: their statuses, joined.
  fetch: async (n, path) => {
    const statuses = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(`http://127.0.0.1:${server.address().port}${path ?? '/'}`);
      await res.text();
      statuses.push(res.status);
    }
    return statuses.join(',');
  },
  // n requests to a port nothing listens on (one just freed): how many failed.
  refused: async (n) => {
    const spare = http.createServer();
    await new Promise((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const { port } = spare.address();
    await new Promise((resolve) => spare.close(resolve));
    let failed = 0;
    for (let i = 0; i < n; i++) {
      await new Promise((resolve) => http.get({ host: '127.0.0.1', port, path: '/nowhere' }, resolve).on('error', () => resolve(failed++)));
    }
    return failed;
  },
  held: () => held.length,
  release: () => held.splice(0).map((res) => res.end('ok')).length,
  args: (n) => { let r; for (let i = 0; i < n; i++) r = lib.describeArgs('x'.repeat(i), [1, 2, 3]); return r; },
  crews: (n) => lib.crews(n),
  cart: (n) => { const c = lib.Cart.create(); for (let i = 1; i <= n; i++) c.add(i); return c.total(); },
  frozen: (n) => { let r = 0; for (let i = 0; i < n; i++) r = lib.frozen.frozenWork(r); return r; },
  captured: (n) => { let r; for (let i = 0; i < n; i++) r = lib.statCaptured('/'); return r; },
  stat: (n) => { let r; for (let i = 0; i < n; i++) r = lib.statThroughModule('/'); return r; },
  order: (n) => { let r; for (let i = 1; i <= n; i++) r = lib.placeOrder(i); return r; },
  total: (n) => lib.total(Array.from({ length: n }, (_, i) => i + 1)),
  json: (n) => { let r; for (let i = 0; i < n; i++) r = JSON.parse('{"a":' + i + '}'); return r.a; },
  spin: (n) => burn(n),
  state: () => JSON.stringify({
    statSyncOriginal: fs.statSync === originals.statSync,
    parseOriginal: JSON.parse === originals.parse,
    querySourceOriginal: sourceOfProbed() === originals.querySource,
    serverEmitInherited: !Object.hasOwn(http.Server.prototype, 'emit'),
  }),
  proxy: (n) => { const { proxy, revoke } = Proxy.revocable([], {}); revoke(); let r; for (let i = 0; i < n; i++) r = lib.describeArgs(proxy, i); return r; },
  // lazy.cjs is required on the first run of this command, not before: a script that loads after an attach.
  lazy: (n) => { const { work } = require('./lazy.cjs'); let r = 0; for (let i = 0; i < n; i++) r = work(i); return r; },
  // n worker threads (worker.cjs), each an isolate of its own (none: the ones running end).
  workers: async (n) => {
    const { Worker } = require('worker_threads');
    await Promise.all(workers.splice(0).map((w) => w.terminate()));
    for (let i = 0; i < n; i++) workers.push(new Worker(require.resolve('./worker.cjs')));
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('online', resolve))));
    return workers.length;
  },
  // Each worker calls lib.query and its own crunch n times: the sum of their answers.
  inWorkers: async (n) => {
    const sums = await Promise.all(workers.map((w) => new Promise((resolve) => { w.once('message', resolve); w.postMessage(n); })));
    return sums.reduce((a, b) => a + b, 0);
  },
  // Each worker requires lazy.cjs (the first time: after an attach) and calls its work n times: their last results, summed.
  lazyInWorkers: async (n) => {
    const last = await Promise.all(workers.map((w) => new Promise((resolve) => { w.once('message', resolve); w.postMessage({ lazy: n }); })));
    return last.reduce((a, b) => a + b, 0);
  },
  // The first worker calls lib.query and crunch n times, then ends by itself; the others are terminated: its sum.
  endWorkers: async (n) => {
    const [first, ...others] = workers.splice(0);
    const sum = new Promise((resolve) => first.once('message', resolve));
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.postMessage({ n, exit: true });
    await Promise.all([...others.map((w) => w.terminate()), exited]);
    return sum;
  },
};
const workers = [];

serveCommands(commands);
