/**
 * What reading an argument's nested field costs a call: a small function given a request object
 * (`handle({ req: { url, headers } })`) called 10M times in the test target, pinned to one CPU, plain;
 * under `count()` (kept by the probe's hooks: no handler runs); under `sum(args[0].length)` (a
 * handler, reading the argument itself); under `count() by args[0].req.url` (a key read two levels
 * down, own data properties only) and `sum(args[0].req.url.length)` (three). Each round runs every
 * case once in a random order; the figures are medians of the rounds, each case's cost the ns it
 * adds to a call, the nested reads' put next to a plain count's and to a handler's reading the
 * argument itself (what the walk down adds).
 */
import { availableParallelism } from 'node:os';
import { localCluster } from '../src/frontend/local-cluster.js';
import { startNodeTarget } from '../src/testing/node-target.js';

const CALLS = Number(process.env.FAY_BENCH_JS_CALLS ?? 10_000_000);
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const cluster = localCluster();
const target = await startNodeTarget('bench-target.cjs', { cpu: Math.max(0, availableParallelism() - 1) });
const loop = async () => Number(await target.run('nested', CALLS));

/** ns per call of the loop under a query (its edit taken out at the end, so that plain runs the function as it was). */
async function under(rest: string): Promise<number> {
  const run = cluster.run(`js:pid=${target.pid}:./bench-target.cjs#handle | ${rest}`, { providerOptions: { node: { keepEditsMs: 0 } } });
  await run.attached;
  const ns = await loop();
  await run.stop();
  let counted = 0;
  for await (const m of run) if (m.kind === 'result' && m.complete) counted = m.rows.reduce((n, r) => n + (typeof r[r.length - 1] === 'number' ? 1 : 0), 0);
  if (counted === 0) throw new Error(`the probe of ${rest} gave no row`);
  return ns;
}

const cases = {
  plain: loop,
  count: () => under('count()'),
  flat: () => under('sum(args[0].length)'),
  keyed: () => under('count() by args[0].req.url'),
  summed: () => under('sum(args[0].req.url.length)'),
};
type Case = keyof typeof cases;
const times: Record<Case, number[]> = { plain: [], count: [], flat: [], keyed: [], summed: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const c of (Object.keys(cases) as Case[]).sort(() => Math.random() - 0.5)) times[c].push(await cases[c]());
  process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
}
await target.stop();

const m = Object.fromEntries(Object.entries(times).map(([c, xs]) => [c, median(xs)])) as Record<Case, number>;
const added = (c: Case) => m[c] - m.plain;
console.log(`a call given a request object, ${CALLS} calls a case, medians of ${ROUNDS} rounds (ns per call)`);
console.log(`plain                                   ${m.plain.toFixed(2)} ns  baseline`);
console.log(`count()                                 ${m.count.toFixed(2)} ns  +${added('count').toFixed(2)} ns`);
console.log(`sum(args[0].length)  (a handler)       ${m.flat.toFixed(2)} ns  +${added('flat').toFixed(2)} ns`);
const nested = (c: Case) => `+${added(c).toFixed(2)} ns: ${(added(c) / added('count')).toFixed(1)}× a plain count's, ${(added(c) / added('flat')).toFixed(2)}× a handler's reading the argument itself`;
console.log(`count() by args[0].req.url              ${m.keyed.toFixed(2)} ns  ${nested('keyed')}`);
console.log(`sum(args[0].req.url.length)             ${m.summed.toFixed(2)} ns  ${nested('summed')}`);
console.log(JSON.stringify({ bench: 'nested-field', calls: CALLS, rounds: ROUNDS, ...Object.fromEntries(Object.entries(m).map(([c, v]) => [`${c}_ns`, v])) }));
