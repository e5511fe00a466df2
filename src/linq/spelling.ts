import type { AggregateCallNode, BindingNode, DurationNode, ExprNode, IdentifierNode, NumberNode, QueryNode, StageNode } from '../query/ast.js';
import { printExpression } from '../query/printer.js';
import { DURATION_UNITS, KEYWORDS } from '../query/tokens.js';
import type { CallSite } from './call-site.js';

/** FayLINQ builds the same syntax tree the FayQL parser does; its nodes have no place in a text, so no span. */
export const SPAN = { start: 0, end: 0 } as const;

export function identifier(name: string): IdentifierNode {
  return { kind: 'Identifier', name, span: SPAN };
}

export function numberNode(value: number): NumberNode {
  return { kind: 'Number', value, text: String(value), span: SPAN };
}

/** A number as FayQL writes it: a negative one is `-` applied to its magnitude. */
export function signedNumber(value: number | bigint): ExprNode {
  const negative = value < 0;
  const magnitude = negative ? -value : value;
  const literal: NumberNode = { kind: 'Number', value: Number(magnitude), text: magnitude.toString(), span: SPAN };
  return negative ? { kind: 'Unary', operator: '-', operand: literal, span: SPAN } : literal;
}

/** A column name from a JavaScript property: it must be a FayQL name too. */
export function columnName(name: string, site: CallSite): IdentifierNode {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw site.error(`${JSON.stringify(name)} cannot name a column: use letters, digits and _`);
  if (KEYWORDS.has(name)) throw site.error(`${name} is a FayQL keyword and cannot name a column; pick another name`);
  return identifier(name);
}

/** `name = expr`, or just `expr` where FayQL would give it that name anyway (`comm`). */
export function binding(name: string, expr: ExprNode, site: CallSite): BindingNode {
  const named = name === printExpression(expr) ? undefined : columnName(name, site);
  return { kind: 'Binding', name: named, expr, span: SPAN };
}

/** `'4s'`, `'250ms'`, `'1.5m'`, or a number of milliseconds. */
export function durationNode(value: string | number, site: CallSite): DurationNode {
  if (typeof value === 'number') {
    if (!(value > 0) || !Number.isFinite(value)) throw site.error(`a duration is more than 0 ms, not ${value}`);
    return { kind: 'Duration', value: Math.round(value * 1e6), text: `${value}ms`, span: SPAN };
  }
  const match = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)$/.exec(value.trim());
  if (!match || !(Number(match[1]) > 0)) throw site.error(`${JSON.stringify(value)} is not a duration`, undefined, 'write e.g. "500ms", "4s", "5m" (or a number of milliseconds)');
  return { kind: 'Duration', value: Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!), text: `${match[1]}${match[2]}`, span: SPAN };
}

/** The column name FayQL gives an unnamed aggregate: `count`, `avg(duration)` (as the binder does). */
export function defaultAggregateName(call: AggregateCallNode): string {
  return call.args.length === 0 ? call.function.name : `${call.function.name}(${call.args.map(printExpression).join(', ')})`;
}

/** The syntax tree of a query built by FayLINQ. */
export function syntaxTree(sources: readonly string[], stages: readonly StageNode[]): QueryNode {
  return { kind: 'Query', sources: sources.map((text) => ({ kind: 'ProbePoint', text, span: SPAN })), stages, span: SPAN };
}
