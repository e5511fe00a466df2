import type { SourceSpan } from '../errors.js';

/** The syntax tree of one FayQL query, as written. Every node knows where it came from. */
export interface QueryNode {
  readonly kind: 'Query';
  readonly sources: readonly ProbePointNode[];
  readonly stages: readonly StageNode[];
  readonly span: SourceSpan;
}

/** `provider:part[:part…]`, e.g. `syscall:openat` or `uprobe:/usr/bin/node:uv_fs_*`. */
export interface ProbePointNode {
  readonly kind: 'ProbePoint';
  readonly text: string;
  readonly span: SourceSpan;
}

export type StageNode =
  | WhereNode
  | LetNode
  | SelectNode
  | SampleNode
  | AggregateNode
  | TopNode
  | LimitNode
  | EveryNode
  | WindowNode
  | LastNode
  | RecordNode
  | OnNode
  | CategorizeNode;

/** `categorize host by probe [k=3]`: one row per entity (a key) with the category of its mix of features (other keys); docs/mining.md. */
export interface CategorizeNode {
  readonly kind: 'Categorize';
  readonly entity: IdentifierNode;
  readonly features: readonly IdentifierNode[];
  readonly k: NumberNode | undefined;
  readonly span: SourceSpan;
}

/** `on host =~ "web-*"`: which hosts run the query; a condition on `host` alone. */
export interface OnNode {
  readonly kind: 'On';
  readonly predicate: ExprNode;
  readonly span: SourceSpan;
}

/** `record last 10000 [dump when <predicate>]`: the flight recorder. */
export interface RecordNode {
  readonly kind: 'Record';
  readonly size: NumberNode;
  readonly trigger: ExprNode | undefined;
  readonly span: SourceSpan;
}

/** `sample 1%` or `sample 1 in 100`: keep each event with that probability, decided where it fires. */
export interface SampleNode {
  readonly kind: 'Sample';
  /** As written: `1%` or `1 in 100`. */
  readonly text: string;
  readonly rate: number;
  readonly span: SourceSpan;
}

export interface WhereNode {
  readonly kind: 'Where';
  readonly predicate: ExprNode;
  readonly span: SourceSpan;
}

/** `name = expr` in let, select and by; the name is optional in select and by. */
export interface BindingNode {
  readonly kind: 'Binding';
  readonly name: IdentifierNode | undefined;
  readonly expr: ExprNode;
  readonly span: SourceSpan;
}

export interface LetNode {
  readonly kind: 'Let';
  readonly bindings: readonly BindingNode[];
  readonly span: SourceSpan;
}

export interface SelectNode {
  readonly kind: 'Select';
  readonly bindings: readonly BindingNode[];
  readonly span: SourceSpan;
}

/** `[name =] agg(args) [scaled]`, e.g. `lat = avg(duration)`, `count() scaled`. */
export interface AggregateCallNode {
  readonly kind: 'AggregateCall';
  readonly name: IdentifierNode | undefined;
  readonly function: IdentifierNode;
  readonly args: readonly ExprNode[];
  /** Scale the result up by the sampling rate (count and sum). */
  readonly scaled: boolean;
  readonly span: SourceSpan;
}

/** `count(), avg(x) by k1, k2 [every 1s]`. */
export interface AggregateNode {
  readonly kind: 'Aggregate';
  readonly aggregates: readonly AggregateCallNode[];
  readonly keys: readonly BindingNode[];
  readonly every: DurationNode | undefined;
  readonly span: SourceSpan;
}

export interface TopNode {
  readonly kind: 'Top';
  readonly count: NumberNode;
  readonly by: IdentifierNode | undefined;
  readonly order: 'asc' | 'desc' | undefined;
  readonly span: SourceSpan;
}

export interface LimitNode {
  readonly kind: 'Limit';
  readonly count: NumberNode;
  readonly span: SourceSpan;
}

export interface EveryNode {
  readonly kind: 'Every';
  readonly period: DurationNode;
  readonly span: SourceSpan;
}

/** `window 10s` (tumbling) or `window 1m slide 10s` (sliding). */
export interface WindowNode {
  readonly kind: 'Window';
  readonly size: DurationNode;
  readonly slide: DurationNode | undefined;
  readonly span: SourceSpan;
}

/** `last 5m`: each result covers the most recent 5 minutes. */
export interface LastNode {
  readonly kind: 'Last';
  readonly length: DurationNode;
  readonly span: SourceSpan;
}

export type ExprNode =
  | NumberNode
  | DurationNode
  | StringNode
  | BooleanNode
  | FieldNode
  | UnaryNode
  | BinaryNode
  | InNode
  | CallNode;

export interface IdentifierNode {
  readonly kind: 'Identifier';
  readonly name: string;
  readonly span: SourceSpan;
}

export interface NumberNode {
  readonly kind: 'Number';
  readonly value: number;
  readonly text: string;
  readonly span: SourceSpan;
}

/** A duration literal; `value` is in nanoseconds, `text` as written (`5m`). */
export interface DurationNode {
  readonly kind: 'Duration';
  readonly value: number;
  readonly text: string;
  readonly span: SourceSpan;
}

export interface StringNode {
  readonly kind: 'String';
  readonly value: string;
  readonly span: SourceSpan;
}

export interface BooleanNode {
  readonly kind: 'Boolean';
  readonly value: boolean;
  readonly span: SourceSpan;
}

/** A field or column: `comm`, `args.filename`, `args[0]`. Numeric segments come from `[n]`. */
export interface FieldNode {
  readonly kind: 'Field';
  readonly path: readonly string[];
  readonly span: SourceSpan;
}

export type UnaryOperator = '-' | '!';

export interface UnaryNode {
  readonly kind: 'Unary';
  readonly operator: UnaryOperator;
  readonly operand: ExprNode;
  readonly span: SourceSpan;
}

export type BinaryOperator =
  | '||' | '&&'
  | '==' | '!=' | '<' | '<=' | '>' | '>=' | '=~' | '!~'
  | '+' | '-' | '*' | '/' | '%';

export interface BinaryNode {
  readonly kind: 'Binary';
  readonly operator: BinaryOperator;
  readonly left: ExprNode;
  readonly right: ExprNode;
  readonly span: SourceSpan;
}

/** `x in (a, b, c)`, optionally negated: `x not in (…)`. */
export interface InNode {
  readonly kind: 'In';
  readonly operand: ExprNode;
  readonly values: readonly ExprNode[];
  readonly negated: boolean;
  readonly span: SourceSpan;
}

export interface CallNode {
  readonly kind: 'Call';
  readonly callee: IdentifierNode;
  readonly args: readonly ExprNode[];
  readonly span: SourceSpan;
}
