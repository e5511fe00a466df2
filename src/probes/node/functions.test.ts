import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'acorn';
import { findFunctions, instrumentation, unedited, type Insertion } from './functions.js';

/**
 * Insertions put together as Insertion documents it (and runtime/live-edit.ts's setSource does): at one
 * offset the openers, one copy of each value, the closers, then what comes after them all.
 */
function compose(source: string, lists: readonly (readonly Insertion[])[]): string {
  const atOffset = new Map<number, Record<Insertion['place'], string[]>>();
  for (const list of lists) {
    for (const insertion of list) {
      let at = atOffset.get(insertion.offset);
      if (!at) atOffset.set(insertion.offset, (at = { open: [], value: [], close: [], after: [] }));
      if (insertion.place !== 'value' || !at.value.includes(insertion.text)) at[insertion.place].push(insertion.text);
    }
  }
  const parts: string[] = [];
  let from = 0;
  for (const offset of [...atOffset.keys()].sort((a, b) => a - b)) {
    const at = atOffset.get(offset)!;
    parts.push(source.slice(from, offset), ...at.open, ...at.value, ...at.close, ...at.after);
    from = offset;
  }
  parts.push(source.slice(from));
  return parts.join('');
}

/** Why acorn cannot parse the text as that kind of source, or undefined if it can. */
function parseError(text: string, sourceType: 'module' | 'script'): string | undefined {
  try {
    parse(text, { ecmaVersion: 'latest', sourceType, allowHashBang: true, allowReturnOutsideFunction: sourceType === 'script' });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const lines = (text: string) => text.split('\n').length;

describe('instrumentation of real code', () => {
  it('keeps every function of every script in node_modules parsing, minified ones included, without adding a line, every insertion inside its function', () => {
    const root = fileURLToPath(new URL('../../../node_modules', import.meta.url));
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => /\.[cm]?js$/.test(f));
    const broken: string[] = [];
    // V8 keeps a function's old code when an edit changes its very start or end.
    const atAnEdge: string[] = [];
    let scripts = 0;
    let functions = 0;
    for (const file of files) {
      let source: string;
      try {
        source = readFileSync(join(root, file), 'utf8');
      } catch {
        continue; // a directory named like a script
      }
      if (source.length > 1 << 20) continue;
      const found = findFunctions(source);
      if (typeof found === 'string') continue; // not JavaScript that acorn reads
      const probed = found.filter((f) => !f.generator);
      if (probed.length === 0) continue;
      const sourceType = parseError(source, 'module') === undefined ? 'module' : 'script';
      // Two queries on every function: one with the return side and arguments, one entry-only.
      const instrumented = compose(source, [
        probed.flatMap((f, i) => instrumentation(f, i + 1, true, true)),
        probed.flatMap((f, i) => instrumentation(f, 100_000 + i, false, false)),
      ]);
      const error = parseError(instrumented, sourceType);
      if (error !== undefined) broken.push(`${file}: ${error}`);
      else if (lines(instrumented) !== lines(source)) broken.push(`${file}: ${lines(instrumented) - lines(source)} lines added`);
      for (const f of probed.filter((f) => unedited(f) === undefined)) {
        const edge = [...instrumentation(f, 1, true, true), ...instrumentation(f, 2, false, false)].find(
          (i) => i.offset <= f.span.start || i.offset >= f.span.end,
        );
        if (edge) atAnEdge.push(`${file}#${f.name}: ${JSON.stringify(edge.text)} at ${edge.offset}, the function is ${f.span.start}–${f.span.end}`);
      }
      scripts++;
      functions += probed.length;
    }
    assert.ok(scripts > 1000 && functions > 10_000, `${scripts} scripts, ${functions} functions checked`);
    assert.deepEqual(broken.slice(0, 10), [], `${broken.length} scripts broken`);
    assert.deepEqual(atAnEdge.slice(0, 10), [], `${atAnEdge.length} functions edited at an edge`);
  });
});

describe('function names', () => {
  it('names a function with no name by the line it starts on, and the column where a line has several', () => {
    const source = [
      'const total = (items) => items.reduce((sum, x) => {',
      '  return sum + x;',
      '}, 0);',
      'setTimeout(() => { tick(); }, 10); [1].map(function () { return 1; });',
      "emitter.on('data', (chunk) => { use(chunk); });",
    ].join('\n');
    const found = findFunctions(source);
    if (typeof found === 'string') assert.fail(found);
    assert.deepEqual(found.map((f) => f.name).sort(), ['anonymous@1', 'anonymous@4:12', 'anonymous@4:44', 'emitter.on(data)', 'total'].sort());
  });

  it('names a module that is one function by its export', () => {
    const names = (source: string) => {
      const found = findFunctions(source);
      if (typeof found === 'string') assert.fail(found);
      return found.map((f) => f.name).sort();
    };
    assert.deepEqual(names('module.exports = function (commands) { return commands; };'), ['module.exports']);
    assert.deepEqual(names('export default (req) => { return req; };'), ['default']);
    assert.deepEqual(names('export default function () { return 1; }'), ['default']);
    // One with a name of its own keeps it, once.
    assert.deepEqual(names('export default function serve() { return 1; }'), ['serve']);
  });

  it('names a function expression nothing else names by its own name', () => {
    const found = findFunctions(
      ['function logger(prefix) {', '  return function middleware(req, res, next) { next(); };', '}', 'const handle = function inner() { return 1; };', 'run(function () { return 2; });'].join('\n'),
    );
    if (typeof found === 'string') assert.fail(found);
    // What names it from outside (its variable) wins; a function expression with neither is by its line.
    assert.deepEqual(found.map((f) => f.name).sort(), ['anonymous@5', 'handle', 'logger', 'middleware'].sort());
  });
  it("hands a call's this to the hooks in a method or a function, never in an arrow or a constructor", () => {
    const source = 'class A extends B { constructor() { super(); } m(x) { return x; } }\nfunction f() { return 1; }\nconst g = (y) => { return y; };';
    const functions = findFunctions(source);
    assert.ok(typeof functions !== 'string', functions as string);
    const entry = (name: string, withArgs: boolean) => {
      const fn = functions.find((f) => f.name === name)!;
      return instrumentation(fn, 7, true, withArgs, true).find((i) => i.place === 'open')!.text;
    };
    assert.equal(entry('A.prototype.m', true), ' const __fay$f7 = __fay$.h[7].b(arguments, this);');
    assert.equal(entry('f', false), ' const __fay$f7 = __fay$.h[7].b(undefined, this);');
    assert.equal(entry('A.constructor', true), ' const __fay$f7 = __fay$.h[7].b(arguments);', 'no this before super()');
    assert.equal(entry('g', true), ' const __fay$f7 = __fay$.h[7].b([y]);', "an arrow's this is not its call's");
  });
});
