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

// On one line longer than V8's live edit diffs token by token (800 characters).
function longLine(n) { return n + 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'.length; }

// As a minifier writes it: the return's value runs right into the closing brace.
// prettier-ignore
function minified(n){if(n%2)return n}

function describeArgs(a, b) {
  return typeof a + typeof b;
}

class Cart {
  #items = [];
  add(item) {
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

function statCaptured(path) {
  return statSync(path).isDirectory();
}

function statThroughModule(path) {
  return fs.statSync(path).isDirectory();
}

module.exports = { query, classify, minified, longLine, oddCount: () => odd, slowQuery, delegate, rejectInside, failing, parseSafely, describeArgs, Cart, statCaptured, statThroughModule };
module.exports.frozen = Object.freeze({
  frozenWork(x) {
    return x + 1;
  },
});
