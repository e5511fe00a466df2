import type { AggregateFunction } from '../agg/aggregate.js';
import type { SourceSpan } from '../errors.js';
import type { SourceSchema, Unit } from './catalog.js';
import type { Expr } from './expr.js';

/** A probe point of the query, resolved on this machine. */
export interface BoundSource {
  readonly text: string;
  readonly span: SourceSpan;
  readonly schema: SourceSchema;
}

/** A named value: an output column, a group key, a shipped field. */
export interface Column {
  readonly name: string;
  readonly expr: Expr;
}

/**
 * One aggregate of the query: `p = quantiles(duration, 0.5, 0.99)` has name
 * `p`, function `quantiles`, argument `duration` and params [0.5, 0.99].
 */
export interface AggregateSpec {
  readonly name: string;
  readonly function: AggregateFunction;
  /** The value aggregated; undefined for count() and sample(n). */
  readonly argument: Expr | undefined;
  /** Constant parameters: lhist's min, max, step; quantiles' p; topk's k; sample's n. */
  readonly params: readonly number[];
  /** sample(n) keeps whole events: these columns of each. */
  readonly columns?: readonly Column[];
  /** Scale the result by 1 / the sampling rate (count and sum of a sampled query). */
  readonly scaled?: boolean;
  /** The unit of the result's values: the argument's, where it is a field with one and the aggregate keeps its values' unit. */
  readonly unit?: Unit;
}

/** Without an aggregate, a query streams events; with one, it produces grouped rows; with record, dumps. */
export type QueryOutput = EventsOutput | AggregateOutput | RecordOutput;

/**
 * The flight recorder: each machine keeps its most recent `size` events (these
 * columns of each) where they fire, and writes them out when `trigger` holds
 * for an event (that event last), or when the query ends if there is none.
 */
export interface RecordOutput {
  readonly kind: 'Record';
  readonly columns: readonly Column[];
  readonly size: number;
  readonly trigger: Expr | undefined;
}

export interface EventsOutput {
  readonly kind: 'Events';
  readonly columns: readonly Column[];
}

export interface AggregateOutput {
  readonly kind: 'Aggregate';
  readonly keys: readonly Column[];
  readonly aggregates: readonly AggregateSpec[];
}

/** Operations on aggregated rows (or, for Limit, on events), applied in order. */
export type RowOperation = RowFilter | RowCompute | RowTop | RowLimit | RowCategorize;

/** `categorize host by probe`: the rows become one per entity with its category (docs/mining.md); the last row operation. */
export interface RowCategorize {
  readonly kind: 'Categorize';
  /** The key column whose values are the entities. */
  readonly entity: string;
  /** The key columns whose values are the features. */
  readonly features: readonly string[];
  /** The count column (the query's first aggregate). */
  readonly count: string;
  /** Categories asked for; undefined: chosen. */
  readonly k?: number;
}

export interface RowFilter {
  readonly kind: 'Filter';
  readonly predicate: Expr;
}

export interface RowCompute {
  readonly kind: 'Compute';
  readonly columns: readonly Column[];
}

export interface RowTop {
  readonly kind: 'Top';
  readonly count: number;
  readonly by: string;
  readonly descending: boolean;
}

export interface RowLimit {
  readonly kind: 'Limit';
  readonly count: number;
}

/**
 * When results are emitted and what each covers. Every query is read in
 * periods; each period ends with a result. `every 1s` and `window 1s` cover
 * one period each (tumbling); `window 1m slide 10s` and `last 1m every 10s`
 * cover the last six; without any, one running result covers everything since
 * the start and is refreshed every period.
 */
export interface Windowing {
  /** Length of a period in ns; undefined: the refresh period chosen when the query runs. */
  readonly periodNs: number | undefined;
  /** What each result covers in ns (a multiple of the period); undefined: everything since the start. */
  readonly coverNs: number | undefined;
}

/**
 * A query as data, independent of where each part will run: what to listen
 * to, which events count, what to compute from them.
 */
export interface LogicalPlan {
  /** The query text this came from. */
  readonly query: string;
  readonly sources: readonly BoundSource[];
  /** Per-event predicate over fields (all `where`s before the aggregate, with `let`s inlined). */
  readonly filter: Expr | undefined;
  readonly output: QueryOutput;
  readonly rowOperations: readonly RowOperation[];
  readonly windowing: Windowing;
  /** Probability with which each event is kept (`sample 1%`), decided where it fires; undefined: all. */
  readonly sampleRate: number | undefined;
  /** Which hosts run the query (`on host =~ "web-*"`), a condition on `host`; undefined: every host. */
  readonly hosts: Expr | undefined;
  /** What `now()` meant: wall-clock ns since the epoch when the query was planned. */
  readonly startedAtNs: number;
}
