import { shardOf, SHARDS } from '../bus/protocol.js';

/**
 * Which aggregator merges which hosts. Host names fall into SHARDS shards (`shardOf`, a hash of the
 * name, which is also a token of the subject a host's windows go on), and each shard goes to the
 * live aggregator with the highest score for it (rendezvous hashing): every aggregator and the
 * client compute the same owners from the same set of names, without asking anyone, and when an
 * aggregator comes or goes only the shards it wins or held move. An agent knows nothing of the
 * tree: it sends its windows on its shard's subject, and whoever owns the shard hears them.
 */

/** FNV-1a of a text, 32 bits. */
function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A 32-bit mix of the score, so that names differing in a last character do not score alike. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Every shard's token, 00 … ff. */
export const SHARD_TOKENS: readonly string[] = Array.from({ length: SHARDS }, (_, i) => i.toString(16).padStart(2, '0'));

/** The aggregator that owns a shard among `aggregators` (names), or undefined when there is none. */
export function ownerOf(shard: string, aggregators: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const name of aggregators) {
    const score = mix(fnv(`${name}/${shard}`));
    if (score > bestScore || (score === bestScore && best !== undefined && name < best)) {
      best = name;
      bestScore = score;
    }
  }
  return best;
}

/** The shards an aggregator owns among `aggregators`. */
export function shardsOf(name: string, aggregators: readonly string[]): string[] {
  return SHARD_TOKENS.filter((s) => ownerOf(s, aggregators) === name);
}

/** The tree over `hosts`: each aggregator with the hosts it merges (those of no aggregator under undefined). */
export function treeOf(hosts: readonly string[], aggregators: readonly string[]): Map<string | undefined, string[]> {
  const owners = new Map(SHARD_TOKENS.map((s) => [s, ownerOf(s, aggregators)]));
  const tree = new Map<string | undefined, string[]>();
  for (const host of hosts) {
    const owner = owners.get(shardOf(host));
    let list = tree.get(owner);
    if (list === undefined) tree.set(owner, (list = []));
    list.push(host);
  }
  return tree;
}

/** Up to `max` names, and how many more. */
function someOf(names: readonly string[], max = 8): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/**
 * The tree a query will use, as `fay explain --cluster` prints it: each level's aggregators with what
 * they merge (hosts, or the aggregators below), and what the client merges per period. `hosts` are
 * the agents the query selects; levels count from 1 while each has a live aggregator.
 */
export function describeTree(hosts: readonly string[], aggregators: readonly { name: string; level: number; load: { busy: number } }[], tree: boolean | undefined): string {
  const lines = ['merge tree:'];
  const byLevel: { name: string; load: { busy: number } }[][] = [];
  for (let level = 1; aggregators.some((a) => a.level === level); level++) byLevel.push(aggregators.filter((a) => a.level === level));
  if (tree === false || byLevel.length === 0) {
    lines.push(
      `  none: the client merges the windows of all ${hosts.length} host${hosts.length === 1 ? '' : 's'} itself each period` +
        (tree === false ? ' (--no-tree)' : ' (no aggregator is connected: fay aggregator --nats … starts one)'),
    );
    return lines.join('\n');
  }
  const top = byLevel[byLevel.length - 1]!;
  const path = [`${hosts.length} hosts`, ...byLevel.map((level) => `${level.length} aggregators`), 'the client'].join(' → ');
  lines.push(`  ${path}, which merges ${top.length} partials per period instead of ${hosts.length} windows`);
  lines.push(`  hosts (and, above the first level, the aggregators below) go by ${SHARDS} shards of their names, each shard to one aggregator of the level above (rendezvous hashing); when one goes, only its shards move`);
  let below: readonly string[] = hosts;
  byLevel.forEach((level, i) => {
    const names = level.map((a) => a.name);
    const owned = treeOf(below, names);
    if (byLevel.length > 1) lines.push(`  level ${i + 1}:`);
    for (const a of level) {
      const mine = owned.get(a.name) ?? [];
      const what = i === 0 ? 'host' : 'aggregator';
      lines.push(`  ${byLevel.length > 1 ? '  ' : ''}${a.name} (${shardsOf(a.name, names).length} shards, busy ${(a.load.busy * 100).toFixed(0)}%): ${mine.length} ${what}${mine.length === 1 ? '' : 's'}${mine.length > 0 ? `: ${someOf(mine)}` : ''}`);
    }
    below = names;
  });
  return lines.join('\n');
}
