import type { SourceSpan } from '../errors.js';

export type TokenKind =
  | 'identifier'
  | 'number'
  | 'duration'
  | 'string'
  | 'probe-point'
  | 'operator'
  | 'end';

/** One lexical token; `text` is exactly what the source says. */
export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly span: SourceSpan;
  /** For numbers and durations: the value (durations in nanoseconds). For strings: the unescaped text. */
  readonly value?: number | string;
}

/** Operators, longest first so that the lexer can match greedily. */
export const OPERATORS = [
  '==', '!=', '<=', '>=', '=~', '!~', '&&', '||',
  '|', ',', '(', ')', '[', ']', '.', '=', '<', '>', '+', '-', '*', '/', '%', '!',
] as const;

export type Operator = (typeof OPERATORS)[number];

/** Nanoseconds in one unit of each duration suffix. */
export const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
  d: 86400e9,
};

/** Words with a meaning of their own in FayQL; they cannot name a field or a column. */
export const KEYWORDS = new Set([
  'where', 'let', 'select', 'by', 'every', 'window', 'slide', 'last', 'top', 'limit', 'scaled', 'record', 'on', 'categorize',
  'and', 'or', 'not', 'in', 'true', 'false', 'asc', 'desc',
]);
