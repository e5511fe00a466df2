import { QueryError, type SourceSpan } from '../errors.js';
import { MAX_INTEGER } from '../plan/limits.js';
import { DURATION_UNITS, OPERATORS, type Token } from './tokens.js';

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const DIGIT = /[0-9]/;

/**
 * Turns FayQL text into tokens. Probe points (`uprobe:/usr/bin/node:uv_fs_*`)
 * are lexed in a mode of their own, asked for by the parser, because paths and
 * globs would otherwise fall apart into operators.
 */
export class Lexer {
  private offset = 0;

  constructor(readonly source: string) {}

  get position(): number {
    return this.offset;
  }

  /** Continue lexing from an offset (the parser rewinds to re-read a probe point). */
  reset(offset: number): void {
    this.offset = offset;
  }

  next(): Token {
    this.skipTrivia();
    const start = this.offset;
    const source = this.source;
    if (start >= source.length) return { kind: 'end', text: '', span: { start, end: start } };
    const ch = source[start]!;
    if (IDENT_START.test(ch)) return this.identifier();
    if (DIGIT.test(ch) || (ch === '.' && DIGIT.test(source[start + 1] ?? ''))) return this.number();
    if (ch === '"' || ch === "'") return this.string(ch);
    for (const op of OPERATORS) {
      if (source.startsWith(op, start)) {
        this.offset += op.length;
        return { kind: 'operator', text: op, span: { start, end: this.offset } };
      }
    }
    throw new QueryError(`unexpected character ${JSON.stringify(ch)}`, source, { start, end: start + 1 });
  }

  /**
   * Reads one probe point: `provider:part[:part…]`. A part runs until
   * whitespace, `|`, `,` or the next `:`, or is a quoted string (for paths
   * with odd characters).
   */
  probePoint(): Token {
    this.skipTrivia();
    const start = this.offset;
    const source = this.source;
    if (!IDENT_START.test(source[start] ?? '')) {
      const found = start >= source.length ? 'end of query' : JSON.stringify(source[start]);
      throw new QueryError(`expected a probe point such as syscall:openat, found ${found}`, source, {
        start,
        end: Math.min(start + 1, source.length),
      });
    }
    while (this.offset < source.length) {
      const ch = source[this.offset]!;
      if (ch === '"' || ch === "'") {
        this.string(ch);
        continue;
      }
      if (/\s/.test(ch) || ch === '|' || ch === ',') break;
      this.offset++;
    }
    return { kind: 'probe-point', text: source.slice(start, this.offset), span: { start, end: this.offset } };
  }

  private skipTrivia(): void {
    const source = this.source;
    while (this.offset < source.length) {
      const ch = source[this.offset]!;
      if (ch === '#') {
        while (this.offset < source.length && source[this.offset] !== '\n') this.offset++;
      } else if (/\s/.test(ch)) {
        this.offset++;
      } else {
        break;
      }
    }
  }

  private identifier(): Token {
    const start = this.offset;
    while (this.offset < this.source.length && IDENT_PART.test(this.source[this.offset]!)) this.offset++;
    return { kind: 'identifier', text: this.source.slice(start, this.offset), span: { start, end: this.offset } };
  }

  private number(): Token {
    const source = this.source;
    const start = this.offset;
    let value: number;
    let fraction = false;
    if (source.startsWith('0x', start) || source.startsWith('0X', start)) {
      this.offset += 2;
      while (/[0-9a-fA-F_]/.test(source[this.offset] ?? '')) this.offset++;
      value = Number.parseInt(source.slice(start + 2, this.offset).replaceAll('_', ''), 16);
    } else {
      while (/[0-9_]/.test(source[this.offset] ?? '')) this.offset++;
      if (source[this.offset] === '.' && DIGIT.test(source[this.offset + 1] ?? '')) {
        fraction = true;
        this.offset++;
        while (/[0-9_]/.test(source[this.offset] ?? '')) this.offset++;
      }
      value = Number(source.slice(start, this.offset).replaceAll('_', ''));
    }
    const numberEnd = this.offset;
    while (/[A-Za-zµ]/.test(source[this.offset] ?? '')) this.offset++;
    const unit = source.slice(numberEnd, this.offset);
    const span = { start, end: this.offset };
    if (unit === '') {
      this.checkMagnitude(value, fraction, { start, end: numberEnd }, 'numbers');
      return { kind: 'number', text: source.slice(start, this.offset), span, value };
    }
    // Own units only: `1constructor` is no unit, whatever Object.prototype holds.
    const scale = Object.hasOwn(DURATION_UNITS, unit) ? DURATION_UNITS[unit] : undefined;
    if (scale === undefined) {
      throw new QueryError(`unknown unit "${unit.length > 40 ? `${unit.slice(0, 40)}…` : unit}"`, source, { start: numberEnd, end: this.offset }, {
        hint: 'durations take ns, us, ms, s, m, h or d (e.g. 5m, 1ms)',
      });
    }
    const ns = Math.round(value * scale);
    this.checkMagnitude(ns, false, span, 'durations');
    return { kind: 'duration', text: source.slice(start, this.offset), span, value: ns };
  }

  /** Integers (and durations, in ns) must be exact in the kernel's 64 bits and in JavaScript: at most 2^53 − 1. */
  private checkMagnitude(value: number, fraction: boolean, span: SourceSpan, what: string): void {
    if (fraction ? Number.isFinite(value) : Number.isSafeInteger(value)) return;
    throw new QueryError(`${what} in FayQL are at most ${MAX_INTEGER}${what === 'durations' ? ' ns (104 days)' : ''}`, this.source, span, {
      hint: 'a larger number would not be exact, in the kernel or in JavaScript',
    });
  }

  private string(quote: string): Token {
    const source = this.source;
    const start = this.offset;
    this.offset++;
    let value = '';
    while (true) {
      if (this.offset >= source.length || source[this.offset] === '\n') {
        throw new QueryError('unterminated string', source, { start, end: this.offset }, {
          hint: `close it with ${quote}`,
        });
      }
      const ch = source[this.offset]!;
      if (ch === quote) {
        this.offset++;
        break;
      }
      if (ch === '\\') {
        value += this.escape();
        continue;
      }
      value += ch;
      this.offset++;
    }
    return { kind: 'string', text: source.slice(start, this.offset), span: { start, end: this.offset }, value };
  }

  private escape(): string {
    const source = this.source;
    const at = this.offset;
    const ch = source[at + 1];
    this.offset += 2;
    switch (ch) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case '0': return '\0';
      case '\\': return '\\';
      case '"': return '"';
      case "'": return "'";
      case 'x': {
        const hex = source.slice(at + 2, at + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
          throw new QueryError('\\x takes two hex digits', source, { start: at, end: at + 2 });
        }
        this.offset += 2;
        return String.fromCharCode(Number.parseInt(hex, 16));
      }
      default:
        throw new QueryError(`unknown escape \\${ch ?? ''}`, source, { start: at, end: at + 2 }, {
          hint: 'escapes are \\n \\t \\r \\0 \\\\ \\" \\\' and \\xNN',
        });
    }
  }
}
