import { UsageError } from '../errors.js';
import type { AggregateSpec, Windowing } from './logical.js';

/**
 * The bounds every query's text is checked against before anything runs, on the client and again
 * on each agent (docs/fayql.md, "Limits of the language"). Each keeps what a query can make Fay do
 * in proportion to what it says: no input, however long or deep, can make a parser, a planner or
 * a code generator overflow its stack, take seconds, or grow without bound.
 */
export const LANGUAGE_LIMITS = {
  /** Characters of a query's text: what the bus carries. */
  maxQueryChars: 64 * 1024,
  /** Characters of one probe point. */
  maxProbePointChars: 1024,
  /** Probe points of one query. */
  maxProbePoints: 64,
  /** Stages after the probe points. */
  maxStages: 64,
  /** How deep an expression nests: each parenthesis, operator, not, minus and call is a level. */
  maxNesting: 100,
  /**
   * Nodes of all of a query's expressions, once each let name is replaced by its expression:
   * `let b = a + a | let c = b + b | …` doubles each time, and would otherwise grow exponentially.
   */
  maxExpressionNodes: 10_000,
  /** Values of one `in (…)` list. */
  maxListValues: 1000,
  /** Characters of one glob (a =~ pattern, a host glob). */
  maxGlobChars: 1024,
  /** The shortest period results may come every (every, window … slide, --every, --refresh): 10 ms. */
  minPeriodNs: 10e6,
  /** The longest period, window or last: a week. */
  maxSpanNs: 7 * 86_400e9,
  /** Periods one window (or last) may span: each period's partial is kept until the window has passed it. */
  maxPeriodsPerWindow: 10_000,
} as const;

/** The largest integer FayQL takes: exact in the kernel's 64 bits and in JavaScript's numbers alike. */
export const MAX_INTEGER = Number.MAX_SAFE_INTEGER;

/**
 * Why a query's timing is out of bounds (periods too short or too long, windows of too many
 * periods), or undefined. Checked for the text's own clauses and again once --every is applied.
 */
export function windowingProblem({ periodNs, coverNs }: Windowing): string | undefined {
  const { minPeriodNs, maxSpanNs, maxPeriodsPerWindow } = LANGUAGE_LIMITS;
  if (periodNs !== undefined && periodNs < minPeriodNs) return `results come every ${minPeriodNs / 1e6}ms at the most often`;
  if (Math.max(periodNs ?? 0, coverNs ?? 0) > maxSpanNs) return `a period, window or last is at most ${maxSpanNs / 86_400e9} days`;
  if (coverNs !== undefined && periodNs !== undefined && coverNs / periodNs > maxPeriodsPerWindow) {
    return `a window spans at most ${maxPeriodsPerWindow} periods; this one spans ${Math.round(coverNs / periodNs)} (take a longer period)`;
  }
  return undefined;
}

/** Throws the windowing problem of settings given outside the text (--every, --refresh) as a usage error. */
export function checkWindowing(windowing: Windowing, what: string): void {
  const problem = windowingProblem(windowing);
  if (problem !== undefined) throw new UsageError(`${what}: ${problem}`);
}

/**
 * Caps of one query that hold whatever its probes are. When one is hit, results say what was folded
 * or dropped. What only one provider knows (how long a Node.js process may be stopped) is that
 * provider's own option, not a limit here.
 */
export interface QueryLimits {
  /** Groups a table keeps; the rest fold into one (other) row, counted. */
  readonly maxGroups: number;
  /** Events one machine's probes may ship per second; the rest are dropped where they fire, counted. */
  readonly maxEventsPerSecond: number;
  /** Bytes the aggregate states of one table may take; lowers maxGroups to fit. */
  readonly maxMemoryBytes: number;
}

export const DEFAULT_LIMITS: QueryLimits = {
  maxGroups: 10_000,
  maxEventsPerSecond: 100_000,
  maxMemoryBytes: 256 * 1024 * 1024,
};

/** The most one group's state for an aggregate can take, in bytes (the sketches at their bounds). */
function stateBytes(a: AggregateSpec): number {
  switch (a.function) {
    case 'hist':
      return 66 * 16;
    case 'lhist':
      return (Math.ceil((a.params[1]! - a.params[0]!) / a.params[2]!) + 2) * 16;
    case 'quantiles':
      return 2 * 2048 * 16;
    case 'distinct':
      return 4096 + 256 * 16;
    case 'topk':
      return Math.max(4 * a.params[0]!, 64) * 64;
    case 'sample':
      return a.params[0]! * 256;
    default:
      return 32;
  }
}

/** Bytes one group may take: its key and every aggregate's state at its largest. */
export function groupBytes(aggregates: readonly AggregateSpec[]): number {
  return 128 + aggregates.reduce((n, a) => n + stateBytes(a), 0);
}

/** How many groups a table may keep: the group cap, lowered so that the states fit in memory. */
export function effectiveMaxGroups(aggregates: readonly AggregateSpec[], limits: Pick<QueryLimits, 'maxGroups' | 'maxMemoryBytes'>): number {
  return Math.max(1, Math.min(limits.maxGroups, Math.floor(limits.maxMemoryBytes / groupBytes(aggregates))));
}
