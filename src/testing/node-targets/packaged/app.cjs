// An application whose code is all in a package (node_modules/tinyrouter), as a framework app's is:
// "route <n>" sends n requests through the router and its logger middleware. It runs from the layout
// node-target.ts makes in a temporary directory (this file, serve-commands.cjs, and tinyrouter/ as
// node_modules/tinyrouter): the repository keeps no node_modules of its own.
const { Router } = require('tinyrouter');
const { logger } = require('tinyrouter/lib/logger');
const serveCommands = require('./serve-commands.cjs');

const router = new Router();
router.use(logger('req'));
console.log('ready');
serveCommands({
  compile: (ms) => router.compile(ms),
  route: (n) => {
    let handled = 0;
    for (let i = 0; i < n; i++) handled += router.handle({ url: `/users/${i}` });
    return handled;
  },
});
