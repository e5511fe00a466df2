/**
 * Data mining without any special support, as the original Fay put it: a FayLINQ query counts
 * this machine's system calls by process and call for a few seconds, and plain TypeScript below
 * (no Fay, no library) clusters the processes by the mix of their calls with k-means. Fay's own
 * `categorize` stage does this per window at the cluster stage (docs/mining.md); this shows the
 * answer of a query is ordinary data to do anything with.
 *
 *   npx tsx examples/categorize-by-hand.ts [seconds] [k]
 */
import { fileURLToPath } from 'node:url';
import { connect, type Fay } from 'fay';

/** Counts of every system call by process and call, for `seconds` (running `meanwhile` once the probes are in). */
export async function callMix(fay: Fay, seconds: number, meanwhile?: () => Promise<unknown>): Promise<Map<string, Map<string, number>>> {
  const run = fay
    .syscalls('*')
    .groupBy((e) => ({ comm: e.comm, call: e.probe }))
    .count()
    .duration(`${seconds}s`)
    .start();
  const mix = new Map<string, Map<string, number>>();
  const reading = (async () => {
    for await (const m of run) {
      if (m.kind !== 'result' || !m.complete) continue;
      mix.clear();
      for (const [comm, call, count] of m.rows as [string, string, number][]) {
        if (!mix.has(comm)) mix.set(comm, new Map());
        mix.get(comm)!.set(call, count);
      }
    }
  })();
  await run.attached;
  await meanwhile?.();
  await reading;
  return mix;
}

/** Each process's calls as shares of its own (the mix, not the load), over the same calls for all. */
export function vectors(mix: Map<string, Map<string, number>>): { names: string[]; calls: string[]; points: number[][] } {
  const names = [...mix.keys()].sort();
  const calls = [...new Set([...mix.values()].flatMap((m) => [...m.keys()]))].sort();
  const points = names.map((name) => {
    const counts = mix.get(name)!;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    return calls.map((c) => (counts.get(c) ?? 0) / total);
  });
  return { names, calls, points };
}

const distance = (a: number[], b: number[]) => Math.sqrt(a.reduce((sum, x, i) => sum + (x - b[i]!) ** 2, 0));

/** Plain k-means: start from k spread-out points (each the farthest from those chosen), then alternate assigning and averaging. */
export function kmeans(points: number[][], k: number): number[] {
  const centres = [points[0]!];
  while (centres.length < Math.min(k, points.length)) {
    const farthest = points.reduce((best, p) => (Math.min(...centres.map((c) => distance(p, c))) > Math.min(...centres.map((c) => distance(best, c))) ? p : best));
    centres.push(farthest);
  }
  let assignment: number[] = [];
  for (let round = 0; round < 100; round++) {
    const next = points.map((p) => centres.reduce((best, c, i) => (distance(p, c) < distance(p, centres[best]!) ? i : best), 0));
    if (next.every((c, i) => c === assignment[i])) break;
    assignment = next;
    centres.forEach((_, c) => {
      const members = points.filter((_, i) => assignment[i] === c);
      if (members.length > 0) centres[c] = members[0]!.map((_, j) => members.reduce((sum, m) => sum + m[j]!, 0) / members.length);
    });
  }
  return assignment;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [seconds = '3', k = '3'] = process.argv.slice(2);
  const fay = await connect();
  const mix = await callMix(fay, Number(seconds));
  await fay.close();
  const { names, calls, points } = vectors(mix);
  const groups = kmeans(points, Number(k));
  for (let c = 0; c < Number(k); c++) {
    const members = names.filter((_, i) => groups[i] === c);
    if (members.length === 0) continue;
    // What its members do most, on average.
    const mean = calls.map((_, j) => points.filter((_, i) => groups[i] === c).reduce((sum, p) => sum + p[j]!, 0) / members.length);
    const top = calls.map((call, j) => [call.replace('syscall:', ''), mean[j]!] as const).sort((a, b) => b[1] - a[1]).slice(0, 3);
    console.log(`category ${c + 1} (${members.length}): ${members.join(', ')}\n  mostly ${top.map(([call, share]) => `${call} ${(share * 100).toFixed(0)}%`).join(', ')}`);
  }
}
