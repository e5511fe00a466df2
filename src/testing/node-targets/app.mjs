// An ES module app: commands on stdin ("<command> <n>") answered with "done <command> <result>".
import { basename } from 'node:path';
import serveCommands from './serve-commands.cjs';

// The built-in as this module's import bound it at load.
const loadedBasename = basename;

export function compute(x) {
  return x * 3;
}

export const arrow = (a, b) => {
  return a + b;
};

// An expression body, which V8 would not live-edit: reported (an ES module's exports take no wrapper).
export const double = (x) => x * 2;

const captured = compute;

const commands = {
  compute: (n) => { let r; for (let i = 0; i < n; i++) r = captured(i); return r; },
  arrow: (n) => { let r = 0; for (let i = 0; i < n; i++) r = arrow(r, 1); return r; },
  // Through the import of a built-in: a live binding, which Fay's wrapper reaches.
  basename: (n) => { let r; for (let i = 0; i < n; i++) r = basename(`/srv/${i}.txt`); return r; },
  importsAsLoaded: () => basename === loadedBasename,
};

serveCommands(commands);
console.log('ready');
