import type { BinaryOperator, Expr } from './expr.js';

// Binding strength, loosest first; mirrors the FayQL grammar so that printed plans read like queries.
const PRECEDENCE: Record<BinaryOperator, number> = {
  or: 1,
  and: 2,
  '==': 4,
  '!=': 4,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '+': 5,
  '-': 5,
  '*': 6,
  '/': 6,
  '%': 6,
};

/** Prints a plan expression in FayQL syntax (used by explain, column names and the FayQL printer of plans). */
export function printExpr(e: Expr): string {
  return print(e, 0);
}

function precedence(e: Expr): number {
  switch (e.kind) {
    case 'Binary':
      return PRECEDENCE[e.operator];
    case 'Match':
      return 4;
    case 'Not':
      return 3;
    case 'Negate':
      return 7;
    default:
      return 8;
  }
}

function print(e: Expr, context: number): string {
  const text = bare(e);
  return precedence(e) < context ? `(${text})` : text;
}

function bare(e: Expr): string {
  switch (e.kind) {
    case 'Const':
      return typeof e.value === 'string' ? printString(e.value) : String(e.value);
    case 'Field':
    case 'Column':
      return e.name;
    case 'Negate':
      return `-${print(e.operand, 7)}`;
    case 'Not':
      return `not ${print(e.operand, 3)}`;
    case 'Match':
      return `${print(e.operand, 5)} =~ ${printString(e.pattern)}`;
    case 'Binary': {
      const p = PRECEDENCE[e.operator];
      const comparison = p === 4;
      return `${print(e.left, comparison ? p + 1 : p)} ${e.operator} ${print(e.right, p + 1)}`;
    }
    case 'Call':
      return `${e.function}(${e.args.map(printExpr).join(', ')})`;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\0': '\\0', '\\': '\\\\', '"': '\\"' };

/** A double-quoted FayQL string literal, using only escapes the lexer reads back. */
export function printString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const escape = ESCAPES[ch];
    if (escape !== undefined) out += escape;
    else if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
