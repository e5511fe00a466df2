import type { ResultMessage } from '../../src/cluster/cluster-stage.js';

/** What a flame graph draws: a count by a stack, made a tree of frames. */

export interface Frame {
  name: string;
  value: number;
  children: Frame[];
}

/** Whether a result is one stack and one count per row: what a flame graph draws. */
export function isStackResult(result: ResultMessage): boolean {
  const keys = result.columns.filter((c) => c.role === 'key');
  const aggregates = result.columns.filter((c) => c.role === 'aggregate');
  return keys.length === 1 && /stack/i.test(keys[0]!.name) && aggregates.length === 1 && (aggregates[0]!.function === 'count' || aggregates[0]!.function === 'sum');
}

/** The tree of folded stack lines (`outer;inner count`). */
export function stackTree(lines: readonly string[]): Frame {
  const root: Frame = { name: 'all', value: 0, children: [] };
  for (const line of lines) {
    const space = line.lastIndexOf(' ');
    const count = Number(line.slice(space + 1));
    if (!(count > 0)) continue;
    root.value += count;
    let node = root;
    for (const name of line.slice(0, space).split(';')) {
      let child = node.children.find((c) => c.name === name);
      if (!child) node.children.push((child = { name, value: 0, children: [] }));
      child.value += count;
      node = child;
    }
  }
  return root;
}
