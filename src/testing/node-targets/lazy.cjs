// A module app.cjs requires only when its lazy command first runs: loaded after an attach.
function work(x) {
  return x + 1;
}

module.exports = { work };
