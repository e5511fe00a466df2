/**
 * Errors a user can cause. Each says what went wrong and what to do next, and
 * is printed without a stack trace. Anything else that is thrown is a bug.
 *
 * Exit codes: 2 for a bad command line or query, 3 for something about this
 * machine (permissions, missing tools, a probe the kernel refuses), 1 for bugs,
 * and 4 (EXIT_INCOMPLETE) for an answer that lacks part of what it was asked.
 */

/** The exit code of a query whose answer is incomplete: a host failed, was lost or cut off mid-query (the output says which, when, and why). */
export const EXIT_INCOMPLETE = 4;
export abstract class FayError extends Error {
  abstract readonly exitCode: 2 | 3;
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }

  /** The whole text shown to the user. */
  describe(): string {
    return this.hint ? `${this.message}\n${this.hint}` : this.message;
  }
}

/** A bad command line: unknown option, bad duration, missing argument. */
export class UsageError extends FayError {
  readonly exitCode = 2;
}

/** A half-open range of character offsets into a query's text. */
export interface SourceSpan {
  readonly start: number;
  readonly end: number;
}

/** Line and column (both 1-based) of an offset in a text. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Characters of a long line shown around a mistake in it. */
const EXCERPT_CHARS = 100;

/**
 * A mistake in a query, located in its text. Printed like a compiler error:
 * the line, a caret under the column, and what was expected.
 */
export class QueryError extends FayError {
  readonly exitCode = 2;

  constructor(
    message: string,
    readonly source: string,
    readonly span: SourceSpan,
    options: { hint?: string } = {},
  ) {
    super(message, options);
  }

  override describe(): string {
    const { line, column } = lineAndColumn(this.source, this.span.start);
    const lines = this.source.split('\n');
    const whole = lines[line - 1] ?? '';
    // A long line is shown around the mistake: a window of it, cut with … at either end.
    const from = whole.length <= EXCERPT_CHARS ? 0 : Math.max(0, Math.min(column - 1 - EXCERPT_CHARS / 2, whole.length - EXCERPT_CHARS));
    const head = from > 0 ? '…' : '';
    const cut = whole.slice(from, from + EXCERPT_CHARS);
    const text = `${head}${cut}${from + EXCERPT_CHARS < whole.length ? '…' : ''}`;
    const at = column - 1 - from + head.length;
    const width = Math.max(1, Math.min(this.span.end - this.span.start, cut.length + head.length - at));
    const gutter = `${line} | `;
    const out = [
      `error at line ${line}, column ${column}: ${this.message}`,
      `${gutter}${text}`,
      `${' '.repeat(gutter.length + at)}${'^'.repeat(width)}`,
    ];
    if (this.hint) out.push(this.hint);
    return out.join('\n');
  }
}

/** Something about this machine stops the query: permissions, tools, kernel. */
export class EnvironmentError extends FayError {
  readonly exitCode = 3;
}

/** A probe point exists in the language but cannot run on this machine. */
export class ProbeUnavailableError extends EnvironmentError {
  constructor(
    readonly point: string,
    readonly reason: string,
    options: { hint?: string } = {},
  ) {
    super(`${point} cannot be probed on this machine: ${reason}`, options);
  }
}

/** The closest candidates to a misspelled name, best first. */
export function closestNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  const scored: { candidate: string; distance: number }[] = [];
  // Nothing is close to a name this long; and the edit distance to it would take seconds to find.
  if (name.length > 256) return [];
  const limit = Math.max(2, Math.floor(name.length / 3));
  const lower = name.toLowerCase();
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    const contains = other.includes(lower) && name.length >= 3;
    // The distance is at least the difference in length: most candidates are ruled out by that alone.
    if (!contains && Math.abs(other.length - lower.length) > limit) continue;
    const distance = editDistance(lower, other);
    if (distance <= limit || contains) scored.push({ candidate, distance: contains ? Math.min(distance, limit) : distance });
  }
  scored.sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate));
  return scored.slice(0, max).map((s) => s.candidate);
}

/** "did you mean a, b or c?", or nothing when there is no close name. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const names = closestNames(name, candidates);
  if (names.length === 0) return undefined;
  if (names.length === 1) return `did you mean ${names[0]}?`;
  return `did you mean ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}?`;
}

function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return previous[b.length]!;
}
