#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { runByAgent, thinRequest } from './thin-query.js';

/**
 * The `fay` command's entry, built on its own as CommonJS (dist/bin/fay.cjs: Node.js starts a
 * CommonJS file ~10–30 ms sooner than an ES module here). A `fay query --json …` that this
 * machine's agent can run is handed to it when one runs (thin-query.ts): the command then starts
 * in little more than the time Node.js takes to. Every other command, or when no agent takes the
 * query, loads the whole command line (main.ts).
 */
const request = thinRequest(process.argv.slice(2));
const version = () => (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
void (request === undefined ? Promise.resolve(undefined) : runByAgent(request, version())).then((code) => {
  if (code === undefined) return import('./main.js');
  process.exitCode = code;
  return undefined;
});
