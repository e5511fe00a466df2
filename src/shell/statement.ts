import { UsageError } from '../errors.js';
import { printString } from '../plan/print-expr.js';
import { Lexer } from '../query/lexer.js';

/*
 * How the shell reads what is typed: when a statement is complete, and what
 * host-set variables stand for.
 */

/**
 * Walks the characters of code that are outside quoted strings, until `visit`
 * returns true. Returns where it stopped (or the length), and whether a
 * string was left open.
 */
function scanCode(code: string, visit: (c: string, i: number) => boolean | void): { stoppedAt: number; openString: boolean } {
  let quote: string | undefined;
  for (let i = 0; i < code.length; i++) {
    const c = code[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (visit(c, i) === true) return { stoppedAt: i, openString: false };
  }
  return { stoppedAt: code.length, openString: quote !== undefined };
}

/** Without a trailing comment: `#` after whitespace starts one (a `#` inside a probe point, `app.js#handler`, does not). */
function withoutComment(line: string): string {
  return line.slice(0, scanCode(line, (c, i) => c === '#' && (i === 0 || /\s/.test(line[i - 1]!))).stoppedAt);
}

/**
 * Whether the text typed so far is a whole statement: a dot command, or a
 * query whose last line does not end in `|`, `,`, `\`, an open parenthesis or
 * an open string. Blank text is not a statement.
 */
export function isComplete(text: string): boolean {
  const trimmed = text.trim();
  if (trimmed === '') return false;
  if (trimmed.startsWith('.')) return true;
  const code = text.split('\n').map(withoutComment).join('\n').trimEnd();
  if (code === '' || /[|,\\(]$/.test(code) || /\b(and|or|not|where|by|in)$/.test(code)) return false;
  let depth = 0;
  const { openString } = scanCode(code, (c) => {
    if (c === '(') depth++;
    else if (c === ')') depth--;
  });
  return !openString && depth <= 0;
}

/** A statement as one line: comments and explicit continuations (`\` at a line's end) dropped, lines joined. */
export function joinLines(text: string): string {
  return text
    .split('\n')
    .map((l) => withoutComment(l).replace(/\\\s*$/, '').trim())
    .filter(Boolean)
    .join(' ');
}

/** `$name = hosts "glob", …`. */
const DEFINITION = /^\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*hosts\s+(.+)$/s;

/** Host sets by name: `$web = hosts "web-*"`, used as `on $web`. */
export class HostVariables {
  private readonly sets = new Map<string, readonly string[]>();

  /** If the statement defines a variable, defines it and returns its name; otherwise undefined. */
  define(statement: string): string | undefined {
    const match = DEFINITION.exec(statement.trim());
    if (!match) {
      if (/^\$[A-Za-z_]\w*\s*=/.test(statement.trim())) {
        throw new UsageError('a variable holds a set of hosts', { hint: 'e.g. $web = hosts "web-*", "db1"   then   syscall:openat | on $web | count() by host' });
      }
      return undefined;
    }
    const globs: string[] = [];
    const lexer = new Lexer(match[2]!);
    const wrong = () => new UsageError(`hosts takes quoted names or globs, separated by commas: ${match[2]!.trim()}`, { hint: 'e.g. $web = hosts "web-*", "db1"' });
    for (;;) {
      const token = lexer.next();
      if (token.kind !== 'string') throw wrong();
      globs.push(token.value as string);
      const next = lexer.next();
      if (next.kind === 'end') break;
      if (next.text !== ',') throw wrong();
    }
    this.sets.set(match[1]!, globs);
    return match[1]!;
  }

  /** The FayQL condition a variable stands for. */
  condition(name: string): string {
    const globs = this.sets.get(name);
    if (globs === undefined) {
      const known = [...this.sets.keys()].map((k) => `$${k}`).join(', ');
      throw new UsageError(`no variable $${name}`, { hint: known ? `defined: ${known}` : 'define one first, e.g. $web = hosts "web-*"' });
    }
    return `(${globs.map((g) => `host =~ ${printString(g)}`).join(' or ')})`;
  }

  /** The query with every $name (outside strings) replaced by its condition. */
  expand(query: string): string {
    let out = '';
    let quote: string | undefined;
    for (let i = 0; i < query.length; i++) {
      const c = query[i]!;
      if (quote) {
        out += c;
        if (c === '\\') out += query[++i] ?? '';
        else if (c === quote) quote = undefined;
        continue;
      }
      if (c === '"' || c === "'") quote = c;
      const name = c === '$' ? /^[A-Za-z_]\w*/.exec(query.slice(i + 1))?.[0] : undefined;
      if (name !== undefined) {
        out += this.condition(name);
        i += name.length;
      } else out += c;
    }
    return out;
  }

  names(): string[] {
    return [...this.sets.keys()];
  }

  describe(): string[] {
    return [...this.sets].map(([name, globs]) => `$${name} = hosts ${globs.map(printString).join(', ')}`);
  }
}
