// A heavy service, to measure how long Fay stops it: a generated script of BIG_MB megabytes with
// BIG_FUNCTIONS functions (each exported; the first WARM of them called, so compiled), a small
// script with one function called every 10 ms (small.handle), and a heap of HEAP_MB megabytes of
// small objects. Every 2 ms it writes a byte on fd 3: a reader there sees each stop of its
// JavaScript as a gap. Commands on stdin ("<command> <n>"), answered "done <command> <result>":
//   big n      calls big.f<BIG_FUNCTIONS - 1> n times through the exports
//   small n    calls small.handle n times
//   grow n     keeps n more megabytes of small objects
//   source 0   whether small.handle's code is its own (1) or an edit's (0)
const fs = require('fs');
const os = require('os');
const path = require('path');
const serveCommands = require('./serve-commands.cjs');

const bigMb = Number(process.env.BIG_MB || 3);
const functions = Number(process.env.BIG_FUNCTIONS || 6000);
const heapMb = Number(process.env.HEAP_MB || 300);
const warm = Number(process.env.WARM || 2000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fay-heavy-'));
const pad = 'x'.repeat(Math.max(0, Math.floor((bigMb * 1048576) / functions) - 80));
let big = '';
for (let i = 0; i < functions; i++) big += `exports.f${i} = function f${i}(x) { const s = "${pad}"; return x + ${i} + s.length; };\n`;
fs.writeFileSync(path.join(dir, 'big.cjs'), big);
const small = 'function handle(x) {\n  return x * 2;\n}\nmodule.exports = { handle };\n';
fs.writeFileSync(path.join(dir, 'small.cjs'), small);
const bigModule = require(path.join(dir, 'big.cjs'));
const smallModule = require(path.join(dir, 'small.cjs'));
const original = smallModule.handle.toString();
for (let r = 0; r < 3; r++) for (let i = 0; i < warm; i++) bigModule[`f${i}`](r);

const kept = [];
function grow(mb) {
  const objects = (mb * 1048576) / 40;
  for (let i = 0; i < objects; i++) kept.push({ i, next: null });
  return kept.length;
}
grow(heapMb);
// A full collection before ready: the heap the tests attach to is settled, not due for the major
// collection that building it leads to (150–320 ms in a 400 MB heap, whoever allocates next: seen
// in the middle of an attach, once in several runs).
require('v8').setFlagsFromString('--expose-gc');
require('vm').runInNewContext('gc')();

let beat = 0;
setInterval(() => {
  try {
    fs.writeSync(3, '.');
  } catch {
    // The reader is gone: nothing to tell.
  }
  beat++;
}, 2);
setInterval(() => smallModule.handle(beat), 10);

const last = `f${functions - 1}`;
serveCommands({
  big: (n) => { let r = 0; for (let i = 0; i < n; i++) r = bigModule[last](i); return r; },
  small: (n) => { let r = 0; for (let i = 0; i < n; i++) r = smallModule.handle(i); return r; },
  grow: (n) => grow(n),
  source: () => (smallModule.handle.toString() === original ? 1 : 0),
});
console.log(`ready ${dir} ${Math.round(process.memoryUsage().heapUsed / 1048576)}`);
// TRACE_GC=1: each garbage collection of 20 ms or more on stderr (how much of a stop the heap's own work is).
if (process.env.TRACE_GC) {
  const { PerformanceObserver } = require('perf_hooks');
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.duration >= 20) process.stderr.write(`gc ${Math.round(e.duration)} ms (kind ${e.detail && e.detail.kind}) at ${Math.round(e.startTime)}\n`);
  }).observe({ entryTypes: ['gc'] });
}
