import { globToRegExp } from '../plan/expr.js';

/*
 * The pure helpers a FayLINQ lambda may call. Inside a lambda they are read,
 * not run: each has a FayQL spelling (`minutes(5)` is `5m`, `now()` the time
 * the query started). Run directly they compute the same thing, in ns.
 */

/** Wall-clock time in ns since the epoch (in a query: when it started). */
export function now(): number {
  return Date.now() * 1e6;
}
export function nanoseconds(n: number): number {
  return n;
}
export function microseconds(n: number): number {
  return n * 1e3;
}
export function milliseconds(n: number): number {
  return n * 1e6;
}
export function seconds(n: number): number {
  return n * 1e9;
}
export function minutes(n: number): number {
  return n * 60e9;
}
export function hours(n: number): number {
  return n * 3600e9;
}
export function days(n: number): number {
  return n * 86400e9;
}

/** Whether text matches a glob (`*`, `?`, `[abc]`): FayQL's `=~`. */
export function matches(text: string, glob: string): boolean {
  return globToRegExp(glob).test(text);
}
