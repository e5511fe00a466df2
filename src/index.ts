/**
 * Fay as a library: FayLINQ queries in TypeScript over the same plans as FayQL.
 *
 *   import { connect, minutes, now } from 'fay';
 *   const fay = await connect();
 *   const n = await fay.tracepoint('kmem:kmalloc*').where((e) => e.time > now() - minutes(5)).duration('4s').count();
 */
export { connect, Fay, type ConnectOptions } from './linq/fay.js';
export { Query, Grouped, Aggregated, Aggregator, Taken, type Aggregate, type Window, type FinalResult, type QueryRunner, type CategoryRow } from './linq/query.js';
export type { FeaturesCell } from './mine/categorizer.js';
export type { FeatureDifference } from './mine/categorize.js';
export { LambdaError } from './linq/call-site.js';
export { now, nanoseconds, microseconds, milliseconds, seconds, minutes, hours, days, matches } from './linq/helpers.js';
export type * from './linq/events.js';
export type { HistResult, HistBucket, QuantilesResult, TopKResult, SampleResult } from './agg/aggregate.js';
export { FayError, QueryError, UsageError, EnvironmentError } from './errors.js';
