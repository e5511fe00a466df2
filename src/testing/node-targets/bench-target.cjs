// A small function called in a tight loop, timed in-process: commands on stdin, ns per call on stdout.
let calls = 0;

function work(x) {
  return x + 1;
}

let target = work;
const { performance } = require('perf_hooks');
const serveCommands = require('./serve-commands.cjs');

function loop(n) {
  let acc = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) acc = target(acc);
  const ns = Number(process.hrtime.bigint() - start) / n;
  return acc === n ? ns : -1;
}

function clocks(n) {
  // The baseline of a timing probe: two clock reads around each call.
  let acc = 0;
  let sum = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    acc = work(acc);
    sum += performance.now() - t0;
  }
  const ns = Number(process.hrtime.bigint() - start) / n;
  return acc === n && sum >= 0 ? ns : -1;
}

// A handler reading a request two levels down, as a query's args[0].req.url reads it: one object, passed each time.
const request = { req: { url: '/users/42', headers: { host: 'example' } } };
function handle(r) {
  return r.req.url.length;
}

function nestedLoop(n) {
  let acc = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) acc += handle(request);
  const ns = Number(process.hrtime.bigint() - start) / n;
  return acc === n * 9 ? ns : -1;
}

const commands = {
  nested: (n) => { nestedLoop(n / 10); return nestedLoop(n); },
  plain: (n) => { target = work; loop(n / 10); return loop(n); },
  wrapped: (n) => {
    // The hand-written counting wrapper Fay's counting probe is compared with.
    target = function (x) { calls++; return work(x); };
    loop(n / 10);
    calls = 0;
    const ns = loop(n);
    target = work;
    return calls === n ? ns : -1;
  },
  clocks: (n) => { clocks(n / 10); return clocks(n); },
};

// Exported too: a query with --max-pause 0 probes it through a wrapper on its export (the loop's calls are not counted then).
module.exports = { work, handle };

serveCommands(commands, (ns) => ns.toFixed(2));
console.log('ready');
