import { parse, type Node } from 'acorn';
import { ancestor } from 'acorn-walk';

/** A function found in a script, named the way js: probe patterns name it. */
export interface ScriptFunction {
  /** `query`, `Cart.prototype.add`, `Cart.prototype.#total`, `Cart.create`, `Cart.constructor`, `handlers.get`. */
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
  readonly exits: readonly { readonly kind: 'return' | 'throw'; readonly start: number; readonly argument: { start: number; end: number } | undefined }[];
  /** Whether the last statement of a block body is a return or a throw (no fall-through call needed). */
  readonly endsInExit: boolean;
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

/** `module.exports.x`, `exports.x`, `obj.x` → its dotted name (the `module.exports`/`exports` prefix dropped). */
function memberName(node: unknown): string | undefined {
  const n = node as AnyNode;
  if (n.type === 'Identifier') return n.name as string;
  if (n.type !== 'MemberExpression' || n.computed) return undefined;
  const object = memberName(n.object);
  const property = nameOf(n.property);
  if (object === undefined || property === undefined) return undefined;
  if (object === 'module.exports' || object === 'exports') return property;
  return `${object}.${property}`;
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

/** The return and throw statements that belong to a function itself, not to functions nested in it. */
function ownExits(body: AnyNode): ScriptFunction['exits'] {
  const exits: { kind: 'return' | 'throw'; start: number; argument: { start: number; end: number } | undefined }[] = [];
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
        argument: argument ? { start: argument.start, end: argument.end } : undefined,
      });
    }
    for (const [key, value] of Object.entries(n)) if (key !== 'type' && key !== 'start' && key !== 'end') visit(value);
  };
  visit(body.type === 'BlockStatement' ? body.body : undefined);
  return exits;
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
    exits: ownExits(body),
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
  const add = (name: string | undefined, fn: unknown, constructor = false) => {
    if (name !== undefined && isFunction(fn)) found.push(describe(name, fn, constructor));
  };
  const classMembers = (className: string | undefined, body: AnyNode) => {
    if (className === undefined) return;
    for (const member of body.body as AnyNode[]) {
      if (member.type !== 'MethodDefinition') continue;
      const key = nameOf(member.key);
      if (key === undefined || member.computed) continue;
      if (member.kind === 'constructor') add(`${className}.constructor`, member.value, true);
      else if (member.kind === 'method') add(member.static ? `${className}.${key}` : `${className}.prototype.${key}`, member.value);
    }
  };
  ancestor(program, {
    FunctionDeclaration(node) {
      add(nameOf((node as unknown as AnyNode).id), node);
    },
    VariableDeclarator(node) {
      const n = node as unknown as AnyNode;
      const name = nameOf(n.id);
      add(name, n.init);
      const init = wrapped(n.init as AnyNode | null);
      if (init?.type === 'ClassExpression') classMembers(name, init.body as AnyNode);
      if (init?.type === 'ObjectExpression' && name) objectMembers(name, init);
    },
    ClassDeclaration(node) {
      const n = node as unknown as AnyNode;
      classMembers(nameOf(n.id), n.body as AnyNode);
    },
    AssignmentExpression(node) {
      const n = node as unknown as AnyNode;
      const name = memberName(n.left);
      const right = wrapped(n.right as AnyNode) as AnyNode;
      if (name === 'module.exports' || name === 'exports') {
        if (right.type === 'ObjectExpression') objectMembers(undefined, right);
        return;
      }
      add(name, right);
      if (right.type === 'ClassExpression') classMembers(name, right.body as AnyNode);
      if (right.type === 'ObjectExpression' && name) objectMembers(name, right);
    },
  });
  return found;

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
 * Where and what to insert so that a function calls its probe's hooks,
 * `__fay$.h[fid]` (see target/runtime.js). V8 applies live edits that add calls and locals, but
 * silently keeps the old code for ones that add a function, or a try whose catch or finally reads
 * a variable declared outside it (as a frame would be), so the return side is plain calls: a frame begins at entry, each return hands its value
 * through r(), each throw its exception through t(), falling off the end
 * calls r(); exceptions from callees leave the frame open, which the runtime
 * notices. Nothing adds a line, so line numbers do not move. Names carry the
 * probe's id, so that the insertions of several probes on one function compose.
 */
export function instrumentation(fn: ScriptFunction, fid: number | string, exit: boolean, withArgs: boolean): Insertion[] {
  // The arguments only when the probe reads them: an arguments object costs an allocation per call.
  const args = withArgs ? (fn.arrow ? fn.parameters : 'arguments') : '';
  const hooks = `__fay$.h[${fid}]`;
  const { start, end, block } = fn.body;
  const open = (offset: number, text: string): Insertion => ({ offset, text, place: 'open' });
  const close = (offset: number): Insertion => ({ offset, text: ')', place: 'close' });
  if (!exit) {
    const call = `${hooks}.e(${args})`;
    return block ? [open(fn.prologueEnd, ` ${call};`)] : [open(start, `(${call}, `), close(end)];
  }
  if (!block) return [open(start, `${hooks}.r(${hooks}.b(${args}), `), close(end)];
  const frame = `__fay$f${fid}`;
  const insertions = [open(fn.prologueEnd, ` const ${frame} = ${hooks}.b(${args});`)];
  for (const x of fn.exits) {
    const hook = x.kind === 'return' ? 'r' : 't';
    if (x.argument) {
      insertions.push(open(x.argument.start, `${hooks}.${hook}(${frame}, `), close(x.argument.end));
    } else {
      const at = x.start + 'return'.length;
      insertions.push(open(at, ` ${hooks}.r(${frame}, `), { offset: at, text: 'undefined', place: 'value' }, close(at));
    }
  }
  // After the closers at the same offset: a return's argument may end right at the closing brace.
  if (!fn.endsInExit) insertions.push({ offset: end - 1, text: `; ${hooks}.r(${frame}, undefined);`, place: 'after' });
  return insertions;
}
