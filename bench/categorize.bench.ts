/**
 * The categorize stage (issue 21), side by side in one run: one window of `count() by host, probe`
 * from HOSTS hosts × CALLS system calls (synthetic counts: five behaviours, each host a noisy copy
 * of one), merged as the cluster stage merges it (each host's partial decoded from the wire and
 * merged into the window's table) against the same window categorised (finalised rows to
 * categories: vectors, k chosen among 2–8, k-means++, features). ROUNDS windows; medians. The
 * garbage of each phase is collected before the next is timed (run with --expose-gc), so that
 * neither is charged the other's. Target: categorising under 10% of the window's merge time, and
 * under 100 ms.
 */
import { GroupTable } from '../src/agg/group-table.js';
import { createAggregate } from '../src/agg/registry.js';
import { finalizeRows } from '../src/cluster/rows.js';
import { Categorizer } from '../src/mine/categorizer.js';
import { prng } from '../src/prng.js';
import { planStages } from '../src/plan/planner.js';
import { compileQuery } from '../src/query/compile.js';
import { fixtureRegistry } from '../src/testing/catalog-fixture.js';

const HOSTS = Number(process.env.FAY_BENCH_HOSTS ?? 500);
const CALLS = Number(process.env.FAY_BENCH_CALLS_KINDS ?? 300);
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 7);
const BEHAVIOURS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) throw new Error('run with node --expose-gc (npm run bench does)');

const plan = planStages(compileQuery('syscall:* | count() by host, probe every 10s | categorize host by probe', fixtureRegistry()));
if (plan.cluster.output.kind !== 'Aggregate') throw new Error('an aggregate plan');
const output = plan.cluster.output;
const kinds = output.aggregates.map(createAggregate);
const categorize = plan.cluster.rowOperations.find((op) => op.kind === 'Categorize')!;

/** Each behaviour: a few calls it makes a lot of, the rest a little. */
const random = prng(7);
const calls = Array.from({ length: CALLS }, (_, i) => `syscall:call_${String(i).padStart(3, '0')}`);
const behaviours = Array.from({ length: BEHAVIOURS }, () => calls.map(() => (random() < 0.05 ? 1000 + random() * 20_000 : random() * 50)));

/** One window's partials as the hosts send them: wire JSON, a noisy copy of the host's behaviour. */
function windowWires(window: number): string[] {
  const noise = prng(100 + window);
  return Array.from({ length: HOSTS }, (_, h) => {
    const table = new GroupTable(kinds);
    const behaviour = behaviours[h % BEHAVIOURS]!;
    calls.forEach((call, c) => {
      const n = Math.round(behaviour[c]! * (0.8 + 0.4 * noise()));
      if (n > 0) table.mergeGroup([`host-${String(h).padStart(4, '0')}`, call], [kinds[0]!.decode(n)]);
    });
    return JSON.stringify(table.encode());
  });
}

const merge: number[] = [];
const categorise: number[] = [];
const categorizer = new Categorizer(categorize);
let categories = 0;
for (let round = -1; round < ROUNDS; round++) {
  const wires = windowWires(round + 1);
  // The merge: each host's partial decoded from its wire form and merged into the window (as the cluster stage does).
  collect();
  let started = performance.now();
  const table = new GroupTable(kinds, { maxGroups: HOSTS * CALLS });
  for (const wire of wires) table.merge(GroupTable.decode(kinds, JSON.parse(wire)));
  const mergeMs = performance.now() - started;
  const rows = finalizeRows(table, output, plan.cluster.rowOperations);
  collect();
  started = performance.now();
  const result = categorizer.categorize(rows, true);
  const categoriseMs = performance.now() - started;
  categories = new Set(result.rows.rows.map((r) => r[1])).size;
  if (round < 0) continue; // a warm-up window
  merge.push(mergeMs);
  categorise.push(categoriseMs);
  process.stderr.write(`window ${round + 1}/${ROUNDS}: merge ${mergeMs.toFixed(1)} ms, categorize ${categoriseMs.toFixed(1)} ms (${categories} categories)\n`);
}
const ratio = median(categorise.map((c, i) => c / merge[i]!));
console.log(`one window of count() by host, probe: ${HOSTS} hosts × ${CALLS} calls (${(HOSTS * CALLS).toLocaleString('en')} groups), ${BEHAVIOURS} behaviours; medians of ${ROUNDS} windows`);
console.log(`merging the window (decode + merge every host's partial)   ${median(merge).toFixed(1)} ms  baseline`);
console.log(`categorize host by probe (${categories} categories found)   ${median(categorise).toFixed(1)} ms  ${(ratio * 100).toFixed(1)}% of the merge (target < 10%, and < 100 ms)`);
console.log(JSON.stringify({ bench: 'categorize', hosts: HOSTS, calls: CALLS, rounds: ROUNDS, merge_ms: median(merge), categorize_ms: median(categorise), ratio, categories }));
