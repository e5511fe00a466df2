import { parseExpressionAt, type BlockStatement, type Expression, type Node, type Pattern, type Super } from 'acorn';
import type { BinaryOperator, ExprNode } from '../query/ast.js';
import { DURATION_UNITS } from '../query/tokens.js';
import { LambdaError, type CallSite } from './call-site.js';
import { signedNumber, SPAN } from './spelling.js';

/** Values a lambda may take from its parameter object: they become constants of the query. */
export type ParamValue = number | bigint | string | boolean | readonly (number | bigint | string | boolean)[];
export type Params = Readonly<Record<string, ParamValue>>;

/**
 * Pure helpers a lambda may call, by name: they are spelled in FayQL, never
 * run. Durations become duration literals; `now()` is the query's start.
 */
const DURATION_HELPERS: Readonly<Record<string, string>> = {
  nanoseconds: 'ns',
  microseconds: 'us',
  milliseconds: 'ms',
  seconds: 's',
  minutes: 'm',
  hours: 'h',
  days: 'd',
};
const HELPERS = ['now', 'matches', ...Object.keys(DURATION_HELPERS)];
const STRING_METHODS = ['startsWith', 'endsWith', 'includes'];


/** The checked lambda: its body as a FayQL expression, or an object's properties as named expressions. */
export interface CheckedLambda {
  /** For `e => ({ a: …, b: … })`: each property; otherwise undefined. */
  readonly properties: readonly { readonly name: string; readonly expr: ExprNode }[] | undefined;
  /** For any other body: the expression. */
  readonly body: ExprNode | undefined;
}

/**
 * Reads a lambda's source text (Function.prototype.toString) and turns it into
 * FayQL, accepting only a pure expression over the event's fields (the first
 * parameter) and the values of an explicitly passed parameter object (the
 * second): no calls but the pure helpers, no assignment, no free variables, no
 * statements. What it refuses, it names, with where it is in the user's source.
 */
export function checkLambda(fn: unknown, params: Params | undefined, site: CallSite): CheckedLambda {
  if (typeof fn !== 'function') throw site.error(`expected a function such as e => e.pid > 1, got ${typeof fn}`);
  return checkLambdaText(Function.prototype.toString.call(fn), params, site);
}

/** checkLambda on a function's source text. */
export function checkLambdaText(text: string, params: Params | undefined, site: CallSite): CheckedLambda {
  return new LambdaReader(text, params, site).read();
}

/** A glob matching text that starts with, ends with, or contains a literal. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

class LambdaReader {
  private eventName: string | undefined;
  private paramsName: string | undefined;

  constructor(
    private readonly text: string,
    private readonly params: Params | undefined,
    private readonly site: CallSite,
  ) {}

  read(): CheckedLambda {
    let root: Expression;
    try {
      root = parseExpressionAt(this.text, 0, { ecmaVersion: 'latest' });
    } catch {
      throw this.site.error(`cannot read this function as a lambda: ${this.text.slice(0, 60)}`, undefined, 'write it as an arrow function, e.g. e => e.pid > 1');
    }
    root = this.unwrapName(root);
    if (root.type !== 'ArrowFunctionExpression' && root.type !== 'FunctionExpression') {
      throw this.fail(root, 'expected an arrow function such as e => e.pid > 1');
    }
    if (root.async || root.generator) throw this.fail(root, 'a lambda is a plain expression: not async, not a generator');
    if (root.params.length === 0 || root.params.length > 2) {
      throw this.fail(root, 'a lambda takes the event, and optionally a parameter object: (e, p) => e.pid === p.pid');
    }
    this.eventName = this.paramName(root.params[0]!);
    if (root.params[1]) {
      this.paramsName = this.paramName(root.params[1]);
      if (this.params === undefined) throw this.fail(root.params[1], `${this.paramsName} is a parameter object, but none was passed: add it after the lambda, e.g. where((e, p) => …, { pid })`);
    }
    let body: Expression | BlockStatement = root.body;
    if (body.type === 'BlockStatement') {
      const statements = body.body;
      if (statements.length !== 1 || statements[0]!.type !== 'ReturnStatement' || !statements[0].argument) {
        throw this.fail(body, 'a lambda is one expression: no statements, loops or blocks (write e => <expression>)');
      }
      body = statements[0].argument;
    }
    if (body.type === 'ObjectExpression') {
      const properties = body.properties.map((p) => {
        if (p.type !== 'Property' || p.kind !== 'init' || p.method || p.computed) throw this.fail(p, 'an object of columns takes plain properties: { name: e.field, … }');
        if (p.shorthand) throw this.fail(p, `{ ${this.source(p)} } reads a variable from outside the lambda; write { name: e.field }`);
        const name = p.key.type === 'Identifier' ? p.key.name : p.key.type === 'Literal' && typeof p.key.value === 'string' ? p.key.value : undefined;
        if (name === undefined) throw this.fail(p.key, 'a column name is a plain name');
        return { name, expr: this.expression(p.value) };
      });
      return { properties, body: undefined };
    }
    return { properties: undefined, body: this.expression(body) };
  }

  /** esbuild (tsx) keeps function names by wrapping: __name(fn, "name"). */
  private unwrapName(node: Expression): Expression {
    while (node.type === 'CallExpression' && node.callee.type === 'Identifier' && node.callee.name === '__name' && node.arguments[0]) {
      node = node.arguments[0] as Expression;
    }
    return node;
  }

  private paramName(p: Pattern): string {
    if (p.type !== 'Identifier') throw this.fail(p, 'name the lambda\'s parameters (e, p); destructuring is not read');
    return p.name;
  }

  private source(node: Node): string {
    return this.text.slice(node.start, node.end);
  }

  private fail(node: Node, message: string, hint?: string): LambdaError {
    return this.site.error(message, { text: this.text, start: node.start, end: node.end }, hint);
  }

  private expression(node: Expression): ExprNode {
    node = this.unwrapName(node);
    switch (node.type) {
      case 'Literal':
        return this.literal(node.value, node);
      case 'TemplateLiteral':
        if (node.expressions.length > 0) throw this.fail(node, 'a template with ${…} builds a string at run time; compare fields to constants');
        return this.literal(node.quasis[0]!.value.cooked ?? '', node);
      case 'Identifier':
        if (node.name === this.eventName) throw this.fail(node, `${node.name} is the whole event; use one of its fields, e.g. ${node.name}.pid`);
        if (node.name === this.paramsName) throw this.fail(node, `${node.name} is the parameter object; use one of its values, e.g. ${node.name}.pid`);
        if (node.name === 'undefined' || node.name === 'NaN' || node.name === 'Infinity') throw this.fail(node, `${node.name} has no FayQL spelling`);
        throw this.fail(node, `${node.name} is a variable from outside the lambda: a lambda sees only its event and its parameter object`, `pass it explicitly: where((e, p) => … p.${node.name} …, { ${node.name} })`);
      case 'MemberExpression':
        return this.member(node);
      case 'UnaryExpression':
        if (node.operator === '!') return { kind: 'Unary', operator: '!', operand: this.expression(node.argument), span: SPAN };
        if (node.operator === '-') {
          const operand = this.expression(node.argument);
          return { kind: 'Unary', operator: '-', operand, span: SPAN };
        }
        throw this.fail(node, `${node.operator} has no FayQL spelling; use comparisons, arithmetic, !, && and ||`);
      case 'BinaryExpression':
        return this.binary(node);
      case 'LogicalExpression': {
        if (node.operator === '??') throw this.fail(node, '?? has no FayQL spelling: every field has a value');
        const operator: BinaryOperator = node.operator;
        return { kind: 'Binary', operator, left: this.expression(node.left), right: this.expression(node.right), span: SPAN };
      }
      case 'CallExpression':
        return this.call(node);
      case 'ChainExpression':
        throw this.fail(node, '?. has no FayQL spelling: every field has a value');
      case 'AssignmentExpression':
      case 'UpdateExpression':
        throw this.fail(node, `${this.source(node)} assigns: a lambda may not change anything`);
      case 'ConditionalExpression':
        throw this.fail(node, 'a ?: choice has no FayQL spelling; split it into two conditions with && and ||');
      case 'ArrowFunctionExpression':
      case 'FunctionExpression':
        throw this.fail(node, 'a lambda may not define functions');
      case 'ThisExpression':
        throw this.fail(node, 'this is outside the lambda: a lambda sees only its event and its parameter object');
      case 'NewExpression':
        throw this.fail(node, `${this.source(node)} creates an object: a lambda may call only ${HELPERS.join(', ')} and string startsWith/endsWith/includes`);
      default:
        throw this.fail(node, `${this.source(node).slice(0, 40)} (${node.type}) has no FayQL spelling`);
    }
  }

  private literal(value: unknown, node: Node): ExprNode {
    if (typeof value === 'string') return { kind: 'String', value, span: SPAN };
    if (typeof value === 'boolean') return { kind: 'Boolean', value, span: SPAN };
    if (typeof value === 'number' || typeof value === 'bigint') return this.number(value, node);
    throw this.fail(node, `${this.source(node)} has no FayQL spelling`);
  }

  private number(value: number | bigint, node: Node): ExprNode {
    if (typeof value === 'number' && !Number.isInteger(value)) throw this.fail(node, `${value}: numbers in a condition are whole numbers (fields are integers)`);
    return signedNumber(value);
  }

  /** A constant from the parameter object, as a literal. */
  private param(name: string, node: Node): ParamValue {
    if (!Object.prototype.hasOwnProperty.call(this.params, name)) {
      throw this.fail(node, `the parameter object has no ${name}`, `pass it: { ${name}: … } (it has ${Object.keys(this.params ?? {}).join(', ') || 'nothing'})`);
    }
    const value = this.params![name]!;
    const ok = (v: unknown) => typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean';
    if (!(ok(value) || (Array.isArray(value) && value.every(ok)))) {
      throw this.fail(node, `${name} is a ${typeof value}: parameters are numbers, strings, booleans, or arrays of them`);
    }
    return value;
  }

  private constant(value: ParamValue, node: Node): ExprNode {
    if (Array.isArray(value)) throw this.fail(node, 'an array parameter is used as list.includes(e.field)');
    return this.literal(value, node);
  }

  /** e.a.b[0] → a field; p.name → a constant. */
  private member(node: Extract<Expression, { type: 'MemberExpression' }>): ExprNode {
    const path: string[] = [];
    let at: Expression | Super = node;
    while (at.type === 'MemberExpression') {
      const m: Extract<Expression, { type: 'MemberExpression' }> = at;
      if (m.optional) throw this.fail(m, '?. has no FayQL spelling: every field has a value');
      if (m.computed) {
        const index = m.property;
        if (index.type !== 'Literal' || typeof index.value !== 'number' || !Number.isInteger(index.value)) {
          throw this.fail(index, 'only a constant index is read, e.g. e.args[0]');
        }
        path.unshift(String(index.value));
      } else {
        if (m.property.type !== 'Identifier') throw this.fail(m.property, 'a field name is a plain name');
        path.unshift(m.property.name);
      }
      at = m.object;
    }
    if (at.type === 'Identifier' && at.name === this.eventName) return { kind: 'Field', path, span: SPAN };
    if (at.type === 'Identifier' && at.name === this.paramsName && this.paramsName !== undefined) {
      if (path.length !== 1) throw this.fail(node, `${this.source(node)}: a parameter is one value, read as ${this.paramsName}.name`);
      return this.constant(this.param(path[0]!, node), node);
    }
    if (at.type === 'Super') throw this.fail(at, 'super is outside the lambda');
    return this.expression(at);
  }

  private binary(node: Extract<Expression, { type: 'BinaryExpression' }>): ExprNode {
    const operators: Record<string, BinaryOperator> = {
      '===': '==', '==': '==', '!==': '!=', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=',
      '+': '+', '-': '-', '*': '*', '/': '/', '%': '%',
    };
    const operator = operators[node.operator];
    if (operator === undefined) throw this.fail(node, `${node.operator} has no FayQL spelling; use === !== < <= > >= + - * / %`);
    if (node.left.type === 'PrivateIdentifier') throw this.fail(node.left, 'private names are outside the lambda');
    return { kind: 'Binary', operator, left: this.expression(node.left), right: this.expression(node.right), span: SPAN };
  }

  private call(node: Extract<Expression, { type: 'CallExpression' }>): ExprNode {
    const { callee } = node;
    const args = node.arguments;
    if (args.some((a) => a.type === 'SpreadElement')) throw this.fail(node, 'spread arguments are not read');
    const plainArgs = args as Expression[];
    if (callee.type === 'Identifier' && HELPERS.includes(callee.name)) {
      if (callee.name === 'now') {
        if (args.length > 0) throw this.fail(node, 'now() takes no arguments');
        return { kind: 'Call', callee: { kind: 'Identifier', name: 'now', span: SPAN }, args: [], span: SPAN };
      }
      if (callee.name === 'matches') {
        if (args.length !== 2) throw this.fail(node, 'matches(text, glob) takes two arguments');
        return { kind: 'Binary', operator: '=~', left: this.expression(plainArgs[0]!), right: this.stringConstant(plainArgs[1]!), span: SPAN };
      }
      return this.duration(callee.name, node, plainArgs);
    }
    if (callee.type === 'MemberExpression' && !callee.computed && callee.property.type === 'Identifier') {
      const method = callee.property.name;
      // [a, b].includes(e.x) and p.list.includes(e.x): x in (a, b).
      if (method === 'includes' && args.length === 1) {
        const list = this.listConstant(callee.object as Expression);
        if (list !== undefined) {
          return { kind: 'In', operand: this.expression(plainArgs[0]!), values: list.map((v) => this.constant(v, node)), negated: false, span: SPAN };
        }
      }
      if (STRING_METHODS.includes(method) && args.length === 1) {
        const pattern = this.stringConstant(plainArgs[0]!);
        if (pattern.kind !== 'String') throw this.fail(plainArgs[0]!, `${method} takes a constant string`);
        const literal = globLiteral(pattern.value);
        const glob = method === 'startsWith' ? `${literal}*` : method === 'endsWith' ? `*${literal}` : `*${literal}*`;
        return { kind: 'Binary', operator: '=~', left: this.expression(callee.object as Expression), right: { kind: 'String', value: glob, span: SPAN }, span: SPAN };
      }
    }
    const name = this.source(callee);
    throw this.fail(node, `${name}(…) is a call: a lambda may call only ${HELPERS.join(', ')}, text.startsWith/endsWith/includes and list.includes`, 'import the helpers from fay; compute anything else outside and pass it in the parameter object');
  }

  /** A list literal of constants, or an array from the parameter object; undefined if it is neither. */
  private listConstant(node: Expression): readonly (number | bigint | string | boolean)[] | undefined {
    if (node.type === 'ArrayExpression') {
      return node.elements.map((e) => {
        if (e === null || e.type === 'SpreadElement') throw this.fail(node, 'a list is written out: [1, 2, 3]');
        if (e.type === 'Literal' && (typeof e.value === 'number' || typeof e.value === 'string' || typeof e.value === 'boolean')) return e.value;
        if (e.type === 'MemberExpression') {
          const value = this.constantOf(e);
          if (value !== undefined && !Array.isArray(value)) return value as number | string | boolean;
        }
        throw this.fail(e, 'a list holds constants');
      });
    }
    if (node.type === 'MemberExpression') {
      const value = this.constantOf(node);
      if (Array.isArray(value)) return value as readonly (number | bigint | string | boolean)[];
    }
    return undefined;
  }

  /** p.name's value, or undefined if node is not a parameter. */
  private constantOf(node: Extract<Expression, { type: 'MemberExpression' }>): ParamValue | undefined {
    if (node.object.type !== 'Identifier' || node.object.name !== this.paramsName || node.computed || node.property.type !== 'Identifier') return undefined;
    return this.param(node.property.name, node);
  }

  private stringConstant(node: Expression): ExprNode {
    if (node.type === 'MemberExpression') {
      const value = this.constantOf(node);
      if (typeof value === 'string') return { kind: 'String', value, span: SPAN };
    }
    const value = this.expression(node);
    if (value.kind !== 'String') throw this.fail(node, 'expected a constant string here');
    return value;
  }

  /** minutes(5) → 5m. */
  private duration(helper: string, node: Node, args: Expression[]): ExprNode {
    if (args.length !== 1) throw this.fail(node, `${helper}(n) takes one number`);
    const arg = args[0]!;
    const value = arg.type === 'Literal' && typeof arg.value === 'number' ? arg.value : arg.type === 'MemberExpression' ? this.constantOf(arg) : undefined;
    if (typeof value !== 'number' || !(value >= 0)) throw this.fail(arg, `${helper}(n) takes a constant number ≥ 0`);
    const unit = DURATION_HELPERS[helper]!;
    return { kind: 'Duration', value: Math.round(value * DURATION_UNITS[unit]!), text: `${value}${unit}`, span: SPAN };
  }
}
