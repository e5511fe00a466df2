import { QueryError } from '../../src/errors.js';
import { Lexer } from '../../src/query/lexer.js';
import { KEYWORDS, type Token } from '../../src/query/tokens.js';

/**
 * FayQL coloured for the editor, with the query language's own lexer: the probe points the query
 * starts with, keywords, functions (a name before `(`), numbers and durations, strings, the pipe.
 * Text the lexer cannot read (a query being typed) is left as it is from there on.
 */

export type TokenClass = 'probe' | 'keyword' | 'function' | 'number' | 'string' | 'pipe' | 'operator' | 'name';

export interface Coloured {
  readonly start: number;
  readonly end: number;
  readonly kind: TokenClass;
}

function classOf(token: Token, next: () => Token | undefined): TokenClass {
  switch (token.kind) {
    case 'number':
    case 'duration':
      return 'number';
    case 'string':
      return 'string';
    case 'probe-point':
      return 'probe';
    case 'operator':
      return token.text === '|' ? 'pipe' : 'operator';
    default:
      if (KEYWORDS.has(token.text)) return 'keyword';
      return next()?.text === '(' ? 'function' : 'name';
  }
}

/** The coloured spans of a query's text, in order (what lies between them is plain). */
export function colour(text: string): Coloured[] {
  const lexer = new Lexer(text);
  const out: Coloured[] = [];
  const tokens: Token[] = [];
  try {
    // The probe points first (`syscall:openat, syscall:read | …`), lexed in their own mode.
    if (/^\s*[A-Za-z_]/.test(text)) {
      tokens.push(lexer.probePoint());
      for (;;) {
        const at = lexer.position;
        const comma = lexer.next();
        if (comma.text !== ',') {
          lexer.reset(at);
          break;
        }
        tokens.push(comma, lexer.probePoint());
      }
    }
    for (let token = lexer.next(); token.kind !== 'end'; token = lexer.next()) tokens.push(token);
  } catch (error) {
    if (!(error instanceof QueryError)) throw error;
  }
  tokens.forEach((token, i) => out.push({ start: token.span.start, end: token.span.end, kind: classOf(token, () => tokens[i + 1]) }));
  return out;
}

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ESCAPES[c]!);

/** The text as HTML, each coloured span in a <span class="tok-…">. */
export function highlightHtml(text: string): string {
  let html = '';
  let at = 0;
  for (const c of colour(text)) {
    html += escape(text.slice(at, c.start));
    html += `<span class="tok-${c.kind}">${escape(text.slice(c.start, c.end))}</span>`;
    at = c.end;
  }
  // A final newline needs something after it to take up its line.
  return `${html}${escape(text.slice(at))}\n`;
}
