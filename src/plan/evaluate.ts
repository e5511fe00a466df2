import { globToRegExp, type Expr, type Value } from './expr.js';
import { printExpr } from './print-expr.js';

/** A record as seen outside the probe: event fields or row columns by name. */
export type Row = Readonly<Record<string, Value | undefined>>;

/** A compiled expression: a closure over a row. */
export type Evaluator = (row: Row) => Value;

/**
 * Compiles an expression to a closure over a row, with the kernel's integer
 * semantics, so that a predicate gives the same answer in the machine stage
 * as it would have in the probe. Fields and columns are read by name.
 */
export function compileExpr(e: Expr): Evaluator {
  switch (e.kind) {
    case 'Const': {
      const value = e.value;
      return () => value;
    }
    case 'Field':
    case 'Column': {
      const name = e.name;
      const fallback: Value = e.type === 'str' || e.type === 'stack' ? '' : e.type === 'bool' ? false : 0;
      return (row) => row[name] ?? fallback;
    }
    case 'Negate': {
      const operand = compileExpr(e.operand);
      return (row) => -(operand(row) as number);
    }
    case 'Not': {
      const operand = compileExpr(e.operand);
      return (row) => !operand(row);
    }
    case 'Match': {
      const operand = compileExpr(e.operand);
      const pattern = globToRegExp(e.pattern);
      // A stack matches where one of its frames (lines) does.
      if (e.operand.type === 'stack') return (row) => String(operand(row)).split('\n').some((frame) => pattern.test(frame));
      return (row) => pattern.test(operand(row) as string);
    }
    case 'Call': {
      // Provider functions (str()) are evaluated in the probe and shipped under their printed name.
      const name = printExpr(e);
      return (row) => row[name] ?? '';
    }
    case 'Binary': {
      const left = compileExpr(e.left);
      const right = compileExpr(e.right);
      switch (e.operator) {
        case 'and':
          return (row) => Boolean(left(row)) && Boolean(right(row));
        case 'or':
          return (row) => Boolean(left(row)) || Boolean(right(row));
        case '==':
          return (row) => left(row) === right(row);
        case '!=':
          return (row) => left(row) !== right(row);
        case '<':
          return (row) => (left(row) as number) < (right(row) as number);
        case '<=':
          return (row) => (left(row) as number) <= (right(row) as number);
        case '>':
          return (row) => (left(row) as number) > (right(row) as number);
        case '>=':
          return (row) => (left(row) as number) >= (right(row) as number);
        case '+':
        case '-':
        case '*':
        case '/':
        case '%': {
          const op = e.operator;
          return (row) => arithmetic(op, left(row) as number, right(row) as number);
        }
      }
    }
  }
}

/** Integer arithmetic as the kernel does it: truncating division, x / 0 = 0, x % 0 = x. */
export function arithmetic(op: '+' | '-' | '*' | '/' | '%', a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b === 0 ? 0 : Math.trunc(a / b);
    case '%':
      return b === 0 ? a : a % b;
  }
}
