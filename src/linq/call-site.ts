import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FayError, lineAndColumn } from '../errors.js';

/** A mistake in a FayLINQ query (a lambda Fay will not run, a bad operator argument), located in the user's source. */
export class LambdaError extends FayError {
  readonly exitCode = 2;

  constructor(
    message: string,
    /** file:line:column of the offending piece (or of the call that passed it), when known. */
    readonly location: string | undefined,
    options: { hint?: string } = {},
  ) {
    super(location ? `${location}: ${message}` : message, options);
  }
}

/** Where in a lambda's text something is. */
export interface LambdaPiece {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

const OWN_DIRECTORY = fileURLToPath(new URL('.', import.meta.url));
const OWN_MODULE = /^(query|call-site|lambda|fay|spelling)\.[jt]s$/;

/** Whether a stack frame's file is FayLINQ's own (not the caller's). */
function isOwn(file: string): boolean {
  return file.startsWith('node:') || (file.startsWith(OWN_DIRECTORY) && OWN_MODULE.test(file.slice(OWN_DIRECTORY.length)));
}

/**
 * Where the user called an operator, taken from the stack when the operator
 * was called, so that a rejected lambda can be pointed at in the user's own
 * file: the piece's exact line and column when the lambda's text can be found
 * there (plain JavaScript), else the call's.
 */
export class CallSite {
  constructor(
    readonly operator: string,
    readonly file: string | undefined,
    readonly line: number | undefined,
    readonly column: number | undefined,
  ) {}

  /** The first stack frame outside FayLINQ's own modules. */
  static capture(operator: string): CallSite {
    const holder: { stack?: string } = {};
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 20;
    Error.captureStackTrace(holder);
    Error.stackTraceLimit = limit;
    for (const frame of (holder.stack ?? '').split('\n').slice(1)) {
      const match = /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?$/.exec(frame.trim());
      if (!match) continue;
      const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
      if (isOwn(file)) continue;
      return new CallSite(operator, file, Number(match[2]), Number(match[3]));
    }
    return new CallSite(operator, undefined, undefined, undefined);
  }

  error(message: string, piece?: LambdaPiece, hint?: string): LambdaError {
    const text = piece ? `${this.operator}: ${message}\n  ${piece.text.slice(piece.start, piece.end)}` : `${this.operator}: ${message}`;
    return new LambdaError(text, this.locate(piece), hint === undefined ? {} : { hint });
  }

  private locate(piece: LambdaPiece | undefined): string | undefined {
    if (this.file === undefined) return undefined;
    const at = `${this.file}:${this.line}:${this.column}`;
    if (piece === undefined) return at;
    try {
      const source = readFileSync(this.file, 'utf8');
      // The runtime's text of a lambda may be reformatted (tsx minifies whitespace, changes quotes, drops
      // types), so the piece is looked for by itself: its k-th occurrence after the call, where k counts
      // its occurrences in the lambda before it.
      const pattern = loosePattern(piece.text.slice(piece.start, piece.end));
      const before = [...piece.text.slice(0, piece.start).matchAll(pattern)].length;
      pattern.lastIndex = offsetOf(source, this.line!, this.column!);
      let found: RegExpExecArray | null = null;
      for (let i = 0; i <= before; i++) found = pattern.exec(source);
      if (found && found.index - offsetOf(source, this.line!, this.column!) < 4000) {
        const { line, column } = lineAndColumn(source, found.index);
        return `${this.file}:${line}:${column}`;
      }
    } catch {
      // Unreadable: the call's position will do.
    }
    return `${at} (column ${piece.start + 1} of the lambda)`;
  }
}

/** A piece of code as a pattern that ignores whitespace and the kind of quotes. */
function loosePattern(code: string): RegExp {
  const parts = [...code.replace(/\s+/g, '')].map((c) => (/["'`]/.test(c) ? '["\'`]' : c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  return new RegExp(parts.join('\\s*'), 'g');
}

function offsetOf(source: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const next = source.indexOf('\n', offset);
    if (next < 0) return source.length;
    offset = next + 1;
  }
  return offset + column - 1;
}
