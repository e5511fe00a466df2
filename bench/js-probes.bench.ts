/**
 * JavaScript probes in a live process, side by side in one run on a small function called 10M times:
 * plain call; Fay counting probe; Fay probe with a rejecting predicate; Fay timing probe (duration
 * histogram, kept by the probe's hooks) and the same through a handler (a filter makes one run); a
 * hand-written counting wrapper; two clock reads per call; and an inspector logpoint (conditional
 * breakpoint) on fewer calls, in a process of its own. The target runs pinned to one CPU; ratios to
 * a baseline are medians of the per-round ratios (each round runs every case once, in a random
 * order), which this VM's drifting speed disturbs least. Targets:
 * counting within 1.5× of the hand-written wrapper's added cost; timing within 1.2× of two clock reads;
 * at least 1000× cheaper than the logpoint; attach under 50 ms and detach under 10 ms. Attach and
 * detach are timed both as a query sees them and for the install alone (probes on; probes off; the
 * source restored; in a process of its own, after its first attach), each with a live edit of the
 * function, taking over the edit the query before kept (--keep-edits), and with no edit at all
 * (--max-pause 0: a wrapper on the function's export); and attach in a process in
 * another network namespace, as a container runs it, beside attach in one next to the agent.
 */
import { availableParallelism } from 'node:os';
import { localCluster } from '../src/frontend/local-cluster.js';
import { attach } from '../src/probes/node/attach.js';
import { AgentChannel } from '../src/probes/node/channel.js';
import { install } from '../src/probes/node/install.js';
import { nodeProcess } from '../src/probes/node/processes.js';
import type { FunctionPattern } from '../src/probes/node/sources.js';
import { TestNetns } from '../src/testing/netns.js';
import { startNodeTarget, type NodeTarget } from '../src/testing/node-target.js';

const CALLS = Number(process.env.FAY_BENCH_JS_CALLS ?? 10_000_000);
const LOGPOINT_CALLS = 2_000;
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 11);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** The median of the per-round ratios of two cases. */
const pairedRatio = (xs: number[], baseline: number[]) => median(xs.map((x, i) => x / baseline[i]!));

const cluster = localCluster();
// The target pinned to one CPU: it does not migrate in the middle of a timed loop.
const TARGET_CPU = Math.max(0, availableParallelism() - 1);
const target = await startNodeTarget('bench-target.cjs', { cpu: TARGET_CPU });
const ns = async (command: string, calls = CALLS) => Number(await target.run(command, calls));

const attachMs: number[] = [];
const stopMs: number[] = [];
/**
 * Runs `command` under a query: how long the query took to attach and to stop go into the lists.
 * Its live edits come out when it ends (--keep-edits 0) unless `keepEditsMs` says otherwise: a plain
 * call timed after it runs the function as it was.
 */
async function underFay(query: string, keepEditsMs = 0, timings = { attachMs, stopMs }, maxEditPauseMs?: number): Promise<number> {
  const started = performance.now();
  const run = cluster.run(query, { providerOptions: { node: { keepEditsMs, ...(maxEditPauseMs !== undefined && { maxEditPauseMs }) } } });
  await run.attached;
  timings.attachMs.push(performance.now() - started);
  if (process.env.FAY_BENCH_VERBOSE) process.stderr.write(`attach ${query} ${(performance.now() - started).toFixed(1)} ms\n`);
  const result = await ns('plain');
  const stopping = performance.now();
  await run.stop();
  timings.stopMs.push(performance.now() - stopping);
  for await (const _ of run) {
    // Drain.
  }
  return result;
}

/**
 * An inspector logpoint: a breakpoint whose condition logs nothing and never pauses, as DevTools
 * makes them. In a process of its own: a process that has been debugged stays slower to live-edit.
 */
async function underLogpoint(): Promise<number> {
  const debugged = await startNodeTarget('bench-target.cjs');
  const attachment = await attach(debugged.pid);
  const { client } = attachment;
  const urls: { scriptId: string; url: string }[] = [];
  client.on('Debugger.scriptParsed', (p) => urls.push({ scriptId: String(p.scriptId), url: String(p.url) }));
  await client.call('Debugger.enable');
  const script = urls.find((u) => u.url.endsWith('bench-target.cjs'))!;
  const { scriptSource } = await client.call<{ scriptSource: string }>('Debugger.getScriptSource', { scriptId: script.scriptId });
  const line = scriptSource.slice(0, scriptSource.indexOf('return x + 1;')).split('\n').length - 1;
  const { breakpointId } = await client.call<{ breakpointId: string }>('Debugger.setBreakpoint', {
    location: { scriptId: script.scriptId, lineNumber: line },
    condition: '(globalThis.__logpoints = (globalThis.__logpoints || 0) + 1, false)',
  });
  const result = Number(await debugged.run('plain', LOGPOINT_CALLS));
  await client.call('Debugger.removeBreakpoint', { breakpointId });
  await client.call('Debugger.disable');
  await attachment.release();
  await debugged.stop();
  return result;
}

/**
 * The install alone, no query around it: probes on, probes off, the source restored. On the
 * application's function (a live edit) and on a built-in (a wrapper), which shows what the edit costs.
 * Probes go off when a query ends, long after the inspector has closed behind them: so here too.
 */
async function installTimes(target: NodeTarget, pattern: FunctionPattern, keepEditsMs = 0): Promise<{ on: number; off: number; restored: number }> {
  const channel = await AgentChannel.open();
  const handlers = '(function () { return function () { return function () {}; }; })';
  const plan = { session: `bench-${Math.random()}`, patterns: [pattern], handlers, exit: false, args: false, kept: [], host: 'h', maxGroups: 10, maxRows: 10, pauseNoticeMs: 1e9, maxPauseMs: 1e9, keepEditsMs };
  const t0 = performance.now();
  const { connection, released } = await install(nodeProcess(target.pid)!, plan, channel, () => undefined);
  const t1 = performance.now();
  await released;
  const t1b = performance.now();
  await connection.detach();
  const t2 = performance.now();
  await connection.done();
  const t3 = performance.now();
  channel.close();
  return { on: t1 - t0, off: t2 - t1b, restored: t3 - t1b };
}


const query = (rest: string) => `js:pid=${target.pid}:./bench-target.cjs#work | ${rest}`;
const cases = {
  plain: () => ns('plain'),
  wrapper: () => ns('wrapped'),
  clocks: () => ns('clocks'),
  counting: () => underFay(query('count()')),
  rejecting: () => underFay(query('where args[0].number < 0 | count()')),
  timing: () => underFay(query('hist(duration)')),
  handled: () => underFay(query('where duration >= 0 | hist(duration)')),
};
type Case = keyof typeof cases;
const times: Record<Case, number[]> = { plain: [], wrapper: [], clocks: [], counting: [], rejecting: [], timing: [], handled: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const c of (Object.keys(cases) as Case[]).sort(() => Math.random() - 0.5)) times[c].push(await cases[c]());
  process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
}
// The same query with --max-pause 0: no live edit, a wrapper on the function's export (the calls
// through the exports only; the loop's are not counted). Before the kept edits below, which it would take over.
const wrappedTimes = { attachMs: [] as number[], stopMs: [] as number[] };
for (let i = 0; i < ROUNDS; i++) await underFay(query('count()'), 0, wrappedTimes, 0);
// The same query again and again with its edits kept (the default --keep-edits): each takes over
// the edit of the one before, and neither attach nor stop edits the script.
const keptTimes = { attachMs: [] as number[], stopMs: [] as number[] };
for (let i = 0; i <= ROUNDS; i++) await underFay(query('count()'), 60_000, keptTimes);
// Its first attach edited: the others took over.
keptTimes.attachMs.shift();
const logpoint = await underLogpoint();
await target.stop();
// The same in a process in another network namespace (as a container runs it), reached through a
// bridge there: its first attach also starts the bridge, the others reuse it.
const netns = new TestNetns();
const containedAttachMs: number[] = [];
try {
  const contained = await startNodeTarget('bench-target.cjs', { cpu: TARGET_CPU, wrapper: netns.exec });
  const inContainer = (rest: string) => `js:pid=${contained.pid}:./bench-target.cjs#work | ${rest}`;
  for (let i = 0; i <= ROUNDS; i++) {
    const started = performance.now();
    const run = cluster.run(inContainer('count()'), { providerOptions: { node: { keepEditsMs: 60_000 } } });
    await run.attached;
    containedAttachMs.push(performance.now() - started);
    await run.stop();
    for await (const _ of run) {
      // Drain.
    }
  }
  await contained.stop();
} finally {
  netns.remove();
}
const containedFirstMs = containedAttachMs.shift()!;
// The install alone, in a process of its own: the queries above leave garbage in their target (each
// enable of the debugger reports every script, each edit leaves the replaced code behind), which V8's
// heap walk for each live edit visits until a GC collects it. The first attach to a process (its
// first SIGUSR1, its first Debugger.enable) is timed apart.
const installed = await startNodeTarget('bench-target.cjs', { cpu: TARGET_CPU });
const work: FunctionPattern = { kind: 'user', file: '/bench-target.cjs', name: 'work' };
const firstInstall = await installTimes(installed, work);
const installs = [];
const builtinInstalls = [];
for (let i = 0; i < ROUNDS; i++) {
  installs.push(await installTimes(installed, work));
  builtinInstalls.push(await installTimes(installed, { kind: 'builtin', module: undefined, global: 'JSON', path: [], key: 'parse' }));
}
// With the edit kept: the first install edits, the others take it over.
const keptInstalls = [];
for (let i = 0; i <= ROUNDS; i++) keptInstalls.push(await installTimes(installed, work, 60_000));
keptInstalls.shift();
await installed.stop();

const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])) as Record<Case, number>;
const added = (c: Case) => m[c] - m.plain;
const timingRatio = pairedRatio(times.timing, times.clocks);
const rows: [string, number, string][] = [
  ['plain call', m.plain, ''],
  ['hand-written counting wrapper', m.wrapper, 'baseline for counting'],
  ['fay: count()', m.counting, `added ${added('counting').toFixed(2)} ns vs wrapper's ${added('wrapper').toFixed(2)} ns (target ≤ 1.5×; both near zero when inlined)`],
  ['fay: where args[0].number < 0 | count()', m.rejecting, `added ${added('rejecting').toFixed(2)} ns`],
  ['two clock reads per call', m.clocks, 'baseline for timing'],
  ['fay: hist(duration)', m.timing, `${timingRatio.toFixed(2)}× two clock reads (target ≤ 1.2×)`],
  ['fay: where duration >= 0 | hist(duration)', m.handled, `${pairedRatio(times.handled, times.clocks).toFixed(2)}× two clock reads (through a handler)`],
  [`inspector logpoint (${LOGPOINT_CALLS} calls)`, logpoint, `${(logpoint / m.counting).toFixed(0)}× fay count() (target ≥ 1000×)`],
];
console.log(`a small function called ${CALLS.toLocaleString('en')} times in a live process; medians of ${ROUNDS} rounds`);
for (const [name, value, note] of rows) console.log(`${name.padEnd(44)}${value.toFixed(2).padStart(12)} ns/call  ${note}`);
const install_ms = {
  probes_on: median(installs.map((i) => i.on)),
  probes_off: median(installs.map((i) => i.off)),
  source_restored: median(installs.map((i) => i.restored)),
  kept_probes_on: median(keptInstalls.map((i) => i.on)),
  builtin_probes_on: median(builtinInstalls.map((i) => i.on)),
  first_probes_on: firstInstall.on,
};
const kept = { attach_ms: median(keptTimes.attachMs), stop_ms: median(keptTimes.stopMs) };
const wrapped = { attach_ms: median(wrappedTimes.attachMs), stop_ms: median(wrappedTimes.stopMs) };
const contained = { attach_ms: median(containedAttachMs), first_attach_ms: containedFirstMs };
console.log(
  `query attached in ${median(attachMs).toFixed(1)} ms live-editing the function, ${kept.attach_ms.toFixed(1)} ms taking over the edit the query before kept ` +
    `(${(median(attachMs) / kept.attach_ms).toFixed(1)}× faster; target < 50); stopped in ${median(stopMs).toFixed(1)} ms taking the edit out, ` +
    `${kept.stop_ms.toFixed(1)} ms keeping it; medians of ${attachMs.length} and ${keptTimes.attachMs.length}`,
);
console.log(
  `with --max-pause 0 (no live edit: a wrapper on the function's export, calls through the exports only): query attached in ` +
    `${wrapped.attach_ms.toFixed(1)} ms, ${(wrapped.attach_ms / median(attachMs)).toFixed(2)}× the live edit's (target < 50); stopped in ${wrapped.stop_ms.toFixed(1)} ms (target < 10)`,
);
console.log(
  `install alone: probes on in ${install_ms.probes_on.toFixed(1)} ms with a live edit, ${install_ms.kept_probes_on.toFixed(1)} ms taking over a kept one (target < 50), ` +
    `off in ${install_ms.probes_off.toFixed(1)} ms (target < 10), source restored ${install_ms.source_restored.toFixed(1)} ms after detach, medians of ${installs.length}; ` +
    `on a built-in (a wrapper, no live edit) probes on in ${install_ms.builtin_probes_on.toFixed(1)} ms; ` +
    `the first attach to a process (its first SIGUSR1 and Debugger.enable) ${install_ms.first_probes_on.toFixed(1)} ms`,
);
console.log(
  `in another network namespace (a container): query attached in ${contained.attach_ms.toFixed(1)} ms taking over a kept edit, ` +
    `${(contained.attach_ms / kept.attach_ms).toFixed(2)}× the ${kept.attach_ms.toFixed(1)} ms beside the agent (target < 50); ` +
    `its first attach, which starts the bridge and edits, ${contained.first_attach_ms.toFixed(1)} ms`,
);
console.log(
  JSON.stringify({ bench: 'js-probes', ns_per_call: m, timing_ratio: timingRatio, logpoint_ns: logpoint, attach_ms: median(attachMs), stop_ms: median(stopMs), kept, wrapped, contained, install_ms }),
);
