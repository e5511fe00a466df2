// Functions the tests probe. Some are hard to reach on purpose.
const { statSync } = require('fs'); // captured before any attach
const fs = require('fs');

function query(n) {
  return n * 2;
}

async function slowQuery(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
}

async function delegate(ms) {
  return slowQuery(ms);
}

async function rejectInside(ms) {
  await slowQuery(ms);
  await Promise.reject(new Error('rejected inside'));
}

// Async calls that end by an exception that passes no throw statement of their own.
async function throwsBeforeAwait(text) {
  JSON.parse(text); // a callee's exception in the synchronous part
  await null;
  return 'parsed';
}

async function throwsAfterAwait(text) {
  await 0;
  return JSON.parse(text).length;
}

async function recovers(ms) {
  try {
    await rejectInside(ms);
  } catch {
    return 'recovered';
  }
}

// How two async chains interleave: an await that took a turn more or less would change the order.
async function interleaving() {
  const order = [];
  const other = (async () => {
    for (let i = 0; i < 8; i++) {
      order.push(i);
      await null;
    }
  })();
  order.push('a');
  await 1;
  order.push('b');
  await Promise.resolve(2);
  order.push('c');
  await { then: (resolve) => resolve(3) };
  order.push('d');
  await new (class Later extends Promise {})((resolve) => resolve(4));
  order.push('e');
  await other;
  return order.join(' ');
}

// An expression body: V8 would not apply a live edit around it, so its export is wrapped.
const rejectsInArrow = async (ms) => (await slowQuery(ms), await Promise.reject(new Error('rejected in an arrow')));

// A for await awaits with no operand to hand over: Fay cannot see this function's rejections.
async function rejectsAfterForAwait(ms) {
  for await (const _ of [slowQuery(ms)]);
  await Promise.reject(new Error('rejected after for await'));
}

// A comma sequence as the returned value: minified code is full of them.
function commaReturn(x) {
  return x++, x * 10;
}

function failing(message) {
  throw new Error(message);
}

// A callee's exception (not a throw statement of its own) ends parseOrThrow's call.
function parseOrThrow(text) {
  return JSON.parse(text);
}

function parseSafely(text) {
  try {
    return parseOrThrow(text);
  } catch {
    return null;
  }
}

let odd = 0;
function classify(n) {
  if (n < 0) return;
  if (n % 2 === 0) return 'even';
  odd++;
}

// Many returns in a row: instrumented, its lines run together for more than 800 characters.
function manyReturns(x) {
  if (x === 0) return 'the answer for 0';
  if (x === 1) return 'the answer for 1';
  if (x === 2) return 'the answer for 2';
  if (x === 3) return 'the answer for 3';
  if (x === 4) return 'the answer for 4';
  if (x === 5) return 'the answer for 5';
  if (x === 6) return 'the answer for 6';
  if (x === 7) return 'the answer for 7';
  if (x === 8) return 'the answer for 8';
  if (x === 9) return 'the answer for 9';
  if (x === 10) return 'the answer for 10';
  if (x === 11) return 'the answer for 11';
  if (x === 12) return 'the answer for 12';
  if (x === 13) return 'the answer for 13';
  if (x === 14) return 'the answer for 14';
  if (x === 15) return 'the answer for 15';
  if (x === 16) return 'the answer for 16';
  if (x === 17) return 'the answer for 17';
  if (x === 18) return 'the answer for 18';
  if (x === 19) return 'the answer for 19';
  if (x === 20) return 'the answer for 20';
  if (x === 21) return 'the answer for 21';
  if (x === 22) return 'the answer for 22';
  if (x === 23) return 'the answer for 23';
  if (x === 24) return 'the answer for 24';
  if (x === 25) return 'the answer for 25';
  if (x === 26) return 'the answer for 26';
  if (x === 27) return 'the answer for 27';
  if (x === 28) return 'the answer for 28';
  if (x === 29) return 'the answer for 29';
  return 'no answer';
}

// On one line longer than V8's live edit diffs token by token (800 characters).
function longLine(n) { return n + 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'.length; }

// As a minifier writes it: the return's value runs right into the closing brace.
function minified(n){if(n%2)return n}

function describeArgs(a, b) {
  return typeof a + typeof b;
}

class Cart {
  #items = [];
  // A field holding a function, as TypeScript classes often have.
  accepts = (item) => {
    return Number.isFinite(item);
  };
  add(item) {
    if (!this.accepts(item)) throw new TypeError(`not a price: ${item}`);
    this.#items.push(item);
    return this.#items.length;
  }
  #total() {
    return this.#items.reduce((sum, item) => sum + item, 0);
  }
  total() {
    return this.#total();
  }
  static create() {
    return new Cart();
  }
}

// Methods whose object says who they work for (this.name), a derived class's constructor, an async method.
class Crew {
  constructor(name) {
    this.name = name;
  }
  work(n) {
    return n * 2;
  }
  async later(n) {
    await null;
    return n;
  }
}
class Lead extends Crew {
  constructor(name) {
    super(name);
    this.lead = true;
  }
}
async function crews(n) {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const lead = new Lead('beta');
    sum += new Crew('alpha').work(i) + lead.work(i) + (await lead.later(i));
  }
  return sum;
}

function statCaptured(path) {
  return statSync(path).isDirectory();
}

function statThroughModule(path) {
  return fs.statSync(path).isDirectory();
}

// A listener registered under an event name, as most callbacks are: named by its call, orders.on(placed).
const orders = new (require('events'))();
let placed = 0;
orders.on('placed', (amount) => {
  placed += amount;
});
const placeOrder = (amount) => (orders.emit('placed', amount), placed);

// A callback with nothing to name it by: named by the line it starts on, anonymous@<line>.
function total(items) {
  return items.reduce((sum, x) => {
    return sum + x;
  }, 0);
}

// A handler's call, with objects for arguments as a request handler gets them.
function describeRequest(req, res) {
  return { status: res.statusCode, size: req.url.length };
}

module.exports = { crews, total, placeOrder, describeRequest, query, classify, minified, longLine, manyReturns, oddCount: () => odd, slowQuery, delegate, rejectInside, throwsBeforeAwait, throwsAfterAwait, recovers, rejectsInArrow, rejectsAfterForAwait, interleaving, commaReturn, failing, parseSafely, describeArgs, Cart, statCaptured, statThroughModule };
module.exports.frozen = Object.freeze({
  frozenWork(x) {
    return x + 1;
  },
});
