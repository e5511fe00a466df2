// A worker thread of app.cjs: on a message n, it calls lib.query and its own crunch n times, and
// answers with the sum ({ n, exit: true }: then it exits). crunch is in this file only, which the
// main thread never loads.
const { parentPort } = require('node:worker_threads');
const lib = require('./lib.cjs');

function crunch(x) {
  return x * 3;
}

parentPort.on('message', (message) => {
  // { lazy: n }: lazy.cjs, required on the first such message (a script the worker loads after an
  // attach), called n times; the last result.
  if (typeof message === 'object' && 'lazy' in message) {
    const { work } = require('./lazy.cjs');
    let r = 0;
    for (let i = 0; i < message.lazy; i++) r = work(i);
    parentPort.postMessage(r);
    return;
  }
  const { n, exit } = typeof message === 'number' ? { n: message, exit: false } : message;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += crunch(lib.query(i));
  parentPort.postMessage(sum);
  // Asked to, it then ends by itself, as a thread that is done does: its exit handlers run.
  if (exit) process.exit(0);
});
