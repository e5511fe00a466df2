import { parse, type Node } from 'acorn';
import { ancestor } from 'acorn-walk';
import type { ProbeHooks } from './runtime/contract.js';

/** The hooks instrumented code calls. */
type InstrumentationHook = Exclude<keyof ProbeHooks, 'run' | 'endAll'>;
import { ANONYMOUS } from './sources.js';

/** An expression the instrumentation hands to a hook: a comma sequence needs parentheses as an argument. */
export interface Operand {
  readonly start: number;
  readonly end: number;
  readonly sequence: boolean;
}

/** A function found in a script, named the way js: probe patterns name it. */
export interface ScriptFunction {
  /**
   * `query`, `Cart.prototype.add`, `Cart.prototype.#total`, `Cart.create`, `Cart.constructor`,
   * `handlers.get`, `app.get(/users/:id)`; with no name, where it starts: `anonymous@12`.
   */
  readonly name: string;
  readonly async: boolean;
  readonly generator: boolean;
  readonly arrow: boolean;
  readonly constructor: boolean;
  /** Where the whole function is in the source (from its keyword or parameters to its end). */
  readonly span: { readonly start: number; readonly end: number };
  /** The body: a block (`{ … }`) or, for an arrow, an expression. */
  readonly body: { readonly start: number; readonly end: number; readonly block: boolean };
  /** For arrows (which have no `arguments`): how to list the parameters, e.g. `[a, b, ...rest]`. */
  readonly parameters: string;
  /** Where the body's directives ('use strict') end: the probe goes after them. */
  readonly prologueEnd: number;
  /** The function's own return and throw statements (not those of functions inside it). */
  readonly exits: readonly { readonly kind: 'return' | 'throw'; readonly start: number; readonly argument: Operand | undefined }[];
  /** Whether the last statement of a block body is a return or a throw (no fall-through call needed). */
  readonly endsInExit: boolean;
  /** The operands of the block body's own await expressions. */
  readonly awaits: readonly Operand[];
  /** Whether the block body has a `for await` of its own (an await with no operand to hand over). */
  readonly forAwait: boolean;
}

interface AnyNode extends Node {
  [field: string]: unknown;
}

function nameOf(node: unknown): string | undefined {
  const n = node as AnyNode | undefined;
  if (!n) return undefined;
  if (n.type === 'Identifier') return n.name as string;
  if (n.type === 'PrivateIdentifier') return `#${n.name as string}`;
  if (n.type === 'Literal' && typeof n.value === 'string') return n.value;
  return undefined;
}

/** What a call calls, dotted: `app.get`, `this.server.on`, `emitter.on`; undefined for anything computed. */
function calleeName(node: unknown): string | undefined {
  const n = node as AnyNode;
  if (n.type === 'ThisExpression') return 'this';
  if (n.type === 'Identifier') return n.name as string;
  if (n.type !== 'MemberExpression' || n.computed) return undefined;
  const object = calleeName(n.object);
  const property = nameOf(n.property);
  return object === undefined || property === undefined ? undefined : `${object}.${property}`;
}

/** `module.exports.x`, `exports.x`, `obj.x` → its dotted name (the `module.exports`/`exports` prefix dropped). */
function memberName(node: unknown): string | undefined {
  let name = calleeName(node);
  if (name === undefined || name === 'this' || name.startsWith('this.')) return undefined;
  while (/^(module\.)?exports\./.test(name)) name = name.replace(/^(module\.)?exports\./, '');
  return name;
}

function parametersOf(fn: AnyNode): string {
  const names = (fn.params as AnyNode[]).map((p) => {
    if (p.type === 'Identifier') return p.name as string;
    if (p.type === 'AssignmentPattern' && (p.left as AnyNode).type === 'Identifier') return (p.left as AnyNode).name as string;
    if (p.type === 'RestElement' && (p.argument as AnyNode).type === 'Identifier') return `...${(p.argument as AnyNode).name as string}`;
    return 'undefined';
  });
  return `[${names.join(', ')}]`;
}

const FUNCTION_TYPES = new Set(['FunctionExpression', 'ArrowFunctionExpression', 'FunctionDeclaration']);

function operand(node: AnyNode): Operand {
  return { start: node.start, end: node.end, sequence: node.type === 'SequenceExpression' };
}

/** The return and throw statements and the awaits that belong to a function's block body itself, not to functions nested in it. */
function ownParts(body: AnyNode): Pick<ScriptFunction, 'exits' | 'awaits' | 'forAwait'> {
  const exits: { kind: 'return' | 'throw'; start: number; argument: Operand | undefined }[] = [];
  const awaits: Operand[] = [];
  let forAwait = false;
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(visit);
    const n = node as AnyNode;
    if (typeof n.type !== 'string') return;
    if (FUNCTION_TYPES.has(n.type) || n.type === 'ClassBody') return;
    if (n.type === 'ReturnStatement' || n.type === 'ThrowStatement') {
      const argument = n.argument as AnyNode | null;
      exits.push({
        kind: n.type === 'ReturnStatement' ? 'return' : 'throw',
        start: n.start,
        argument: argument ? operand(argument) : undefined,
      });
    }
    if (n.type === 'AwaitExpression') awaits.push(operand(n.argument as AnyNode));
    if (n.type === 'ForOfStatement' && n.await === true) forAwait = true;
    for (const [key, value] of Object.entries(n)) if (key !== 'type' && key !== 'start' && key !== 'end') visit(value);
  };
  visit(body.type === 'BlockStatement' ? body.body : undefined);
  return { exits, awaits, forAwait };
}

function describe(name: string, fn: AnyNode, constructor = false): ScriptFunction {
  const body = fn.body as AnyNode;
  const block = body.type === 'BlockStatement';
  const statements = block ? (body.body as AnyNode[]) : [];
  const directives = statements.filter((st, i) => statements.slice(0, i + 1).every((d) => typeof d.directive === 'string'));
  const last = statements[statements.length - 1];
  return {
    name,
    async: Boolean(fn.async),
    generator: Boolean(fn.generator),
    arrow: fn.type === 'ArrowFunctionExpression',
    constructor,
    span: { start: fn.start, end: fn.end },
    body: { start: body.start, end: body.end, block },
    parameters: parametersOf(fn),
    prologueEnd: directives.length > 0 ? directives[directives.length - 1]!.end : body.start + 1,
    ...ownParts(body),
    endsInExit: last?.type === 'ReturnStatement' || last?.type === 'ThrowStatement',
  };
}

function isFunction(node: unknown): node is AnyNode {
  const type = (node as AnyNode | undefined)?.type;
  return type === 'FunctionExpression' || type === 'ArrowFunctionExpression' || type === 'FunctionDeclaration';
}

/**
 * Scripts already parsed, by their text, least recently used first: processes that run the same
 * code, and repeated queries, parse each script once. Bounded by the characters held.
 */
const parsed = new Map<string, readonly ScriptFunction[] | string>();
const PARSED_MAX_CHARS = 32 << 20;
let parsedChars = 0;

/** Parses a script (as an ES module, else as CommonJS) and names every function it can; a string says why it could not. */
export function findFunctions(source: string): readonly ScriptFunction[] | string {
  const known = parsed.get(source);
  if (known !== undefined) {
    parsed.delete(source);
    parsed.set(source, known);
    return known;
  }
  const found = parseFunctions(source);
  parsed.set(source, found);
  parsedChars += source.length;
  for (const [old] of parsed) {
    if (parsedChars <= PARSED_MAX_CHARS) break;
    parsed.delete(old);
    parsedChars -= old.length;
  }
  return found;
}

function parseFunctions(source: string): ScriptFunction[] | string {
  let program: Node;
  try {
    program = parse(source, { ecmaVersion: 'latest', sourceType: 'module', allowHashBang: true });
  } catch {
    try {
      program = parse(source, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true, allowHashBang: true });
    } catch (error) {
      return `cannot parse it: ${(error as Error).message}`;
    }
  }
  const found: ScriptFunction[] = [];
  /** Every function of the script, and those named so far. */
  const functions: AnyNode[] = [];
  const named = new Set<unknown>();
  const add = (name: string | undefined, fn: unknown, constructor = false) => {
    if (name === undefined || !isFunction(fn)) return;
    found.push(describe(name, fn, constructor));
    named.add(fn);
  };
  const classMembers = (className: string | undefined, body: AnyNode) => {
    if (className === undefined) return;
    for (const member of body.body as AnyNode[]) {
      const key = nameOf(member.key);
      if (key === undefined || member.computed) continue;
      const name = member.static ? `${className}.${key}` : `${className}.prototype.${key}`;
      if (member.type === 'MethodDefinition') {
        if (member.kind === 'constructor') add(`${className}.constructor`, member.value, true);
        else if (member.kind === 'method') add(name, member.value);
      } else if (member.type === 'PropertyDefinition') {
        // A field holding a function (`handle = async (req) => { … }`) is named as the method it stands for.
        add(name, member.value);
      }
    }
  };
  ancestor(program, {
    FunctionDeclaration(node) {
      functions.push(node as unknown as AnyNode);
      add(nameOf((node as unknown as AnyNode).id), node);
    },
    FunctionExpression(node) {
      functions.push(node as unknown as AnyNode);
    },
    ArrowFunctionExpression(node) {
      functions.push(node as unknown as AnyNode);
    },
    VariableDeclarator(node) {
      const n = node as unknown as AnyNode;
      const name = nameOf(n.id);
      add(name, n.init);
      const init = wrapped(n.init as AnyNode | null);
      if (init?.type === 'ClassExpression') classMembers(name, init.body as AnyNode);
      if (init?.type === 'ObjectExpression' && name) objectMembers(name, init);
    },
    ExportDefaultDeclaration(node) {
      // export default function () { … } and export default (req) => { … }: an ES module's default export.
      const declaration = (node as unknown as AnyNode).declaration;
      if (!named.has(declaration)) add('default', declaration);
    },
    ClassDeclaration(node) {
      const n = node as unknown as AnyNode;
      classMembers(nameOf(n.id), n.body as AnyNode);
    },
    CallExpression(node) {
      // A callback registered under a string is named by its call: app.get('/users/:id', async (req, res) => { … })
      // is app.get(/users/:id), emitter.on('data', …) is emitter.on(data).
      const n = node as unknown as AnyNode;
      const [first, ...rest] = n.arguments as AnyNode[];
      const key = first?.type === 'Literal' && typeof first.value === 'string' ? first.value : undefined;
      // A name is one word of a probe point: no whitespace, | or , (which end it), and not a page long.
      if (key === undefined || key.length > 200 || /[\s|,]/.test(key)) return;
      const name = calleeName(n.callee);
      if (name !== undefined) for (const argument of rest) add(`${name}(${key})`, argument);
    },
    AssignmentExpression(node) {
      const n = node as unknown as AnyNode;
      const name = memberName(n.left);
      const right = wrapped(n.right as AnyNode) as AnyNode;
      if (name === 'module.exports' || name === 'exports') {
        if (right.type === 'ObjectExpression') objectMembers(undefined, right);
        // A module that is one function: module.exports = (commands) => { … }.
        else if (name === 'module.exports') add(name, right);
        return;
      }
      add(name, right);
      if (right.type === 'ClassExpression') classMembers(name, right.body as AnyNode);
      if (right.type === 'ObjectExpression' && name) objectMembers(name, right);
    },
  });
  // A function expression nothing else names goes by its own name: return function middleware(req, res, next) { … }.
  for (const fn of functions) if (!named.has(fn) && fn.type === 'FunctionExpression') add(nameOf(fn.id), fn);
  anonymous(functions.filter((fn) => !named.has(fn)));
  return found;

  /** Functions with no name are named by their line, and column where one line has several. */
  function anonymous(unnamed: AnyNode[]): void {
    if (unnamed.length === 0) return;
    const lineStarts = [0];
    for (let at = source.indexOf('\n'); at >= 0; at = source.indexOf('\n', at + 1)) lineStarts.push(at + 1);
    const lineOf = (offset: number) => {
      let low = 0;
      let high = lineStarts.length - 1;
      while (low < high) {
        const mid = (low + high + 1) >> 1;
        if (lineStarts[mid]! <= offset) low = mid;
        else high = mid - 1;
      }
      return low;
    };
    const lines = unnamed.map((fn) => lineOf(fn.start));
    const perLine = new Map<number, number>();
    for (const line of lines) perLine.set(line, (perLine.get(line) ?? 0) + 1);
    unnamed.forEach((fn, i) => {
      const line = lines[i]!;
      const column = perLine.get(line)! > 1 ? `:${fn.start - lineStarts[line]! + 1}` : '';
      add(`${ANONYMOUS}${line + 1}${column}`, fn);
    });
  }

  /** An object or class passed through a call such as Object.freeze({ … }) is named as if assigned directly. */
  function wrapped(node: AnyNode | null): AnyNode | null {
    if (node?.type !== 'CallExpression') return node;
    const first = (node.arguments as AnyNode[])[0];
    return first && (first.type === 'ObjectExpression' || first.type === 'ClassExpression') ? first : node;
  }

  function objectMembers(owner: string | undefined, object: AnyNode): void {
    for (const property of object.properties as AnyNode[]) {
      if (property.type !== 'Property' || property.computed || property.kind !== 'init') continue;
      const key = nameOf(property.key);
      if (key !== undefined) add(owner ? `${owner}.${key}` : key, property.value);
    }
  }
}

/**
 * One piece of text to insert before `offset`. Several probes (of several
 * queries) may insert at one offset; the runtime puts openers first, then one
 * copy of each value, then closers, so that their wrappings nest, then
 * statements that follow them all (a fall-through return after a return's
 * closer: minified code writes `if(c)return x}`).
 */
export interface Insertion {
  offset: number;
  text: string;
  place: 'open' | 'value' | 'close' | 'after';
}

/**
 * Why V8 would keep this function's old code after the instrumentation's edit, while answering
 * that it applied it: an arrow function whose body is an expression ends with that expression, so
 * the call around the body closes at the function's very end. V8 diffs the edit character by
 * character, and a change it places there (always for a bare body; for a body in parentheses when
 * the closer falls among other closing parentheses) leaves the function as it was (measured on
 * Node 20, sync and async).
 */
export function unedited(fn: ScriptFunction): string | undefined {
  if (!fn.arrow || fn.body.block) return undefined;
  return "it is an arrow function whose body is an expression: a probe's call around it would close at the function's very end, where V8's live edit silently leaves a function as it was";
}

/**
 * Whether every way a call of this async function can end passes one of its hooks: each of its
 * awaits hands its operand through a(), so that a call that resumes (or first runs) and then
 * reaches neither a return, a throw statement nor another await is known to have rejected.
 * Not for async generators or a `for await` (it awaits without an operand); an arrow with an
 * expression body is not live-edited at all (unedited()).
 */
export function tracksAwaits(fn: ScriptFunction): boolean {
  return fn.async && !fn.generator && fn.body.block && !fn.forAwait;
}

/**
 * Where and what to insert so that a function calls its probe's hooks,
 * `__fay$.h[fid]` (ProbeHooks in runtime/contract.ts). V8 applies live edits that add calls and locals, but
 * silently keeps the old code for ones that add a function, or a try whose catch or finally reads
 * a variable declared outside it (as a frame would be), so the return side is plain calls: a frame begins at entry, each return hands its value
 * through r(), each throw its exception through t(), falling off the end
 * calls r(), and an async function's awaits hand their operands through a()
 * (tracksAwaits); exceptions from callees leave the frame open, which the runtime
 * notices. None for a function V8 would not edit (unedited()). Nothing adds a line, so line numbers do not move. Names carry the
 * probe's id, so that the insertions of several probes on one function compose.
 */
export function instrumentation(fn: ScriptFunction, fid: number | string, exit: boolean, withArgs: boolean, withThis = false): Insertion[] {
  // Nothing where V8 would keep the old code anyway.
  if (unedited(fn) !== undefined) return [];
  // The arguments only when the probe reads them: an arguments object costs an allocation per call.
  const list = withArgs ? (fn.arrow ? fn.parameters : 'arguments') : '';
  // `this` only where it is the call's own and always there: not in an arrow (its this is the
  // enclosing function's), not in a constructor (a derived class's has none before super()).
  const self = withThis && !fn.arrow && !fn.constructor;
  const args = self ? `${list || 'undefined'}, this` : list;
  /** A call of one of the probe's hooks, up to its arguments: `__fay$.h[fid].b(`. */
  const hook = (name: InstrumentationHook) => `__fay$.h[${fid}].${name}(`;
  const open = (offset: number, text: string): Insertion => ({ offset, text, place: 'open' });
  // Hands an operand to a hook as its last argument: `hook(…, operand)`, a comma sequence in parentheses.
  const handed = (o: Operand, call: string): Insertion[] => [
    open(o.start, `${call}${o.sequence ? '(' : ''}`),
    { offset: o.end, text: o.sequence ? '))' : ')', place: 'close' },
  ];
  if (!exit) return [open(fn.prologueEnd, ` ${hook('e')}${args});`)];
  const frame = `__fay$f${fid}`;
  const insertions = [open(fn.prologueEnd, ` const ${frame} = ${hook('b')}${args});`)];
  for (const x of fn.exits) {
    if (x.argument) {
      insertions.push(...handed(x.argument, `${hook(x.kind === 'return' ? 'r' : 't')}${frame}, `));
    } else {
      const at = x.start + 'return'.length;
      insertions.push(open(at, ` ${hook('r')}${frame}, `), { offset: at, text: 'undefined', place: 'value' }, { offset: at, text: ')', place: 'close' });
    }
  }
  if (tracksAwaits(fn)) for (const a of fn.awaits) insertions.push(...handed(a, `${hook('a')}${frame}, `));
  // After the closers at the same offset: a return's argument may end right at the closing brace.
  if (!fn.endsInExit) insertions.push({ offset: fn.body.end - 1, text: `; ${hook('r')}${frame}, undefined);`, place: 'after' });
  return insertions;
}
