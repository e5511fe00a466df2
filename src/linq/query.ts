import type { HistResult, QuantilesResult, TopKResult } from '../agg/aggregate.js';
import type { QueryMessage, ResultMessage } from '../cluster/cluster-stage.js';
import type { Coverage } from '../cluster/period-aligner.js';
import type { QueryHandle, RunOptions } from '../cluster/query-handle.js';
import type { Cell } from '../cluster/rows.js';
import type { AggregateCallNode, BindingNode, ExprNode, QueryNode, StageNode } from '../query/ast.js';
import type { FeaturesCell } from '../mine/categorizer.js';
import { CallSite } from './call-site.js';
import { deferredHandle } from './deferred-handle.js';
import { checkLambda, type Params } from './lambda.js';
import { printQuery } from '../query/printer.js';
import { binding, columnName, defaultAggregateName, durationNode, identifier, numberNode, signedNumber, SPAN, syntaxTree } from './spelling.js';

/** What runs a query's FayQL text: this machine, or a cluster. */
export interface QueryRunner {
  run(text: string, options: RunOptions): QueryHandle;
  /** run() after learning which logs the agents keep: for a history query (stored:<log>). */
  start(text: string, options: RunOptions): Promise<QueryHandle>;
  explain(text: string): string;
}

/** A lambda over an event, optionally with a parameter object whose values become constants. */
type Predicate<E> = (e: E) => boolean;
type ParamPredicate<E, P> = (e: E, p: P) => boolean;

/** A `select` or `groupBy` lambda returning an object of columns. */
type Columns<R> = { readonly [K in keyof R]: R[K] };

/** What a query built so far holds: its sources, stages, and how long it runs. */
interface Parts {
  readonly runner: QueryRunner;
  readonly sources: readonly string[];
  readonly stages: readonly StageNode[];
  readonly durationMs: number | undefined;
}

function lambdaStage(operator: string, fn: unknown, params: Params | undefined): ExprNode {
  const site = CallSite.capture(operator);
  const checked = checkLambda(fn, params, site);
  if (checked.body === undefined) throw site.error('expected a condition, not an object');
  return checked.body;
}

function columnsOf(operator: string, fn: unknown): BindingNode[] {
  const site = CallSite.capture(operator);
  const checked = checkLambda(fn, undefined, site);
  if (checked.properties === undefined) throw site.error('expected an object of columns, e.g. e => ({ comm: e.comm, file: e.args.filename })');
  if (checked.properties.length === 0) throw site.error('the object names no column');
  return checked.properties.map((p) => binding(p.name, p.expr, site));
}

/** `sample(0.01)` → `sample 1%`; `sample(1, 100)` → `sample 1 in 100`. */
function sampleStage(site: CallSite, rate: number, outOf: number | undefined): StageNode {
  if (outOf !== undefined) {
    if (!Number.isInteger(rate) || !Number.isInteger(outOf) || rate < 1 || rate > outOf) throw site.error('sample(n, m) keeps n events in m: whole numbers, 1 ≤ n ≤ m');
    return { kind: 'Sample', text: `${rate} in ${outOf}`, rate: rate / outOf, span: SPAN };
  }
  if (!(rate > 0 && rate <= 1)) throw site.error('sample(rate) takes a probability: 0 < rate ≤ 1, e.g. 0.01');
  const percent = Number((rate * 100).toPrecision(12));
  return { kind: 'Sample', text: `${percent}%`, rate, span: SPAN };
}

/** `on('web-*')`, `on(['web-*', 'db1'])`: host globs as an `on` condition. */
function onStage(site: CallSite, globs: string | readonly string[]): StageNode {
  const list = typeof globs === 'string' ? [globs] : globs;
  if (list.length === 0) throw site.error('on() needs a host name or glob');
  const matches = list.map<ExprNode>((g) => ({ kind: 'Binary', operator: '=~', left: { kind: 'Field', path: ['host'], span: SPAN }, right: { kind: 'String', value: g, span: SPAN }, span: SPAN }));
  const predicate = matches.reduce((acc, m) => ({ kind: 'Binary', operator: '||', left: acc, right: m, span: SPAN }));
  return { kind: 'On', predicate, span: SPAN };
}

abstract class Built {
  protected constructor(protected readonly parts: Parts) {}

  /** The query in FayQL: running it with `fay query` plans exactly what this does. */
  toFayQL(): string {
    return printQuery(this.syntaxTree());
  }

  /** The query as the syntax tree the FayQL parser would give for toFayQL(). */
  syntaxTree(): QueryNode {
    return syntaxTree(this.parts.sources, this.parts.stages);
  }

  /** The stages of the plan, where each part runs, and the generated probe programs. */
  explain(): string {
    return this.parts.runner.explain(this.toFayQL());
  }

  /** Starts the query; the handle streams its messages (results, events, notices). */
  start(): QueryHandle {
    const options = this.parts.durationMs === undefined ? {} : { durationMs: this.parts.durationMs };
    if (this.history) return deferredHandle(this.parts.runner.start(this.toFayQL(), options));
    return this.parts.runner.run(this.toFayQL(), options);
  }

  /** A history query (fay.stored): it reads what is stored and ends by itself. */
  protected get history(): boolean {
    return this.parts.sources.some((s) => s.startsWith('stored:'));
  }

  /** Whether the query ends by itself: a duration, or a history query. */
  protected get ends(): boolean {
    return this.parts.durationMs !== undefined || this.history;
  }

  protected with(stage: StageNode): Parts {
    return { ...this.parts, stages: [...this.parts.stages, stage] };
  }

  protected lasting(duration: string | number): Parts {
    const site = CallSite.capture('duration');
    return { ...this.parts, durationMs: durationNode(duration, site).value / 1e6 };
  }
}

/** A stream of events from one or more probe points, filtered and projected where they fire. */
export class Query<E> extends Built {
  constructor(parts: Parts) {
    super(parts);
  }

  /** Keeps the events for which the lambda holds; a second argument passes constants: where((e, p) => e.pid === p.pid, { pid }). */
  where(predicate: Predicate<E>): Query<E>;
  where<P extends Params>(predicate: ParamPredicate<E, P>, params: P): Query<E>;
  where(predicate: unknown, params?: Params): Query<E> {
    return new Query<E>(this.with({ kind: 'Where', predicate: lambdaStage('where', predicate, params), span: SPAN }));
  }

  /** Keeps these columns of each event: select(e => ({ pid: e.pid, file: e.args.filename })). */
  select<R extends object>(columns: (e: E) => R): Query<Columns<R>> {
    return new Query<Columns<R>>(this.with({ kind: 'Select', bindings: columnsOf('select', columns), span: SPAN }));
  }

  /** Keeps each event with this probability (sample(0.01)), or n in m (sample(1, 100)), decided where it fires. */
  sample(rate: number, outOf?: number): Query<E> {
    return new Query<E>(this.with(sampleStage(CallSite.capture('sample'), rate, outOf)));
  }

  /** Runs on the hosts whose names match (globs). */
  on(hosts: string | readonly string[]): Query<E> {
    return new Query<E>(this.with(onStage(CallSite.capture('on'), hosts)));
  }

  /** Stops this long after the probes are attached: '4s', '500ms', or milliseconds. */
  duration(duration: string | number): Query<E> {
    return new Query<E>(this.lasting(duration));
  }

  /** Groups events by a key: groupBy(e => e.comm) (the column is `key`) or groupBy(e => ({ comm: e.comm, pid: e.pid })). */
  groupBy<K>(key: (e: E) => K): Grouped<E, KeyColumns<K>> {
    const site = CallSite.capture('groupBy');
    const checked = checkLambda(key, undefined, site);
    const keys = checked.properties ? checked.properties.map((p) => binding(p.name, p.expr, site)) : [binding('key', checked.body!, site)];
    return new Grouped<E, KeyColumns<K>>(this.parts, keys);
  }

  count(): Aggregated<{ count: number }, number> {
    return this.aggregate((a) => ({ count: a.count() })).scalar();
  }
  sum(value: (e: E) => number): Aggregated<{ sum: number }, number> {
    return this.aggregate((a) => ({ sum: a.sum(value) })).scalar();
  }
  min(value: (e: E) => number): Aggregated<{ min: number }, number> {
    return this.aggregate((a) => ({ min: a.min(value) })).scalar();
  }
  max(value: (e: E) => number): Aggregated<{ max: number }, number> {
    return this.aggregate((a) => ({ max: a.max(value) })).scalar();
  }
  avg(value: (e: E) => number): Aggregated<{ avg: number }, number> {
    return this.aggregate((a) => ({ avg: a.avg(value) })).scalar();
  }
  hist(value: (e: E) => number): Aggregated<{ hist: HistResult }, HistResult> {
    return this.aggregate((a) => ({ hist: a.hist(value) })).scalar();
  }
  quantiles(value: (e: E) => number, ...p: number[]): Aggregated<{ quantiles: QuantilesResult }, QuantilesResult> {
    return this.aggregate((a) => ({ quantiles: a.quantiles(value, ...p) })).scalar();
  }
  distinct(value: (e: E) => unknown): Aggregated<{ distinct: number }, number> {
    return this.aggregate((a) => ({ distinct: a.distinct(value) })).scalar();
  }
  topk(value: (e: E) => unknown, k: number): Aggregated<{ topk: TopKResult }, TopKResult> {
    return this.aggregate((a) => ({ topk: a.topk(value, k) })).scalar();
  }

  /** Several aggregates at once: aggregate(a => ({ n: a.count(), lat: a.avg(e => e.duration) })). */
  aggregate<R extends Record<string, Aggregate<unknown>>>(spec: (a: Aggregator<E>) => R): Aggregated<AggregateColumns<R>, AggregateColumns<R>> {
    return aggregated<E, AggregateColumns<R>>(this.parts, [], spec, 'row');
  }

  /** The first n events (the query ends after them). */
  take(n: number): Taken<E> {
    const site = CallSite.capture('take');
    if (!Number.isInteger(n) || n < 1) throw site.error('take(n) takes a whole number ≥ 1');
    return new Taken<E>(this.with({ kind: 'Limit', count: numberNode(n), span: SPAN }));
  }

  /** Every event until the query's duration is over. */
  toArray(): Promise<E[]> {
    if (!this.ends) return Promise.reject(CallSite.capture('toArray').error('an event stream has no end: add .duration("4s") or use .take(n)'));
    return collectEvents<E>(this.start());
  }

  /** Events as they come (for await … of). Break out of the loop to stop the query. */
  [Symbol.asyncIterator](): AsyncIterator<E> {
    return eventIterator<E>(this.start());
  }
}

/** The first n events of a query: awaited, their list; iterated, one by one. */
export class Taken<E> extends Built implements PromiseLike<E[]> {
  constructor(parts: Parts) {
    super(parts);
  }

  then<A = E[], B = never>(onfulfilled?: ((value: E[]) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return collectEvents<E>(this.start()).then(onfulfilled, onrejected);
  }

  [Symbol.asyncIterator](): AsyncIterator<E> {
    return eventIterator<E>(this.start());
  }
}

/** Key columns of a groupBy: the object's properties, or `key`. */
export type KeyColumns<K> = K extends object ? (K extends readonly unknown[] ? { key: K } : Columns<K>) : { key: K };

/** A typed placeholder for one aggregate in aggregate(a => ({ … })). */
export interface Aggregate<T> {
  readonly call: AggregateCallNode;
  /** Only for typing: the value's type. */
  readonly __type?: T;
}

type AggregateColumns<R> = { readonly [K in keyof R]: R[K] extends Aggregate<infer T> ? T : never };

/** The aggregates a query can compute; each call reads its lambda like where does. */
export class Aggregator<E> {
  private call<T>(fn: string, value: unknown, params: readonly number[] = []): Aggregate<T> {
    const args: ExprNode[] = [];
    if (value !== undefined) args.push(lambdaStage(fn, value, undefined));
    for (const p of params) {
      if (typeof p !== 'number' || !Number.isFinite(p)) throw CallSite.capture(fn).error(`${fn}() takes numbers as its parameters`);
      args.push(signedNumber(p));
    }
    return { call: { kind: 'AggregateCall', name: undefined, function: identifier(fn), args, scaled: false, span: SPAN } };
  }
  count(): Aggregate<number> {
    return this.call('count', undefined);
  }
  /** count() scaled up by the sampling rate. */
  countScaled(): Aggregate<number> {
    const a = this.call<number>('count', undefined);
    return { call: { ...a.call, scaled: true } };
  }
  sum(value: (e: E) => number): Aggregate<number> {
    return this.call('sum', value);
  }
  min(value: (e: E) => number): Aggregate<number> {
    return this.call('min', value);
  }
  max(value: (e: E) => number): Aggregate<number> {
    return this.call('max', value);
  }
  avg(value: (e: E) => number): Aggregate<number> {
    return this.call('avg', value);
  }
  stddev(value: (e: E) => number): Aggregate<number> {
    return this.call('stddev', value);
  }
  hist(value: (e: E) => number): Aggregate<HistResult> {
    return this.call('hist', value);
  }
  lhist(value: (e: E) => number, min: number, max: number, step: number): Aggregate<HistResult> {
    return this.call('lhist', value, [min, max, step]);
  }
  quantiles(value: (e: E) => number, ...p: number[]): Aggregate<QuantilesResult> {
    return this.call('quantiles', value, p);
  }
  distinct(value: (e: E) => unknown): Aggregate<number> {
    return this.call('distinct', value);
  }
  topk(value: (e: E) => unknown, k: number): Aggregate<TopKResult> {
    return this.call('topk', value, [k]);
  }
  first(value: (e: E) => unknown): Aggregate<Cell> {
    return this.call('first', value);
  }
  last(value: (e: E) => unknown): Aggregate<Cell> {
    return this.call('last', value);
  }
}

/** Events grouped by key columns, waiting for their aggregates. */
export class Grouped<E, K> {
  constructor(
    private readonly parts: Parts,
    private readonly keys: readonly BindingNode[],
  ) {}

  count(): Aggregated<K & { count: number }, (K & { count: number })[]> {
    return this.aggregate((a) => ({ count: a.count() }));
  }
  sum(value: (e: E) => number): Aggregated<K & { sum: number }, (K & { sum: number })[]> {
    return this.aggregate((a) => ({ sum: a.sum(value) }));
  }
  avg(value: (e: E) => number): Aggregated<K & { avg: number }, (K & { avg: number })[]> {
    return this.aggregate((a) => ({ avg: a.avg(value) }));
  }
  min(value: (e: E) => number): Aggregated<K & { min: number }, (K & { min: number })[]> {
    return this.aggregate((a) => ({ min: a.min(value) }));
  }
  max(value: (e: E) => number): Aggregated<K & { max: number }, (K & { max: number })[]> {
    return this.aggregate((a) => ({ max: a.max(value) }));
  }
  hist(value: (e: E) => number): Aggregated<K & { hist: HistResult }, (K & { hist: HistResult })[]> {
    return this.aggregate((a) => ({ hist: a.hist(value) }));
  }
  quantiles(value: (e: E) => number, ...p: number[]): Aggregated<K & { quantiles: QuantilesResult }, (K & { quantiles: QuantilesResult })[]> {
    return this.aggregate((a) => ({ quantiles: a.quantiles(value, ...p) }));
  }
  distinct(value: (e: E) => unknown): Aggregated<K & { distinct: number }, (K & { distinct: number })[]> {
    return this.aggregate((a) => ({ distinct: a.distinct(value) }));
  }
  topk(value: (e: E) => unknown, k: number): Aggregated<K & { topk: TopKResult }, (K & { topk: TopKResult })[]> {
    return this.aggregate((a) => ({ topk: a.topk(value, k) }));
  }

  aggregate<R extends Record<string, Aggregate<unknown>>>(spec: (a: Aggregator<E>) => R): Aggregated<K & AggregateColumns<R>, (K & AggregateColumns<R>)[]> {
    return aggregated<E, K & AggregateColumns<R>>(this.parts, this.keys, spec, 'rows');
  }
}

/** What an awaited aggregate gives: the rows (grouped), the one row, or the one value. */
type Shape = 'rows' | 'row' | 'value';

/** A row of categorize(entity, …): the entity, its category and how it sits there (docs/mining.md). */
export type CategoryRow<R, K extends keyof R> = { readonly [P in K]: R[P] } & {
  readonly category: number;
  readonly size: number;
  readonly distance: number;
  readonly outlier: number;
  readonly features: FeaturesCell;
  readonly changed: boolean;
};

function aggregated<E, R>(parts: Parts, keys: readonly BindingNode[], spec: (a: Aggregator<E>) => Record<string, Aggregate<unknown>>, shape: Shape): Aggregated<R, never> {
  const site = CallSite.capture('aggregate');
  const named = spec(new Aggregator<E>());
  const entries = Object.entries(named);
  if (entries.length === 0) throw site.error('aggregate() needs at least one aggregate, e.g. a => ({ n: a.count() })');
  const aggregates = entries.map(([name, a]) => {
    if (typeof a !== 'object' || a === null || !('call' in a)) throw site.error(`${name} is not an aggregate: use the a.count(), a.avg(…) … of aggregate(a => …)`);
    const call = a.call;
    return { ...call, name: name === defaultAggregateName(call) ? undefined : columnName(name, site) };
  });
  const stage: StageNode = { kind: 'Aggregate', aggregates, keys, every: undefined, span: SPAN };
  return new Aggregated<R, never>({ ...parts, stages: [...parts.stages, stage] }, shape);
}

/** One result of an aggregate query: a closed window, a running snapshot, or the final answer. */
export interface Window<R> {
  readonly rows: R[];
  readonly start: Date;
  readonly end: Date;
  /** False for a running snapshot that will grow; true for a closed window or the final answer. */
  readonly complete: boolean;
  /** Which hosts these rows cover (in cluster mode). */
  readonly coverage: Coverage | undefined;
}

/** The final answer with what Fay had to say about it. */
export interface FinalResult<R> extends Window<R> {
  readonly notices: readonly { host: string; message: string }[];
}

/**
 * An aggregate query. Awaited, it runs for its duration and gives the final
 * answer (A: the rows, the one row, or the one value); iterated with for
 * await, it gives each window or refreshed result as it is emitted.
 */
export class Aggregated<R, A> extends Built implements PromiseLike<A> {
  constructor(
    parts: Parts,
    private readonly shape: Shape,
  ) {
    super(parts);
  }

  /** An ungrouped single aggregate: awaited, its value. */
  scalar<V>(): Aggregated<R, V> {
    return new Aggregated<R, V>(this.parts, 'value');
  }

  /** Keeps the rows for which the lambda holds (over key and aggregate columns): where((r) => r.count > 100). */
  where(predicate: Predicate<R>): Aggregated<R, A>;
  where<P extends Params>(predicate: ParamPredicate<R, P>, params: P): Aggregated<R, A>;
  where(predicate: unknown, params?: Params): Aggregated<R, A> {
    return new Aggregated<R, A>(this.with({ kind: 'Where', predicate: lambdaStage('where', predicate, params), span: SPAN }), this.shape);
  }

  /** One result per period (tumbling windows). */
  every(period: string | number): Aggregated<R, A> {
    return new Aggregated<R, A>(this.with({ kind: 'Every', period: durationNode(period, CallSite.capture('every')), span: SPAN }), this.shape);
  }

  /** Tumbling windows of this size, or sliding ones every `slide`. */
  window(size: string | number, slide?: string | number): Aggregated<R, A> {
    const site = CallSite.capture('window');
    return new Aggregated<R, A>(this.with({ kind: 'Window', size: durationNode(size, site), slide: slide === undefined ? undefined : durationNode(slide, site), span: SPAN }), this.shape);
  }

  /** Each result covers the most recent stretch of this length. */
  last(length: string | number): Aggregated<R, A> {
    return new Aggregated<R, A>(this.with({ kind: 'Last', length: durationNode(length, CallSite.capture('last')), span: SPAN }), this.shape);
  }

  /** The n rows with the largest (or smallest) value of a column, by default the first aggregate. */
  top(n: number, by?: keyof R & string, order: 'asc' | 'desc' = 'desc'): Aggregated<R, A> {
    const site = CallSite.capture('top');
    if (!Number.isInteger(n) || n < 1) throw site.error('top(n) takes a whole number ≥ 1');
    return new Aggregated<R, A>(
      this.with({ kind: 'Top', count: numberNode(n), by: by === undefined ? undefined : columnName(by, site), order: order === 'desc' ? undefined : order, span: SPAN }),
      this.shape,
    );
  }

  /**
   * The categorize stage (docs/mining.md): one row per value of `entity` with the category of its
   * mix of counts by `by`. `categorize('host', 'probe')` is FayQL's `categorize host by probe`;
   * `{ k: 3 }` asks for three categories. The last row stage of a query.
   */
  categorize<K extends keyof R & string>(entity: K, by: (keyof R & string) | readonly (keyof R & string)[], options: { k?: number } = {}): Aggregated<CategoryRow<R, K>, CategoryRow<R, K>[]> {
    const site = CallSite.capture('categorize');
    const features = typeof by === 'string' ? [by] : by;
    if (features.length === 0) throw site.error('categorize(entity, by) needs at least one key to describe each entity by');
    if (options.k !== undefined && (!Number.isInteger(options.k) || options.k < 1 || options.k > 50)) throw site.error('k is the number of categories: a whole number from 1 to 50');
    return new Aggregated<CategoryRow<R, K>, CategoryRow<R, K>[]>(
      this.with({
        kind: 'Categorize',
        entity: columnName(entity, site),
        features: features.map((f) => columnName(f, site)),
        k: options.k === undefined ? undefined : numberNode(options.k),
        span: SPAN,
      }),
      'rows',
    );
  }

  /** At most n rows per result. */
  take(n: number): Aggregated<R, A> {
    const site = CallSite.capture('take');
    if (!Number.isInteger(n) || n < 1) throw site.error('take(n) takes a whole number ≥ 1');
    return new Aggregated<R, A>(this.with({ kind: 'Limit', count: numberNode(n), span: SPAN }), this.shape);
  }

  /** Stops this long after the probes are attached: '4s', '500ms', or milliseconds. */
  duration(duration: string | number): Aggregated<R, A> {
    return new Aggregated<R, A>(this.lasting(duration), this.shape);
  }

  /** Runs the query to its end and gives the final rows, with coverage and notices. */
  async result(): Promise<FinalResult<R>> {
    if (!this.ends) throw CallSite.capture('result').error('an aggregate query awaited needs an end: add .duration("4s"), or iterate its windows with for await');
    const run = this.start();
    const notices: { host: string; message: string }[] = [];
    let final: ResultMessage | undefined;
    for await (const m of run) {
      if (m.kind === 'notice') notices.push({ host: m.host, message: m.message });
      if (m.kind === 'result' && m.complete) final = m;
    }
    const window = final ? windowOf<R>(final) : { rows: [], start: new Date(), end: new Date(), complete: true, coverage: undefined };
    return { ...window, notices };
  }

  then<X = A, Y = never>(onfulfilled?: ((value: A) => X | PromiseLike<X>) | null, onrejected?: ((reason: unknown) => Y | PromiseLike<Y>) | null): Promise<X | Y> {
    return this.result()
      .then((r) => {
        if (this.shape === 'rows') return r.rows as A;
        const row = r.rows[0] as Record<string, unknown> | undefined;
        if (this.shape === 'row') return row as A;
        return (row === undefined ? undefined : Object.values(row)[0]) as A;
      })
      .then(onfulfilled, onrejected);
  }

  /** Each result as it is emitted. Break out of the loop to stop the query. */
  [Symbol.asyncIterator](): AsyncIterator<Window<R>> {
    const run = this.start();
    const messages = run[Symbol.asyncIterator]();
    return {
      next: async () => {
        for (;;) {
          const next = await messages.next();
          if (next.done) return { done: true, value: undefined };
          if (next.value.kind === 'result') return { done: false, value: windowOf<R>(next.value) };
        }
      },
      return: async () => {
        await run.stop();
        return { done: true, value: undefined };
      },
    };
  }
}

function rowObjects(columns: readonly string[], rows: readonly (readonly Cell[])[]): Record<string, Cell>[] {
  return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i] ?? null])));
}

function windowOf<R>(m: ResultMessage): Window<R> {
  return {
    rows: rowObjects(m.columns.map((c) => c.name), m.rows) as R[],
    start: new Date(m.startNs / 1e6),
    end: new Date(m.endNs / 1e6),
    complete: m.complete,
    coverage: m.coverage,
  };
}

async function collectEvents<E>(run: QueryHandle): Promise<E[]> {
  const events: E[] = [];
  for await (const m of run) if (m.kind === 'events') events.push(...(rowObjects(m.columns, m.rows) as E[]));
  return events;
}

function eventIterator<E>(run: QueryHandle): AsyncIterator<E> {
  const messages: AsyncIterator<QueryMessage> = run[Symbol.asyncIterator]();
  const pending: E[] = [];
  return {
    next: async () => {
      while (pending.length === 0) {
        const next = await messages.next();
        if (next.done) return { done: true, value: undefined };
        if (next.value.kind === 'events') pending.push(...(rowObjects(next.value.columns, next.value.rows) as E[]));
      }
      return { done: false, value: pending.shift()! };
    },
    return: async () => {
      await run.stop();
      return { done: true, value: undefined };
    },
  };
}
