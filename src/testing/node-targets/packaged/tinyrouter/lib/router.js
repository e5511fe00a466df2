class Router {
  constructor() {
    this.stack = [];
  }

  use(fn) {
    this.stack.push(fn);
  }

  // Busy for ms: a hot function of a package, for profiles.
  compile(ms) {
    const until = Date.now() + ms;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    return x > 0 ? ms : 0;
  }

  handle(req) {
    let passed = 0;
    for (const fn of this.stack) fn(req, null, () => passed++);
    return passed;
  }
}

module.exports = { Router };
