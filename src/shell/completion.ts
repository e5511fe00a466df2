import { SIGNATURES } from '../agg/aggregate.js';
import { isResolveFailure } from '../plan/catalog.js';
import type { ProbeRegistry } from '../probes/registry.js';

/** The shell's own commands. */
export const DOT_COMMANDS = ['.help', '.explain', '.json', '.duration', '.every', '.vars', '.hosts', '.exit', '.quit'] as const;

const STAGES = ['where', 'let', 'select', 'sample', 'top', 'limit', 'every', 'window', 'last', 'record last', 'on', 'categorize'];
const WORDS = ['and', 'or', 'not', 'in', 'by', 'every', 'slide', 'scaled', 'asc', 'desc', 'now()'];

/** Candidates that start with what was typed, each once, in order. */
function starting(prefix: string, candidates: Iterable<string>): string[] {
  return [...new Set([...candidates].filter((c) => c.startsWith(prefix)))];
}

/**
 * Tab completion for the shell: probe points where a source goes (asked of
 * this machine's providers), stage words and aggregates right after a `|`,
 * the first source's fields and FayQL's words elsewhere, `$variables`, and
 * the shell's dot commands.
 */
export class Completer {
  constructor(
    private readonly registry: ProbeRegistry,
    private readonly variables: () => readonly string[],
  ) {}

  /**
   * Completions for the current line, given what earlier lines of the same
   * statement said: [candidates, the part of the line they replace].
   */
  async complete(earlier: string, line: string): Promise<[string[], string]> {
    if (earlier.trim() === '' && line.trimStart().startsWith('.')) {
      const word = line.trimStart();
      return [starting(word, DOT_COMMANDS), word];
    }
    const statement = `${earlier}\n${line}`;
    const token = /[^\s|,()]*$/.exec(line)![0];
    const before = statement.slice(0, statement.length - token.length);
    if (token.startsWith('$')) return [starting(token, this.variables().map((v) => `$${v}`)), token];
    // Still in the sources: nothing but probe points and commas so far.
    if (!before.includes('|')) return [await this.probePoints(token), token];
    // The first word of a stage.
    if (/\|\s*$/.test(before)) {
      const aggregates = Object.keys(SIGNATURES).map((a) => `${a}(`);
      return [starting(token, [...STAGES, ...aggregates]), token];
    }
    return [starting(token, [...this.fields(statement), ...WORDS]), token];
  }

  private async probePoints(token: string): Promise<string[]> {
    if (!token.includes(':')) {
      const prefixes = this.registry.providers.flatMap((p) => p.prefixes).map((p) => `${p}:`);
      return starting(token, prefixes);
    }
    try {
      const listings = await this.registry.list(`${token}*`);
      return starting(token, listings.filter((l) => l.available).map((l) => l.point)).slice(0, 500);
    } catch {
      return [];
    }
  }

  /** The first probe point's fields (`args.filename`, `duration`, …), if it resolves here. */
  private fields(statement: string): string[] {
    const first = /^\s*([^\s|,]+)/.exec(statement)?.[1];
    if (first === undefined) return [];
    const schema = this.registry.resolve(first);
    if (isResolveFailure(schema)) return [];
    return [...schema.fields.keys()];
  }
}
