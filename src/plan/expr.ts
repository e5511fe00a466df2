import type { SourceSpan } from '../errors.js';

/** The type of a value flowing through a plan. `stack` is a kernel/user stack, usable only as a group key. */
export type ValueType = 'int' | 'str' | 'bool' | 'stack';

/** A value of one of those types, as seen outside the probe. Stacks are their printed text. */
export type Value = number | string | boolean;

export type ArithmeticOperator = '+' | '-' | '*' | '/' | '%';
export type ComparisonOperator = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type LogicalOperator = 'and' | 'or';
export type BinaryOperator = ArithmeticOperator | ComparisonOperator | LogicalOperator;

/** A typed, immutable expression over one event's fields (before aggregation) or one row's columns (after). */
export type Expr = ConstExpr | FieldExpr | ColumnExpr | NegateExpr | NotExpr | BinaryExpr | MatchExpr | CallExpr;

interface ExprBase {
  readonly type: ValueType;
  /** Where in the query text this came from, for error messages. */
  readonly span?: SourceSpan | undefined;
}

export interface ConstExpr extends ExprBase {
  readonly kind: 'Const';
  readonly value: Value;
}

/** An event field by its canonical name: `comm`, `args.filename`, `args[0]`. */
export interface FieldExpr extends ExprBase {
  readonly kind: 'Field';
  readonly name: string;
}

/** A column of an aggregated row (a key or an aggregate), after the aggregation. */
export interface ColumnExpr extends ExprBase {
  readonly kind: 'Column';
  readonly name: string;
}

export interface NegateExpr extends ExprBase {
  readonly kind: 'Negate';
  readonly operand: Expr;
}

export interface NotExpr extends ExprBase {
  readonly kind: 'Not';
  readonly operand: Expr;
}

export interface BinaryExpr extends ExprBase {
  readonly kind: 'Binary';
  readonly operator: BinaryOperator;
  readonly left: Expr;
  readonly right: Expr;
}

/** A string matched against a glob (`*` any run, `?` one character, `[abc]` a class). */
export interface MatchExpr extends ExprBase {
  readonly kind: 'Match';
  readonly operand: Expr;
  readonly pattern: string;
}

/** A call to a built-in function such as `str(addr)`. */
export interface CallExpr extends ExprBase {
  readonly kind: 'Call';
  readonly function: string;
  readonly args: readonly Expr[];
}

/** Factory for expression nodes: every node is frozen. */
export const expr = {
  const(value: Value, type: ValueType, span?: SourceSpan): ConstExpr {
    return Object.freeze({ kind: 'Const', value, type, span });
  },
  field(name: string, type: ValueType, span?: SourceSpan): FieldExpr {
    return Object.freeze({ kind: 'Field', name, type, span });
  },
  column(name: string, type: ValueType, span?: SourceSpan): ColumnExpr {
    return Object.freeze({ kind: 'Column', name, type, span });
  },
  negate(operand: Expr, span?: SourceSpan): NegateExpr {
    return Object.freeze({ kind: 'Negate', operand, type: 'int', span });
  },
  not(operand: Expr, span?: SourceSpan): NotExpr {
    return Object.freeze({ kind: 'Not', operand, type: 'bool', span });
  },
  binary(operator: BinaryOperator, left: Expr, right: Expr, span?: SourceSpan): BinaryExpr {
    const type: ValueType = isArithmetic(operator) ? 'int' : 'bool';
    return Object.freeze({ kind: 'Binary', operator, left, right, type, span });
  },
  match(operand: Expr, pattern: string, span?: SourceSpan): MatchExpr {
    return Object.freeze({ kind: 'Match', operand, pattern, type: 'bool', span });
  },
  call(fn: string, args: readonly Expr[], type: ValueType, span?: SourceSpan): CallExpr {
    return Object.freeze({ kind: 'Call', function: fn, args: Object.freeze([...args]), type, span });
  },
};

export function isArithmetic(op: BinaryOperator): op is ArithmeticOperator {
  return op === '+' || op === '-' || op === '*' || op === '/' || op === '%';
}

/** Splits a predicate into its top-level `and` parts. */
export function conjuncts(predicate: Expr | undefined): Expr[] {
  if (predicate === undefined) return [];
  if (predicate.kind === 'Binary' && predicate.operator === 'and') {
    return [...conjuncts(predicate.left), ...conjuncts(predicate.right)];
  }
  return [predicate];
}

/** Joins predicates with `and`; undefined for none. */
export function conjoin(parts: readonly Expr[]): Expr | undefined {
  return parts.reduce<Expr | undefined>((acc, part) => (acc ? expr.binary('and', acc, part) : part), undefined);
}

/** Every event field an expression reads, by name. */
export function fieldsOf(e: Expr | undefined, into: Set<string> = new Set()): Set<string> {
  if (e === undefined) return into;
  switch (e.kind) {
    case 'Field':
      into.add(e.name);
      break;
    case 'Negate':
    case 'Not':
    case 'Match':
      fieldsOf(e.operand, into);
      break;
    case 'Binary':
      fieldsOf(e.left, into);
      fieldsOf(e.right, into);
      break;
    case 'Call':
      for (const arg of e.args) fieldsOf(arg, into);
      break;
    case 'Const':
    case 'Column':
      break;
  }
  return into;
}

/** Whether a glob pattern uses any wildcard at all. */
export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** A RegExp equivalent to a glob pattern, anchored at both ends. */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else if (ch === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        source += '\\[';
      } else {
        let body = pattern.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        source += `[${body.replaceAll('\\', '\\\\')}]`;
        i = close;
      }
    } else source += ch.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}
