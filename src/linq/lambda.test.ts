import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { printExpression } from '../query/printer.js';
import { CallSite, LambdaError } from './call-site.js';
import { checkLambdaText, type Params } from './lambda.js';

const site = new CallSite('where', undefined, undefined, undefined);

/** The FayQL a lambda's text (as Function.prototype.toString prints it) becomes. */
function spelled(text: string, params?: Params): string {
  const checked = checkLambdaText(text, params, site);
  if (checked.properties) return checked.properties.map((p) => `${p.name} = ${printExpression(p.expr)}`).join(', ');
  return printExpression(checked.body!);
}

function refusal(text: string, params?: Params): LambdaError {
  try {
    spelled(text, params);
  } catch (error) {
    assert.ok(error instanceof LambdaError, `expected a LambdaError for ${text}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${text} to be refused`);
}

describe('the FayLINQ lambda checker', () => {
  const accepted: [string, string, Params?][] = [
    ['e => e.pid > 1', 'pid > 1'],
    ['(e) => e.duration >= 1000 && e.ret < 0', 'duration >= 1000 and ret < 0'],
    ['function (e) { return e.comm === "node"; }', 'comm == "node"'],
    ['e => !(e.comm !== \'a\' || e.pid == 2)', 'not (comm != "a" or pid == 2)'],
    ['e => e.args.filename.startsWith("/etc/")', 'args.filename =~ "/etc/*"'],
    ['e => e.args.filename.endsWith(".json")', 'args.filename =~ "*.json"'],
    ['e => e.comm.includes("a*b")', 'comm =~ "*a\\\\*b*"'],
    ['e => e.args[0] * 2 + 1 - -3 > 10 % 4', 'args[0] * 2 + 1 - -3 > 10 % 4'],
    ['e => e.time > now() - minutes(5)', 'time > now() - 5m'],
    ['e => e.duration > milliseconds(1.5)', 'duration > 1.5ms'],
    ['e => matches(e.comm, "node*")', 'comm =~ "node*"'],
    ['e => [1, 2, 3].includes(e.pid)', 'pid in (1, 2, 3)'],
    ['(e, p) => e.pid === p.pid && e.comm === p.comm', 'pid == 42 and comm == "api"', { pid: 42, comm: 'api' }],
    ['(e, p) => p.pids.includes(e.pid)', 'pid in (7, 8)', { pids: [7, 8] }],
    ['(e, p) => e.ret < p.min', 'ret < -5', { min: -5 }],
    ['(e, p) => e.duration > seconds(p.s)', 'duration > 2s', { s: 2 }],
    ['e => `x` === e.comm', '"x" == comm'],
    ['e => ({ pid: e.pid, file: e.args.filename })', 'pid = pid, file = args.filename'],
    // esbuild (tsx) keeps names by wrapping functions: __name(fn, "name").
    ['__name((e) => e.pid > 1, "big")', 'pid > 1'],
    ['e => e.msg.request.url.length > 10n', 'msg.request.url.length > 10'],
  ];
  for (const [text, fayql, params] of accepted) {
    it(`reads ${text} as ${fayql}`, () => assert.equal(spelled(text, params), fayql));
  }

  const refused: [string, RegExp, Params?][] = [
    ['e => process.exit()', /process is a variable from outside|process\.exit\(…\) is a call/],
    ['e => { while (1); }', /one expression: no statements, loops/],
    ['e => { for (;;) {} return true; }', /one expression/],
    ['e => globalThis', /globalThis is a variable from outside the lambda/],
    ['e => e.pid === outer', /outer is a variable from outside the lambda/],
    ['e => e.comm = "x"', /assigns: a lambda may not change anything/],
    ['e => e.pid++ > 0', /assigns/],
    ['e => e.comm.toString() === "a"', /is a call: a lambda may call only/],
    ['e => eval("1")', /eval\(…\) is a call/],
    ['e => new Date() > 0', /creates an object/],
    ['e => (() => true)()', /may not define functions|is a call/],
    ['async e => e.pid', /not async/],
    ['e => e.pid > 1 ? true : false', /\?: choice/],
    ['e => e[e.comm]', /only a constant index/],
    ['e => e', /is the whole event/],
    ['e => this.x', /this is outside the lambda/],
    ['e => e.comm?.length', /\?\. has no FayQL spelling/],
    ['e => typeof e.pid === "number"', /typeof has no FayQL spelling/],
    ['e => e.pid > 1.5', /whole numbers/],
    ['(e, p) => e.pid === p.pid', /parameter object, but none was passed/],
    ['(e, p) => e.pid === p.nope', /the parameter object has no nope/, { pid: 1 }],
    ['(e, p) => e.pid === p.f', /f is a object: parameters are numbers, strings, booleans/, { f: {} as never }],
    ['({ pid }) => pid > 1', /destructuring is not read/],
    ['e => ({ pid })', /reads a variable from outside the lambda/],
    ['e => e.comm.startsWith(e.probe)', /constant string/],
  ];
  for (const [text, message, params] of refused) {
    it(`refuses ${text}`, () => assert.match(refusal(text, params).message, message));
  }

  it('names where the offending piece is in the caller’s file', async () => {
    const { connect } = await import('./fay.js');
    const fay = await connect();
    const outer = 3;
    let error: unknown;
    try {
      // The next line is the one the error must point at.
      fay.syscalls('openat').where((e) => e.pid === outer);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof LambdaError);
    const file = fileURLToPath(import.meta.url);
    const lines = readFileSync(file, 'utf8').split('\n');
    const line = lines.findIndex((l) => l.includes('where((e) => e.pid === outer)'));
    assert.equal(error.location, `${file}:${line + 1}:${lines[line]!.indexOf('outer);') + 1}`, 'the line and column of `outer` in this file');
    assert.match(error.message, /where: outer is a variable from outside the lambda/);
  });
});
