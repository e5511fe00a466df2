import type { ResultMessage } from '../cluster/cluster-stage.js';
import type { QueryNode } from '../query/ast.js';
import { printableLine } from './printable.js';

/**
 * Folded stacks, the input of flame-graph tools (flamegraph.pl, inferno, speedscope): one line per
 * row, its stack's frames from the outermost in, joined by `;`, then a space and its count.
 */

/**
 * Why a query's rows are not one stack and one number each (what --folded prints and --pprof
 * writes), or undefined when they are. `flag` names the option in the message.
 */
export function foldedShapeProblem(query: QueryNode, flag: '--folded' | '--pprof' = '--folded'): string | undefined {
  const at = query.stages.findLastIndex((s) => s.kind === 'Aggregate');
  const aggregate = query.stages[at];
  const example = "e.g. 'profile:js:pid=1234:99hz | count() by jsstack'";
  if (aggregate?.kind !== 'Aggregate') return `${flag} takes aggregated rows, and this query streams events: end it with count() by a stack, ${example}`;
  const [only] = aggregate.aggregates;
  if (aggregate.aggregates.length !== 1 || !['count', 'sum'].includes(only!.function.name) || aggregate.keys.length !== 1) {
    return `${flag} takes one stack and one number per row: the query's aggregate is one count() or sum() by one key, ${example}`;
  }
  if (query.stages.slice(at + 1).some((s) => s.kind === 'Select')) return `${flag} takes the aggregate as it is: a select after it changes the columns`;
  return undefined;
}

/**
 * A result as folded stacks. A stack cell holds its frames innermost first, one per line (a kernel
 * stack indented, between empty lines); a key that is not a stack is a stack of one frame. A `;`
 * in a frame, which would split it, becomes `:`; an empty stack (a kernel stack sampled in user
 * space) is `(empty)`.
 */
export function foldedLines(result: ResultMessage): string[] {
  const key = result.columns.findIndex((c) => c.role === 'key');
  const value = result.columns.findIndex((c) => c.role === 'aggregate');
  if (key < 0 || value < 0) return [];
  return result.rows.flatMap((row) => {
    const count = row[value];
    if (typeof count !== 'number' || count <= 0) return [];
    const cell = row[key];
    const text = typeof cell === 'string' ? cell : typeof cell === 'number' || typeof cell === 'boolean' ? String(cell) : '(other)';
    const frames = text
      .split('\n')
      .map((f) => printableLine(f.trim().replaceAll(';', ':')))
      .filter((f) => f !== '')
      .reverse();
    return [`${frames.length > 0 ? frames.join(';') : '(empty)'} ${Math.round(count)}`];
  });
}
