// A small function called in a tight loop, timed in-process: commands on stdin, ns per call on stdout.
let calls = 0;

function work(x) {
  return x + 1;
}

let target = work;
const { performance } = require('perf_hooks');

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

const commands = {
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

let buffer = '';
process.stdin.setEncoding('utf8');
// Whoever started this process is gone when its stdin closes: leave no stray target behind.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let at;
  while ((at = buffer.indexOf('\n')) >= 0) {
    const [name, n] = buffer.slice(0, at).trim().split(' ');
    buffer = buffer.slice(at + 1);
    console.log(`done ${name} ${commands[name](Number(n)).toFixed(2)}`);
  }
});
console.log('ready');
