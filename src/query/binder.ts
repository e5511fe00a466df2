import { isAggregateFunction, SIGNATURES, type AggregateFunction } from '../agg/aggregate.js';
import { didYouMean, ProbeUnavailableError, QueryError, type SourceSpan } from '../errors.js';
import { FUNCTIONS, isResolveFailure, type FieldSpec, type ProbeCatalog, type Unit } from '../plan/catalog.js';
import { expr, exprChildren, isArithmetic, type BinaryOperator, type Expr, type ValueType } from '../plan/expr.js';
import type {
  AggregateSpec,
  BoundSource,
  Column,
  LogicalPlan,
  QueryOutput,
  RowOperation,
  Windowing,
} from '../plan/logical.js';
import { arithmetic } from '../plan/evaluate.js';
import { LANGUAGE_LIMITS, windowingProblem } from '../plan/limits.js';
import { printExpr } from '../plan/print-expr.js';
import type { AggregateCallNode, AggregateNode, BindingNode, CategorizeNode, DurationNode, ExprNode, IdentifierNode, LastNode, OnNode, QueryNode, WindowNode } from './ast.js';
import { printExpression } from './printer.js';

export interface BindOptions {
  readonly catalog: ProbeCatalog;
  /** Wall-clock ns since the epoch that `now()` stands for. */
  readonly nowNs?: number;
}

/** Resolves names and types in a parsed query and produces its logical plan. */
export function bindQuery(query: QueryNode, source: string, options: BindOptions): LogicalPlan {
  return new Binder(source, options).bind(query);
}

/** Aggregates whose values are in their argument's unit (a sum of durations is a duration; a count is not). */
const KEEPS_UNIT: ReadonlySet<AggregateFunction> = new Set(['sum', 'min', 'max', 'avg', 'stddev', 'hist', 'lhist', 'quantiles', 'first', 'last']);

/** The timing clauses of a query, as written. */
interface TimingClauses {
  every?: DurationNode;
  window?: WindowNode;
  last?: LastNode;
}

/** What a name in scope stands for: an event field, or a named expression over fields or columns. */
type Scope = Map<string, Expr>;

/** Host conditions resolve no probe point. */
const NO_CATALOG: ProbeCatalog = { resolve: (point) => ({ reason: `${point} is not resolved here` }) };

/** What `on` may read. */
const HOST_SCOPE: Scope = new Map([['host', expr.field('host', 'str')]]);

/**
 * The host condition of a query's `on` stage (undefined if it has none), bound
 * without resolving its probe points: an agent asks this of every query it
 * hears about, to decide whether the query is for it at all.
 */
export function bindHostCondition(query: QueryNode, source: string): Expr | undefined {
  const on = query.stages.find((s): s is OnNode => s.kind === 'On');
  return on && new Binder(source, { catalog: NO_CATALOG }).hostCondition(on);
}

/** Names that cannot name a column: rows are plain objects, and this one is their prototype. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['__proto__']);

/** An expression's size with each shared subexpression counted as often as it is used, and its depth. */
interface ExprMeasure {
  readonly nodes: number;
  readonly depth: number;
}

class Binder {
  private readonly nowNs: number;
  /** Expression nodes the query's plan holds so far (see LANGUAGE_LIMITS.maxExpressionNodes). */
  private expressionNodes = 0;
  private readonly measures = new WeakMap<Expr, ExprMeasure>();

  constructor(
    private readonly source: string,
    private readonly options: BindOptions,
  ) {
    this.nowNs = options.nowNs ?? Date.now() * 1e6;
  }

  bind(query: QueryNode): LogicalPlan {
    const sources = this.resolveSources(query);
    this.sources = sources;
    let scope: Scope = this.eventScope(sources);
    let aggregated = false;
    const filters: Expr[] = [];
    let columns: Column[] | undefined;
    let output: QueryOutput | undefined;
    const rowOperations: RowOperation[] = [];
    const timing: TimingClauses = {};
    let sampleRate: number | undefined;
    let hosts: Expr | undefined;
    const setTiming = (clause: keyof TimingClauses, node: TimingClauses[keyof TimingClauses] & object) => {
      if (!aggregated) {
        this.fail(`${clause} sets when aggregated results are emitted; put it after an aggregate such as count()`, node.span);
      }
      if (timing[clause]) this.fail(`${clause} is given twice`, node.span);
      (timing as Record<string, unknown>)[clause] = node;
    };

    let categorized: CategorizeNode | undefined;
    for (const stage of query.stages) {
      if (categorized && !['Every', 'Window', 'Last', 'On'].includes(stage.kind)) {
        this.fail(`categorize gives the categories: it is the last stage that works on rows (only every, window, last or on may follow it)`, stage.span);
      }
      if (stage.kind === 'Categorize') categorized = stage;
      switch (stage.kind) {
        case 'Where': {
          const predicate = this.bound(stage.predicate, scope);
          this.expectType(predicate, 'bool', stage.predicate.span, 'a where clause needs a condition');
          if (aggregated) rowOperations.push({ kind: 'Filter', predicate });
          else filters.push(predicate);
          break;
        }
        case 'Let': {
          const computed: Column[] = [];
          scope = new Map(scope);
          for (const binding of stage.bindings) {
            const name = binding.name!;
            this.checkName(name);
            const value = this.bound(binding.expr, scope);
            this.expectValue(value, binding.expr.span);
            if (scope.has(name.name) && !aggregated && scope.get(name.name)!.kind === 'Field') {
              this.fail(`${name.name} is already a field of this event; pick another name`, name.span);
            }
            scope.set(name.name, aggregated ? expr.column(name.name, value.type, name.span) : value);
            computed.push({ name: name.name, expr: value });
          }
          if (aggregated) rowOperations.push({ kind: 'Compute', columns: computed });
          break;
        }
        case 'Sample': {
          if (aggregated) this.fail('sample picks events, so it comes before the aggregate', stage.span);
          if (sampleRate !== undefined) this.fail('sample is given twice', stage.span);
          sampleRate = stage.rate;
          break;
        }
        case 'Select': {
          if (aggregated) this.fail('select comes before the aggregate; after it, use let to add columns', stage.span);
          const selected = this.columns(stage.bindings, scope, 'select');
          columns = selected;
          scope = new Map(selected.map((c) => [c.name, c.expr]));
          break;
        }
        case 'Aggregate': {
          if (output?.kind === 'Record') this.fail('record is the output of its query; aggregate in another query', stage.span);
          if (aggregated) {
            this.fail('a query aggregates once; put all aggregates in one stage: count(), avg(x) by …', stage.span);
          }
          const aggregate = this.aggregate(stage, scope, columns ?? this.defaultColumns(sources), sampleRate);
          output = aggregate.output;
          scope = aggregate.scope;
          aggregated = true;
          if (stage.every) setTiming('every', stage.every);
          break;
        }
        case 'Top': {
          if (!aggregated) {
            this.fail('top ranks aggregated rows; add an aggregate first, e.g. | count() by comm | top 10', stage.span);
          }
          const first = (output as Extract<QueryOutput, { kind: 'Aggregate' }>).aggregates[0]!;
          const by = stage.by?.name ?? first.name;
          if (stage.by && !scope.has(by)) {
            this.fail(`top by ${by}: no such column`, stage.by.span, this.suggest(by, scope.keys()));
          }
          rowOperations.push({ kind: 'Top', count: stage.count.value, by, descending: stage.order !== 'asc' });
          break;
        }
        case 'Limit':
          if (output?.kind === 'Record') this.fail('a recording is dumped whole; limit it with record last N', stage.span);
          rowOperations.push({ kind: 'Limit', count: stage.count.value });
          break;
        case 'Record': {
          if (aggregated || output) this.fail('record keeps events, so it cannot follow an aggregate or another record', stage.span);
          const size = stage.size.value;
          if (!Number.isInteger(size) || size < 1 || size > 1_000_000) this.fail('record last N takes N from 1 to 1000000', stage.size.span);
          let trigger: Expr | undefined;
          if (stage.trigger) {
            trigger = this.bound(stage.trigger, scope);
            this.expectType(trigger, 'bool', stage.trigger.span, 'dump when needs a condition');
          }
          output = { kind: 'Record', columns: columns ?? this.defaultColumns(sources), size, trigger };
          break;
        }
        case 'Categorize':
          rowOperations.push(this.categorizing(stage, output));
          break;
        case 'On':
          if (hosts) this.fail('on is given twice; combine the conditions with and / or', stage.span);
          hosts = this.hostCondition(stage);
          break;
        case 'Every':
          setTiming('every', stage.period);
          break;
        case 'Window':
          setTiming('window', stage);
          break;
        case 'Last':
          setTiming('last', stage);
          break;
      }
    }

    const plan: LogicalPlan = {
      query: this.source,
      sources,
      filter: filters.reduce<Expr | undefined>((acc, f) => (acc ? expr.binary('and', acc, f) : f), undefined),
      output: output ?? { kind: 'Events', columns: columns ?? this.defaultColumns(sources) },
      rowOperations,
      windowing: this.windowing(timing),
      sampleRate,
      hosts,
      startedAtNs: this.nowNs,
    };
    return Object.freeze(plan);
  }

  /** The condition of `on`, over the host name alone: it picks machines, not events. */
  hostCondition(stage: OnNode): Expr {
    const visit = (node: ExprNode): void => {
      switch (node.kind) {
        case 'Field':
          if (node.path.join('.') !== 'host') {
            this.fail(`on picks hosts by name, so it reads host alone; filter events with where`, node.span, {
              hint: `e.g. | on host =~ "web-*" | where ${node.path.join('.')} …`,
            });
          }
          return;
        case 'Unary':
          return visit(node.operand);
        case 'Binary':
          visit(node.left);
          return visit(node.right);
        case 'In':
          visit(node.operand);
          return node.values.forEach(visit);
        case 'Call':
          return node.args.forEach(visit);
        default:
          return;
      }
    };
    visit(stage.predicate);
    const predicate = this.bound(stage.predicate, HOST_SCOPE);
    this.expectType(predicate, 'bool', stage.predicate.span, 'on needs a condition on host, e.g. on host =~ "web-*"');
    return predicate;
  }

  /** every, window and last, resolved into one period length and what each result covers. */
  private windowing(timing: TimingClauses): Windowing {
    const { every, window, last } = timing;
    if (window && last) this.fail('a query takes window or last, not both', last.span);
    if (window?.slide && every) this.fail('window … slide sets the emit period already; drop every', every.span);
    let periodNs: number | undefined;
    let coverNs: number | undefined;
    if (window) {
      coverNs = window.size.value;
      periodNs = window.slide?.value ?? every?.value ?? coverNs;
    } else if (last) {
      coverNs = last.length.value;
      periodNs = every?.value;
    } else if (every) {
      coverNs = periodNs = every.value;
    }
    const covering = window?.size ?? last?.length;
    if (covering && periodNs !== undefined) {
      if (periodNs > coverNs!) this.fail(`each result covers ${covering.text}, less than the period it is emitted every`, covering.span);
      if (coverNs! % periodNs !== 0) {
        this.fail(`${covering.text} is not a whole number of periods of ${(window?.slide ?? every)!.text}`, covering.span);
      }
    }
    const problem = windowingProblem({ periodNs, coverNs });
    if (problem !== undefined) this.fail(problem, (window ?? last ?? every)!.span);
    return { periodNs, coverNs };
  }

  /** `categorize <entity> by <features>`: over an aggregate counted by exactly those keys. */
  private categorizing(stage: CategorizeNode, output: QueryOutput | undefined): RowOperation {
    if (output?.kind !== 'Aggregate') {
      this.fail(`categorize groups entities by their counts: count first, e.g. | count() by ${stage.entity.name}, ${stage.features.map((f) => f.name).join(', ')} every 10s | categorize …`, stage.span);
    }
    const keys = output.keys.map((k) => k.name);
    for (const id of [stage.entity, ...stage.features]) {
      if (!keys.includes(id.name)) {
        this.fail(`categorize ${stage.entity.name} by ${stage.features.map((f) => f.name).join(', ')}: ${id.name} is not a key of the aggregate (its keys: ${keys.join(', ') || 'none'})`, id.span, this.suggest(id.name, keys));
      }
    }
    if (stage.features.some((f) => f.name === stage.entity.name)) this.fail(`categorize ${stage.entity.name} by ${stage.entity.name}: an entity is described by other keys`, stage.span);
    const extra = keys.filter((k) => k !== stage.entity.name && !stage.features.some((f) => f.name === k));
    if (extra.length > 0) {
      this.fail(`categorize ${stage.entity.name} by ${stage.features.map((f) => f.name).join(', ')}: the aggregate is also keyed by ${extra.join(', ')}`, stage.span, {
        hint: `leave ${extra.join(', ')} out of by, or describe each ${stage.entity.name} by ${extra.length === 1 ? 'it' : 'them'} too: categorize ${stage.entity.name} by ${[...stage.features.map((f) => f.name), ...extra].join(', ')}`,
      });
    }
    const first = output.aggregates[0]!;
    if (first.function !== 'count') {
      this.fail(`categorize clusters counts: the aggregate's first value must be count(), not ${first.function}()`, stage.span, { hint: `e.g. | count() by ${keys.join(', ')} | categorize …` });
    }
    return { kind: 'Categorize', entity: stage.entity.name, features: stage.features.map((f) => f.name), count: first.name, ...(stage.k !== undefined && { k: stage.k.value }) };
  }

  private resolveSources(query: QueryNode): BoundSource[] {
    const sources: BoundSource[] = [];
    const seen = new Set<string>();
    for (const point of query.sources) {
      const resolved = this.options.catalog.resolve(point.text);
      if (isResolveFailure(resolved)) {
        if (resolved.unavailable) {
          throw new ProbeUnavailableError(point.text, resolved.reason, resolved.hint ? { hint: resolved.hint } : {});
        }
        const suggestion = resolved.suggestions?.length ? didYouMean(point.text, resolved.suggestions) ?? `did you mean ${resolved.suggestions.slice(0, 3).join(', ')}?` : undefined;
        const hint = [suggestion, resolved.hint].filter(Boolean).join('\n');
        throw new QueryError(resolved.reason, this.source, point.span, hint ? { hint } : {});
      }
      if (seen.has(resolved.point)) this.fail(`${resolved.point} is listed twice`, point.span);
      seen.add(resolved.point);
      sources.push({ text: point.text, span: point.span, schema: resolved });
    }
    return sources;
  }

  /** Fields every source offers (with the same type); the others are remembered to explain their absence. */
  private readonly partialFields = new Map<string, string[]>();

  private eventScope(sources: readonly BoundSource[]): Scope {
    const scope: Scope = new Map();
    const first = sources[0]!.schema;
    for (const [name, spec] of first.fields) {
      const lacking = sources.filter((s) => s.schema.fields.get(name)?.type !== spec.type).map((s) => s.schema.point);
      if (lacking.length === 0) scope.set(name, expr.field(name, spec.type));
      else this.partialFields.set(name, lacking);
    }
    for (const s of sources.slice(1)) {
      for (const name of s.schema.fields.keys()) {
        if (!scope.has(name) && !this.partialFields.has(name)) {
          this.partialFields.set(name, sources.filter((o) => !o.schema.fields.has(name)).map((o) => o.schema.point));
        }
      }
    }
    return scope;
  }

  /** A field the sources do not list but know by name (message fields), while events are in scope. */
  private dynamicField(name: string, scope: Scope): FieldSpec | undefined {
    if (![...scope.values()].some((e) => e.kind === 'Field')) return undefined;
    const specs = this.sources.map((s) => s.schema.fieldFor?.(name));
    const first = specs[0];
    return first && specs.every((s) => s?.type === first.type) ? first : undefined;
  }

  private sources: readonly BoundSource[] = [];

  private defaultColumns(sources: readonly BoundSource[]): Column[] {
    const fields: FieldSpec[] = [...sources[0]!.schema.fields.values()];
    const shown = fields.filter(
      (f) => ['time', 'pid', 'comm', 'probe'].includes(f.name) || f.name.startsWith('args.'),
    );
    return shown
      .filter((f) => sources.every((s) => s.schema.fields.get(f.name)?.type === f.type))
      .map((f) => ({ name: f.name, expr: expr.field(f.name, f.type) }));
  }

  private aggregate(
    stage: AggregateNode,
    scope: Scope,
    eventColumns: readonly Column[],
    sampleRate: number | undefined,
  ): { output: QueryOutput; scope: Scope } {
    const keys = this.columns(stage.keys, scope, 'by');
    for (const [i, key] of keys.entries()) {
      if (key.expr.type === 'bool') continue;
      if (key.expr.kind === 'Const') this.fail('a constant group key groups nothing', stage.keys[i]!.span);
    }
    const aggregates: AggregateSpec[] = [];
    const names = new Set(keys.map((k) => k.name));
    for (const call of stage.aggregates) {
      const spec = this.aggregateCall(call, scope, eventColumns);
      if (call.scaled) {
        if (spec.function !== 'count' && spec.function !== 'sum') this.fail('only count() and sum() can be scaled', call.span);
        if (sampleRate === undefined) this.fail('scaled makes up for sampling; add a stage such as | sample 1% before the aggregate', call.span);
      }
      if (names.has(spec.name)) this.fail(`two columns are named ${spec.name}; name one with name = …`, call.span);
      names.add(spec.name);
      aggregates.push(spec);
    }
    const rowScope: Scope = new Map();
    for (const k of keys) rowScope.set(k.name, expr.column(k.name, k.expr.type));
    for (const a of aggregates) {
      // first/last keep their value's type; every other aggregate reads as a number after grouping
      // (a histogram, quantiles, topk or sample as its count).
      const type = (a.function === 'first' || a.function === 'last') && a.argument ? a.argument.type : 'int';
      rowScope.set(a.name, expr.column(a.name, type));
    }
    return { output: { kind: 'Aggregate', keys, aggregates }, scope: rowScope };
  }

  private aggregateCall(call: AggregateCallNode, scope: Scope, eventColumns: readonly Column[]): AggregateSpec {
    const fn = call.function.name;
    if (!isAggregateFunction(fn)) {
      this.fail(`unknown aggregate ${fn}()`, call.function.span, this.suggest(fn, Object.keys(SIGNATURES)));
    }
    const signature = SIGNATURES[fn];
    const valueArgs = signature.input === 'none' ? 0 : 1;
    const { min, max, example } = signature.params;
    if (call.args.length < valueArgs + min || call.args.length > valueArgs + max) {
      this.fail(`${fn}() takes ${describeArity(valueArgs, min, max)}, e.g. ${example}`, call.span);
    }
    let argument: Expr | undefined;
    if (valueArgs === 1) {
      argument = this.bound(call.args[0]!, scope);
      if (signature.input === 'number') this.expectType(argument, 'int', call.args[0]!.span, `${fn}() needs a number`);
      else if (argument.type === 'stack') this.fail(`${fn}() takes a number or a string, not a stack`, call.args[0]!.span);
    }
    const paramNodes = call.args.slice(valueArgs);
    const params = paramNodes.map((node) => this.constant(node, `the parameters of ${fn}() are constants, e.g. ${example}`));
    this.checkParams(fn, params, paramNodes, call.span);
    if (call.name) this.checkName(call.name);
    const printed = call.args.map(printExpression).join(', ');
    const unit = argument && KEEPS_UNIT.has(fn) ? this.unitOf(argument) : undefined;
    return {
      name: call.name?.name ?? (call.args.length === 0 ? fn : `${fn}(${printed})`),
      function: fn,
      argument,
      params,
      ...(unit !== undefined && { unit }),
      ...(fn === 'sample' && { columns: eventColumns }),
      ...(call.scaled && { scaled: true }),
    };
  }

  /** The unit of a field every source gives the same one (duration: ns); a computed value has none. */
  private unitOf(e: Expr): Unit | undefined {
    if (e.kind !== 'Field') return undefined;
    const units = this.sources.map((s) => s.schema.fields.get(e.name)?.unit);
    return units.every((u) => u === units[0]) ? units[0] : undefined;
  }

  private checkParams(fn: AggregateFunction, params: readonly number[], nodes: readonly ExprNode[], span: SourceSpan): void {
    const at = (i: number) => nodes[i]?.span ?? span;
    const whole = (i: number, low: number, high: number, what: string) => {
      const v = params[i]!;
      if (!Number.isInteger(v) || v < low || v > high) this.fail(`${what} is a whole number from ${low} to ${high}`, at(i));
    };
    switch (fn) {
      case 'lhist': {
        const [low, high, step] = params as [number, number, number];
        for (let i = 0; i < 3; i++) whole(i, -(2 ** 53), 2 ** 53, ['min', 'max', 'step'][i]!);
        if (high <= low) this.fail('lhist(x, min, max, step) needs min < max', at(1));
        if (step <= 0) this.fail('the step of lhist must be positive', at(2));
        if ((high - low) / step > 1000) this.fail('lhist would have more than 1000 buckets; take a larger step', at(2));
        break;
      }
      case 'quantiles':
        params.forEach((p, i) => {
          if (!(p >= 0 && p <= 1)) this.fail('a quantile is from 0 to 1, e.g. 0.99', at(i));
        });
        break;
      case 'topk':
        whole(0, 1, 1000, 'k');
        break;
      case 'sample':
        whole(0, 1, 10000, 'n');
        break;
      default:
        break;
    }
  }

  /** A constant number: a literal, a duration, or a negated one. Fractions are allowed here. */
  private constant(node: ExprNode, why: string): number {
    if (node.kind === 'Number' || node.kind === 'Duration') return node.value;
    if (node.kind === 'Unary' && node.operator === '-' && (node.operand.kind === 'Number' || node.operand.kind === 'Duration')) {
      return -node.operand.value;
    }
    this.fail(why, node.span);
  }

  private columns(bindings: readonly BindingNode[], scope: Scope, clause: string): Column[] {
    const columns: Column[] = [];
    const names = new Set<string>();
    for (const binding of bindings) {
      const value = this.bound(binding.expr, scope);
      this.expectValue(value, binding.expr.span);
      if (binding.name) this.checkName(binding.name);
      const name = binding.name?.name ?? printExpression(binding.expr);
      if (names.has(name)) this.fail(`${name} appears twice in ${clause}`, binding.span);
      names.add(name);
      columns.push({ name, expr: value });
    }
    return columns;
  }

  /** A whole expression of the query (a predicate, a value, a key), bound and counted against the limits. */
  private bound(node: ExprNode, scope: Scope): Expr {
    const bound = this.expression(node, scope);
    const { nodes, depth } = this.measure(bound);
    const hint = { hint: 'each use of a let name repeats its expression: a let that uses another twice doubles it' };
    if (depth > LANGUAGE_LIMITS.maxNesting) {
      this.fail(`with its let names written out, this expression nests more than ${LANGUAGE_LIMITS.maxNesting} levels deep`, node.span, hint);
    }
    this.expressionNodes += nodes;
    if (this.expressionNodes > LANGUAGE_LIMITS.maxExpressionNodes) {
      this.fail(`with its let names written out, the query's expressions have more than ${LANGUAGE_LIMITS.maxExpressionNodes} parts`, node.span, hint);
    }
    return bound;
  }

  /** Size and depth of an expression as it will be written out; shared parts are measured once. */
  private measure(e: Expr): ExprMeasure {
    const known = this.measures.get(e);
    if (known) return known;
    let nodes = 1;
    let depth = 0;
    for (const child of exprChildren(e)) {
      const m = this.measure(child);
      nodes += m.nodes;
      depth = Math.max(depth, m.depth);
    }
    const measured = { nodes, depth: depth + 1 };
    this.measures.set(e, measured);
    return measured;
  }

  private expression(node: ExprNode, scope: Scope): Expr {
    switch (node.kind) {
      case 'Number':
        if (!Number.isInteger(node.value)) {
          this.fail('numbers in expressions are integers; fractions are for durations (1.5ms) and quantiles(x, 0.99)', node.span);
        }
        return expr.const(node.value, 'int', node.span);
      case 'Duration':
        return expr.const(node.value, 'int', node.span);
      case 'String':
        return expr.const(node.value, 'str', node.span);
      case 'Boolean':
        return expr.const(node.value, 'bool', node.span);
      case 'Field':
        return this.field(node.path, node.span, scope);
      case 'Unary': {
        const operand = this.expression(node.operand, scope);
        if (node.operator === '-') {
          this.expectType(operand, 'int', node.operand.span, 'only numbers can be negated');
          return operand.kind === 'Const' ? expr.const(-(operand.value as number), 'int', node.span) : expr.negate(operand, node.span);
        }
        this.expectType(operand, 'bool', node.operand.span, 'not needs a condition');
        return expr.not(operand, node.span);
      }
      case 'Binary':
        return this.binary(node, scope);
      case 'In': {
        const operand = this.expression(node.operand, scope);
        this.expectValue(operand, node.operand.span);
        if (node.values.length === 0) this.fail('in needs at least one value', node.span);
        const parts = node.values.map((v) => {
          const value = this.expression(v, scope);
          this.expectType(value, operand.type, v.span, `the list holds ${operand.type === 'str' ? 'strings' : 'numbers'}`);
          return expr.binary(node.negated ? '!=' : '==', operand, value, v.span);
        });
        // A balanced tree: a list of a thousand values nests ten levels, not a thousand.
        const join = (from: number, to: number): Expr => {
          if (to - from === 1) return parts[from]!;
          const middle = (from + to) >> 1;
          return expr.binary(node.negated ? 'and' : 'or', join(from, middle), join(middle, to), node.span);
        };
        return join(0, parts.length);
      }
      case 'Call':
        return this.call(node, scope);
    }
  }

  private field(path: readonly string[], span: SourceSpan, scope: Scope): Expr {
    const name = path.map((p, i) => (i === 0 ? p : /^[0-9]+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
    const found = scope.get(name);
    if (found) return found.kind === 'Field' || found.kind === 'Column' ? { ...found, span } : found;
    const dynamic = this.dynamicField(name, scope);
    if (dynamic) return expr.field(name, dynamic.type, span);
    const lacking = this.partialFields.get(name);
    if (lacking && [...scope.values()].some((e) => e.kind === 'Field')) {
      this.fail(`${name} is not a field of ${lacking.join(', ')}`, span, {
        hint: 'every probe point of a query must offer each field the query reads; split the query or drop a probe point',
      });
    }
    if (isAggregateFunction(name)) {
      this.fail(`${name} is an aggregate; call it as a stage, e.g. | ${SIGNATURES[name].params.example} by comm`, span);
    }
    this.fail(`unknown field ${name}`, span, this.suggest(name, scope.keys()));
  }

  private binary(node: Extract<ExprNode, { kind: 'Binary' }>, scope: Scope): Expr {
    const left = this.expression(node.left, scope);
    if (node.operator === '=~' || node.operator === '!~') {
      // A stack matches where one of its frames does.
      if (left.type !== 'stack') this.expectType(left, 'str', node.left.span, `${node.operator} matches strings and stacks`);
      if (node.right.kind !== 'String') {
        this.fail(`${node.operator} takes a string pattern such as "node*"`, node.right.span);
      }
      if (node.right.value.length > LANGUAGE_LIMITS.maxGlobChars) {
        this.fail(`a pattern is at most ${LANGUAGE_LIMITS.maxGlobChars} characters`, node.right.span);
      }
      const match = expr.match(left, node.right.value, node.span);
      return node.operator === '=~' ? match : expr.not(match, node.span);
    }
    const right = this.expression(node.right, scope);
    const operator: BinaryOperator = node.operator === '&&' ? 'and' : node.operator === '||' ? 'or' : node.operator;
    if (operator === 'and' || operator === 'or') {
      this.expectType(left, 'bool', node.left.span, `${operator} joins conditions`);
      this.expectType(right, 'bool', node.right.span, `${operator} joins conditions`);
      return expr.binary(operator, left, right, node.span);
    }
    if (isArithmetic(operator)) {
      this.expectType(left, 'int', node.left.span, `${operator} needs numbers`);
      this.expectType(right, 'int', node.right.span, `${operator} needs numbers`);
      if (left.kind === 'Const' && right.kind === 'Const') {
        return expr.const(arithmetic(operator, left.value as number, right.value as number), 'int', node.span);
      }
      return expr.binary(operator, left, right, node.span);
    }
    this.expectValue(left, node.left.span);
    this.expectType(right, left.type, node.right.span, `${printExpr(left)} is a ${typeName(left.type)}`);
    if (left.type === 'str' && operator !== '==' && operator !== '!=') {
      this.fail(`strings compare with == and != (or match with =~ "glob*"), not ${operator}`, node.span);
    }
    if (left.type === 'stack') this.fail('stacks can be grouped by, not compared', node.span);
    return expr.binary(operator, left, right, node.span);
  }

  private call(node: Extract<ExprNode, { kind: 'Call' }>, scope: Scope): Expr {
    const name = node.callee.name;
    if (isAggregateFunction(name)) {
      this.fail(`${name}() is an aggregate; use it as a stage of its own: | ${name}(…) by …`, node.callee.span);
    }
    const fn = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
    if (fn === undefined) {
      this.fail(`unknown function ${name}()`, node.callee.span, this.suggest(name, Object.keys(FUNCTIONS)));
    }
    if (node.args.length !== fn.args.length) {
      this.fail(`${name}() takes ${fn.args.length === 0 ? 'no argument' : `${fn.args.length} argument(s)`}`, node.span);
    }
    if (name === 'now') return expr.const(this.nowNs, 'int', node.span);
    const args = node.args.map((a, i) => {
      const value = this.expression(a, scope);
      this.expectType(value, fn.args[i]!, a.span, `${name}() takes a ${typeName(fn.args[i]!)}`);
      return value;
    });
    const pointer = fn.reads;
    if (pointer !== undefined) {
      const field = args[0]!;
      const fits = field.kind === 'Field' && this.sources.every((s) => s.schema.fields.get(field.name)?.pointsTo === pointer.pointsTo);
      if (!fits) this.fail(`${name}() takes ${pointer.example}; ${printExpr(field)} is not one`, node.args[0]!.span);
    }
    return expr.call(name, args, fn.result, node.span);
  }

  private checkName(name: IdentifierNode): void {
    if (RESERVED_NAMES.has(name.name)) this.fail(`${name.name} cannot name a column; pick another name`, name.span);
  }

  private expectType(e: Expr, type: ValueType, span: SourceSpan, why: string): void {
    if (e.type !== type) this.fail(`${why}, but ${printExpr(e)} is a ${typeName(e.type)}`, span);
  }

  private expectValue(e: Expr, span: SourceSpan): void {
    if (e.type === 'stack' && e.kind !== 'Field') this.fail('stacks can only be used as they are', span);
  }

  private suggest(name: string, candidates: Iterable<string>): { hint?: string } {
    const hint = didYouMean(name, candidates);
    return hint ? { hint } : {};
  }

  private fail(message: string, span: SourceSpan, options: { hint?: string } = {}): never {
    throw new QueryError(message, this.source, span, options);
  }
}

function typeName(type: ValueType): string {
  switch (type) {
    case 'int':
      return 'number';
    case 'str':
      return 'string';
    case 'bool':
      return 'condition';
    case 'stack':
      return 'stack';
  }
}

function describeArity(values: number, min: number, max: number): string {
  const value = values === 1 ? 'a value' : '';
  if (max === 0) return values === 1 ? 'one value' : 'no argument';
  const params = min === max ? `${min} constant${min === 1 ? '' : 's'}` : `${min} to ${max} constants`;
  return value ? `${value} and ${params}` : params;
}
