import { UsageError, type SourceSpan } from '../errors.js';
import { LANGUAGE_LIMITS } from './limits.js';

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

/** The operands of an expression node. */
export function exprChildren(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case 'Negate':
    case 'Not':
    case 'Match':
      return [e.operand];
    case 'Binary':
      return [e.left, e.right];
    case 'Call':
      return e.args;
    case 'Const':
    case 'Field':
    case 'Column':
      return [];
  }
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

/**
 * A RegExp equivalent to a glob pattern, anchored at both ends, whose matching takes time in
 * proportion to the text times the pattern, whatever the pattern (a glob is user input, and a
 * regular expression that backtracks can stop an agent or a traced process for minutes).
 * `a*b*c` becomes `^a(?=(.*?b))\1.*c$`: each part between two stars is found at its first place
 * (where it matches first is always as good as any later place), by a lookahead that is never
 * re-entered, and consumed through a backreference; only the last part backtracks, once.
 */
export function globToRegExp(pattern: string): RegExp {
  if (pattern.length > LANGUAGE_LIMITS.maxGlobChars) {
    throw new UsageError(`a glob is at most ${LANGUAGE_LIMITS.maxGlobChars} characters; this one has ${pattern.length}`);
  }
  const parts: string[] = [''];
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (parts[parts.length - 1] !== '' || parts.length === 1) parts.push('');
      continue;
    }
    let piece: string;
    if (ch === '?') piece = '.';
    else if (ch === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        piece = '\\[';
      } else {
        let body = pattern.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        piece = `[${body.replaceAll('\\', '\\\\')}]`;
        i = close;
      }
    } else piece = ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    parts[parts.length - 1] += piece;
  }
  if (parts.length === 1) return new RegExp(`^${parts[0]}$`, 's');
  const [first, ...rest] = parts;
  const last = rest.pop()!;
  const middle = rest.filter((p) => p !== '').map((p, i) => `(?=(.*?${p}))\\${i + 1}`);
  return new RegExp(`^${first}${middle.join('')}.*${last}$`, 's');
}
