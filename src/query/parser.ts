import { QueryError, type SourceSpan } from '../errors.js';
import type {
  AggregateCallNode,
  AggregateNode,
  BinaryOperator,
  BindingNode,
  DurationNode,
  ExprNode,
  IdentifierNode,
  NumberNode,
  ProbePointNode,
  QueryNode,
  StageNode,
} from './ast.js';
import { LANGUAGE_LIMITS } from '../plan/limits.js';
import { Lexer } from './lexer.js';
import { KEYWORDS, type Token } from './tokens.js';

/** Parses FayQL text into a syntax tree, or throws a QueryError pointing at the mistake. */
export function parseQuery(source: string): QueryNode {
  return new Parser(source).query();
}

/** Parses a single FayQL expression (used by tests and by tools that take a predicate). */
export function parseExpression(source: string): ExprNode {
  const parser = new Parser(source);
  parser.start();
  const expr = parser.expression();
  parser.expectEnd('an operator');
  return expr;
}

const STAGE_WORDS = ['where', 'let', 'select', 'top', 'limit', 'every', 'window', 'last', 'sample', 'record', 'on'];
const COMPARISONS: readonly BinaryOperator[] = ['==', '!=', '<', '<=', '>', '>=', '=~', '!~'];

class Parser {
  private readonly lexer: Lexer;
  private token!: Token;
  /** How deep the parser is in nested expressions now (parentheses, not, minus, calls, lists). */
  private nesting = 0;
  /** The depth of each expression node built: a chain `a and b and c` is as deep as it is long. */
  private readonly depths = new WeakMap<ExprNode, number>();

  constructor(private readonly source: string) {
    if (source.length > LANGUAGE_LIMITS.maxQueryChars) {
      throw new QueryError(`the query is ${source.length} characters long; the most is ${LANGUAGE_LIMITS.maxQueryChars}`, source, {
        start: LANGUAGE_LIMITS.maxQueryChars,
        end: source.length,
      });
    }
    this.lexer = new Lexer(source);
  }

  start(): void {
    this.token = this.lexer.next();
  }

  query(): QueryNode {
    const sources: ProbePointNode[] = [];
    while (true) {
      const point = this.lexer.probePoint();
      if (point.text.length > LANGUAGE_LIMITS.maxProbePointChars) {
        this.fail(`a probe point is at most ${LANGUAGE_LIMITS.maxProbePointChars} characters; this one has ${point.text.length}`, point.span);
      }
      if (sources.length === LANGUAGE_LIMITS.maxProbePoints) this.fail(`a query listens to at most ${LANGUAGE_LIMITS.maxProbePoints} probe points; use globs (syscall:read*)`, point.span);
      sources.push({ kind: 'ProbePoint', text: point.text, span: point.span });
      this.token = this.lexer.next();
      if (!this.check(',')) break;
      // The next probe point is lexed in its own mode, right after the comma.
      this.lexer.reset(this.token.span.end);
    }
    const stages: StageNode[] = [];
    while (this.accept('|')) {
      if (stages.length === LANGUAGE_LIMITS.maxStages) this.fail(`a query has at most ${LANGUAGE_LIMITS.maxStages} stages`);
      stages.push(this.stage());
    }
    this.expectEnd(stages.length === 0 ? '"|" or "," after the probe point' : '"|" before the next stage');
    return { kind: 'Query', sources, stages, span: { start: sources[0]!.span.start, end: this.lastEnd(stages, sources) } };
  }

  expectEnd(expected: string): void {
    if (this.token.kind !== 'end') this.fail(`expected ${expected}, found ${this.describe(this.token)}`);
  }

  private lastEnd(stages: StageNode[], sources: ProbePointNode[]): number {
    return (stages[stages.length - 1] ?? sources[sources.length - 1]!).span.end;
  }

  private stage(): StageNode {
    const token = this.token;
    const start = token.span.start;
    if (token.kind === 'identifier') {
      switch (token.text) {
        case 'where': {
          this.advance();
          const predicate = this.expression();
          if (this.check('=')) this.fail('expected a comparison: use == to test equality');
          return { kind: 'Where', predicate, span: this.spanFrom(start, predicate.span) };
        }
        case 'let': {
          this.advance();
          const bindings = this.bindings(true);
          return { kind: 'Let', bindings, span: this.spanFrom(start, bindings[bindings.length - 1]!.span) };
        }
        case 'select': {
          this.advance();
          const bindings = this.bindings(false);
          return { kind: 'Select', bindings, span: this.spanFrom(start, bindings[bindings.length - 1]!.span) };
        }
        case 'top': {
          this.advance();
          const count = this.count('top');
          let end = count.span;
          let by: IdentifierNode | undefined;
          let order: 'asc' | 'desc' | undefined;
          if (this.acceptWord('by')) {
            by = this.identifier('a column name after "by"');
            end = by.span;
          }
          if (this.token.kind === 'identifier' && (this.token.text === 'asc' || this.token.text === 'desc')) {
            order = this.token.text;
            end = this.token.span;
            this.advance();
          }
          return { kind: 'Top', count, by, order, span: this.spanFrom(start, end) };
        }
        case 'limit': {
          this.advance();
          const count = this.count('limit');
          return { kind: 'Limit', count, span: this.spanFrom(start, count.span) };
        }
        case 'every': {
          this.advance();
          const period = this.duration('every');
          return { kind: 'Every', period, span: this.spanFrom(start, period.span) };
        }
        case 'window': {
          this.advance();
          const size = this.duration('window');
          const slide = this.acceptWord('slide') ? this.duration('slide') : undefined;
          return { kind: 'Window', size, slide, span: this.spanFrom(start, (slide ?? size).span) };
        }
        case 'sample': {
          // `sample 1%` / `sample 1 in 100` is a stage; `sample(10)` is the aggregate.
          if (this.peekIs('(')) return this.aggregation();
          this.advance();
          return this.sampling(start);
        }
        case 'record': {
          this.advance();
          if (!this.acceptWord('last')) this.fail(`expected last after record, e.g. record last 10000`);
          const size = this.count('record last');
          let trigger: ExprNode | undefined;
          if (this.acceptWord('dump')) {
            if (!this.acceptWord('when')) this.fail('expected when after dump, e.g. dump when ret < 0');
            trigger = this.expression();
          }
          return { kind: 'Record', size, trigger, span: this.spanFrom(start, (trigger ?? size).span) };
        }
        case 'on': {
          this.advance();
          const predicate = this.expression();
          return { kind: 'On', predicate, span: this.spanFrom(start, predicate.span) };
        }
        case 'categorize': {
          this.advance();
          const entity = this.identifier('the key to categorise, e.g. categorize host by probe');
          if (!this.acceptWord('by')) this.fail(`expected by and the keys whose counts describe each ${entity.name}, e.g. categorize ${entity.name} by probe`);
          const features = [this.identifier('a key after by')];
          while (this.accept(',')) features.push(this.identifier('a key after ","'));
          let k: NumberNode | undefined;
          if (this.token.kind === 'identifier' && this.token.text === 'k') {
            this.advance();
            if (!this.accept('=')) this.fail('expected = after k, e.g. k=3');
            k = this.count('k=');
            if (k.value < 1 || k.value > 50) this.fail('k is the number of categories: 1 to 50', k.span);
          }
          return { kind: 'Categorize', entity, features, k, span: this.spanFrom(start, (k ?? features[features.length - 1]!).span) };
        }
        case 'last': {
          this.advance();
          const length = this.duration('last');
          return { kind: 'Last', length, span: this.spanFrom(start, length.span) };
        }
        default:
          if (!KEYWORDS.has(token.text)) return this.aggregation();
      }
    }
    this.fail(
      `expected a stage (where, let, select, sample, an aggregate such as count(), top, limit, every, window, last, record, on or categorize), found ${this.describe(token)}`,
    );
  }

  private sampling(start: number): StageNode {
    const amount = this.token;
    if (amount.kind !== 'number') this.fail(`expected a rate such as 1% or 1 in 100 after sample, found ${this.describe(amount)}`);
    this.advance();
    const value = amount.value as number;
    if (this.check('%')) {
      const end = this.token.span.end;
      this.advance();
      if (!(value > 0 && value <= 100)) this.fail('a sampling rate is more than 0% and at most 100%', amount.span);
      return { kind: 'Sample', text: `${amount.text}%`, rate: value / 100, span: { start, end } };
    }
    if (this.acceptWord('in')) {
      const total = this.token;
      if (total.kind !== 'number') this.fail(`expected a number after "in", e.g. sample 1 in 100`);
      this.advance();
      const of = total.value as number;
      if (!(Number.isInteger(value) && Number.isInteger(of) && value >= 1 && value <= of)) {
        this.fail('sample N in M takes whole numbers with 1 ≤ N ≤ M', { start: amount.span.start, end: total.span.end });
      }
      return { kind: 'Sample', text: `${amount.text} in ${total.text}`, rate: value / of, span: { start, end: total.span.end } };
    }
    this.fail('expected % or in after the sampling rate, e.g. sample 1% or sample 1 in 100');
  }

  private aggregation(): AggregateNode {
    const start = this.token.span.start;
    const aggregates: AggregateCallNode[] = [];
    do aggregates.push(this.aggregateCall());
    while (this.accept(','));
    let end: SourceSpan = aggregates[aggregates.length - 1]!.span;
    let keys: BindingNode[] = [];
    if (this.acceptWord('by')) {
      keys = this.bindings(false);
      end = keys[keys.length - 1]!.span;
    }
    let every: DurationNode | undefined;
    if (this.acceptWord('every')) {
      every = this.duration('every');
      end = every.span;
    }
    return { kind: 'Aggregate', aggregates, keys, every, span: this.spanFrom(start, end) };
  }

  private aggregateCall(): AggregateCallNode {
    const start = this.token.span.start;
    let name: IdentifierNode | undefined;
    let fn = this.identifier('an aggregate such as count() or sum(x)');
    if (this.accept('=')) {
      name = fn;
      fn = this.identifier('an aggregate such as count() or sum(x)');
    }
    if (!this.check('(')) {
      if (STAGE_WORDS.includes(fn.name)) this.fail(`expected "|" before ${fn.name}`, fn.span);
      this.fail(`expected "(" after ${fn.name}: aggregates are called like count() or sum(duration)`);
    }
    const { args, end } = this.argumentList();
    const scaledAt = this.token.span.end;
    const scaled = this.acceptWord('scaled');
    return { kind: 'AggregateCall', name, function: fn, args, scaled, span: { start, end: scaled ? scaledAt : end } };
  }

  private bindings(nameRequired: boolean): BindingNode[] {
    const bindings: BindingNode[] = [];
    do bindings.push(this.binding(nameRequired));
    while (this.accept(','));
    return bindings;
  }

  private binding(nameRequired: boolean): BindingNode {
    const start = this.token.span.start;
    const lexerAt = this.lexer.position;
    const saved = this.token;
    if (this.token.kind === 'identifier' && !KEYWORDS.has(this.token.text)) {
      const name = this.identifier('a name');
      if (this.accept('=')) {
        const expr = this.expression();
        return { kind: 'Binding', name, expr, span: this.spanFrom(start, expr.span) };
      }
      // Not `name = …`: read it again as an expression.
      this.lexer.reset(lexerAt);
      this.token = saved;
    }
    if (nameRequired) this.fail(`expected name = expression, found ${this.describe(this.token)}`);
    const expr = this.expression();
    return { kind: 'Binding', name: undefined, expr, span: expr.span };
  }

  expression(): ExprNode {
    return this.nested(() => this.or());
  }

  /** Parses one level deeper: past the nesting limit it refuses, long before the stack could overflow. */
  private nested<T>(parse: () => T): T {
    if (++this.nesting > LANGUAGE_LIMITS.maxNesting) this.tooDeep(this.token.span);
    try {
      return parse();
    } finally {
      this.nesting--;
    }
  }

  /** A node built from its children: as deep as the deepest of them, plus one, within the limit. */
  private built<T extends ExprNode>(node: T, ...children: readonly ExprNode[]): T {
    const depth = 1 + Math.max(0, ...children.map((c) => this.depths.get(c) ?? 1));
    if (depth > LANGUAGE_LIMITS.maxNesting) this.tooDeep(node.span);
    this.depths.set(node, depth);
    return node;
  }

  private tooDeep(span: SourceSpan): never {
    throw new QueryError(`the expression nests more than ${LANGUAGE_LIMITS.maxNesting} levels deep`, this.source, span.end > span.start ? span : { start: span.start, end: span.start + 1 }, {
      hint: 'name parts of it with let, and write many alternatives as x in (a, b, …)',
    });
  }

  private or(): ExprNode {
    let left = this.and();
    while (this.accept('||') || this.acceptWord('or')) {
      const right = this.and();
      left = this.built({ kind: 'Binary', operator: '||', left, right, span: this.join(left.span, right.span) }, left, right);
    }
    return left;
  }

  private and(): ExprNode {
    let left = this.not();
    while (this.accept('&&') || this.acceptWord('and')) {
      const right = this.not();
      left = this.built({ kind: 'Binary', operator: '&&', left, right, span: this.join(left.span, right.span) }, left, right);
    }
    return left;
  }

  private not(): ExprNode {
    const start = this.token.span.start;
    if (this.accept('!') || this.acceptWord('not')) {
      const operand = this.nested(() => this.not());
      return this.built({ kind: 'Unary', operator: '!', operand, span: this.spanFrom(start, operand.span) }, operand);
    }
    return this.comparison();
  }

  private comparison(): ExprNode {
    const left = this.additive();
    const op = this.token;
    if (op.kind === 'operator' && (COMPARISONS as readonly string[]).includes(op.text)) {
      this.advance();
      const right = this.additive();
      const result: ExprNode = this.built(
        { kind: 'Binary', operator: op.text as BinaryOperator, left, right, span: this.join(left.span, right.span) },
        left,
        right,
      );
      const next = this.token;
      if (next.kind === 'operator' && (COMPARISONS as readonly string[]).includes(next.text)) {
        this.fail('comparisons do not chain; join them with "and"', next.span);
      }
      return result;
    }
    const negated = this.token.kind === 'identifier' && this.token.text === 'not' && this.peekWord('in');
    if (negated) this.advance();
    if (this.acceptWord('in')) {
      this.expect('(', '"(" after in');
      const values: ExprNode[] = [];
      if (!this.check(')')) {
        do {
          if (values.length === LANGUAGE_LIMITS.maxListValues) this.fail(`an in list holds at most ${LANGUAGE_LIMITS.maxListValues} values`);
          values.push(this.additive());
        } while (this.accept(','));
      }
      const end = this.expect(')', '")" to close the list');
      // The binder checks the list as a balanced tree of comparisons: as deep as its deepest value, plus a few.
      const list: ExprNode = { kind: 'In', operand: left, values, negated, span: { start: left.span.start, end: end.span.end } };
      return this.built(list, left, ...values);
    }
    return left;
  }

  private additive(): ExprNode {
    let left = this.multiplicative();
    while (this.check('+') || this.check('-')) {
      const operator = this.token.text as '+' | '-';
      this.advance();
      const right = this.multiplicative();
      left = this.built({ kind: 'Binary', operator, left, right, span: this.join(left.span, right.span) }, left, right);
    }
    return left;
  }

  private multiplicative(): ExprNode {
    let left = this.unary();
    while (this.check('*') || this.check('/') || this.check('%')) {
      const operator = this.token.text as '*' | '/' | '%';
      this.advance();
      const right = this.unary();
      left = this.built({ kind: 'Binary', operator, left, right, span: this.join(left.span, right.span) }, left, right);
    }
    return left;
  }

  private unary(): ExprNode {
    const start = this.token.span.start;
    if (this.accept('-')) {
      const operand = this.nested(() => this.unary());
      return this.built({ kind: 'Unary', operator: '-', operand, span: this.spanFrom(start, operand.span) }, operand);
    }
    return this.primary();
  }

  private primary(): ExprNode {
    const token = this.token;
    switch (token.kind) {
      case 'number':
        this.advance();
        return { kind: 'Number', value: token.value as number, text: token.text, span: token.span };
      case 'duration':
        this.advance();
        return { kind: 'Duration', value: token.value as number, text: token.text, span: token.span };
      case 'string':
        this.advance();
        return { kind: 'String', value: token.value as string, span: token.span };
      case 'operator':
        if (token.text === '(') {
          this.advance();
          const inner = this.expression();
          this.expect(')', '")"');
          return inner;
        }
        break;
      case 'identifier': {
        if (token.text === 'true' || token.text === 'false') {
          this.advance();
          return { kind: 'Boolean', value: token.text === 'true', span: token.span };
        }
        if (KEYWORDS.has(token.text)) break;
        this.advance();
        const callee: IdentifierNode = { kind: 'Identifier', name: token.text, span: token.span };
        if (this.check('(')) {
          const { args, end } = this.argumentList();
          return this.built({ kind: 'Call', callee, args, span: { start: token.span.start, end } }, ...args);
        }
        return this.fieldPath(callee);
      }
      default:
        break;
    }
    this.fail(`expected an expression, found ${this.describe(token)}`);
  }

  private fieldPath(head: IdentifierNode): ExprNode {
    const path = [head.name];
    let end = head.span.end;
    while (true) {
      if (this.accept('.')) {
        const segment = this.identifier('a field name after "."');
        path.push(segment.name);
        end = segment.span.end;
      } else if (this.check('[')) {
        this.advance();
        const index = this.token;
        if (index.kind !== 'number' && index.kind !== 'string') this.fail('expected an index such as [0]');
        this.advance();
        path.push(String(index.value));
        end = this.expect(']', '"]"').span.end;
      } else {
        return { kind: 'Field', path, span: { start: head.span.start, end } };
      }
    }
  }

  private argumentList(): { args: ExprNode[]; end: number } {
    this.expect('(', '"("');
    const args: ExprNode[] = [];
    if (!this.check(')')) {
      do args.push(this.expression());
      while (this.accept(','));
    }
    const close = this.expect(')', '")" or "," in the argument list');
    return { args, end: close.span.end };
  }

  private count(stage: string): NumberNode {
    const token = this.token;
    if (token.kind !== 'number' || !Number.isInteger(token.value) || (token.value as number) < 0) {
      this.fail(`expected a whole number after ${stage}, found ${this.describe(token)}`);
    }
    this.advance();
    return { kind: 'Number', value: token.value as number, text: token.text, span: token.span };
  }

  private duration(stage: string): DurationNode {
    const token = this.token;
    if (token.kind !== 'duration') this.fail(`expected a duration such as 1s after ${stage}, found ${this.describe(token)}`);
    if ((token.value as number) <= 0) this.fail('the period must be longer than zero', token.span);
    this.advance();
    return { kind: 'Duration', value: token.value as number, text: token.text, span: token.span };
  }

  private identifier(expected: string): IdentifierNode {
    const token = this.token;
    if (token.kind !== 'identifier') this.fail(`expected ${expected}, found ${this.describe(token)}`);
    this.advance();
    return { kind: 'Identifier', name: token.text, span: token.span };
  }

  private advance(): void {
    this.token = this.lexer.next();
  }

  private check(op: string): boolean {
    return this.token.kind === 'operator' && this.token.text === op;
  }

  private accept(op: string): boolean {
    if (!this.check(op)) return false;
    this.advance();
    return true;
  }

  private acceptWord(word: string): boolean {
    if (this.token.kind !== 'identifier' || this.token.text !== word) return false;
    this.advance();
    return true;
  }

  /** Whether the token after the current one is this operator. */
  private peekIs(op: string): boolean {
    const at = this.lexer.position;
    const next = this.lexer.next();
    this.lexer.reset(at);
    return next.kind === 'operator' && next.text === op;
  }

  private peekWord(word: string): boolean {
    const at = this.lexer.position;
    const next = this.lexer.next();
    this.lexer.reset(at);
    return next.kind === 'identifier' && next.text === word;
  }

  private expect(op: string, expected: string): Token {
    const token = this.token;
    if (!this.check(op)) this.fail(`expected ${expected}, found ${this.describe(token)}`);
    this.advance();
    return token;
  }

  private describe(token: Token): string {
    const text = token.text.length > 40 ? `${token.text.slice(0, 40)}…` : token.text;
    switch (token.kind) {
      case 'end':
        return 'end of query';
      case 'string':
        return `string ${text}`;
      case 'identifier':
        return KEYWORDS.has(token.text) ? `keyword "${text}"` : `"${text}"`;
      default:
        return `"${text}"`;
    }
  }

  private spanFrom(start: number, last: SourceSpan): SourceSpan {
    return { start, end: last.end };
  }

  private join(a: SourceSpan, b: SourceSpan): SourceSpan {
    return { start: a.start, end: b.end };
  }

  private fail(message: string, span: SourceSpan = this.token.span): never {
    const shown = span.end > span.start ? span : { start: span.start, end: span.start + 1 };
    throw new QueryError(message, this.source, shown);
  }
}
