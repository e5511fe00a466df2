/**
 * The seed's worst case, on Linux: every tracepoint this kernel has, counted by probe, at once
 * (the seed traced all 8,001 hot-patchable kernel functions). The `syscalls:` events are left out:
 * they are system calls' own (`syscall:*` covers them, measured in syscall-overhead.bench.ts), and
 * bpftrace would need two perf events for each. Side by side in one run:
 *
 *  - Fay's native backend (`--backend native`, in this process): ms from asking for the query to
 *    its probes attached, ns each getppid() adds (two events: raw_syscalls:sys_enter and
 *    sys_exit, besides whatever else the machine does meanwhile), ms from stopping it to every
 *    program gone;
 *  - bpftrace 0.17 on the same tracepoints (`@[probe] = count()`, BPFTRACE_MAX_PROBES and
 *    BPFTRACE_MAX_BPF_PROGS raised): ms to its BEGIN line (printed once every probe is attached),
 *    the same ns, and ms from SIGINT to its exit.
 *
 * Fay on bpftrace refuses a query of more than 512 kernel probes (each took bpftrace ~70 ms to
 * detach here), so the bpftrace figures are of bpftrace's own one-liner.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { localCluster } from '../src/frontend/local-cluster.js';
import { findBpftrace } from '../src/probes/bpf/environment.js';
import { callLoop } from './support/call-loop.js';

const CALLS = Number(process.env.FAY_BENCH_CALLS ?? 1_000_000);
/** One round by default: bpftrace alone takes minutes to attach and detach this many tracepoints. */
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 1);
/** bpftrace is given this long to attach, and again to detach. */
const BPFTRACE_LIMIT_MS = Number(process.env.FAY_BENCH_BPFTRACE_LIMIT_MS ?? 600_000);
const EVENTS = '/sys/kernel/tracing/events';

const bpftrace = findBpftrace()!;
const cluster = localCluster();

/** The tracepoint categories, syscalls left out. */
const categories = readdirSync(EVENTS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'syscalls' && d.name !== 'ftrace')
  .map((d) => d.name)
  .sort();
const tracepoints = categories.reduce((n, c) => n + readdirSync(`${EVENTS}/${c}`, { withFileTypes: true }).filter((d) => d.isDirectory()).length, 0);

/**
 * The FayQL sources for them: a glob per first letter (a query names at most 64 points), the
 * categories of a letter one by one where `syscalls` shares it.
 */
function fayQuery(): string {
  const letters = [...new Set(categories.map((c) => c[0]!))];
  const sources = letters.flatMap((l) => (['syscalls', 'ftrace'].some((x) => x.startsWith(l)) ? categories.filter((c) => c.startsWith(l)).map((c) => `tracepoint:${c}:*`) : [`tracepoint:${l}*:*`]));
  return `${sources.join(', ')} | count() by probe`;
}

/** ns per getppid() call. */
const loop = (): number => callLoop(CALLS);

interface Figures {
  attachMs: number;
  callNs: number;
  detachMs: number;
}

async function native(query: string): Promise<Figures> {
  const started = performance.now();
  const run = cluster.run(query, { providerOptions: { bpf: { backend: 'native' } } });
  await run.attached;
  const attachMs = performance.now() - started;
  const callNs = loop();
  const stopping = performance.now();
  await run.stop();
  for await (const _ of run) {
    // Drain the results.
  }
  return { attachMs, callNs, detachMs: performance.now() - stopping };
}

async function underBpftrace(): Promise<Figures> {
  const program = `BEGIN { printf("ready\\n"); } ${categories.map((c) => `tracepoint:${c}:*`).join(', ')} { @[probe] = count(); }`;
  const limits = String(tracepoints + 64);
  const started = performance.now();
  const child = spawn(bpftrace, ['-e', program], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BPFTRACE_MAX_PROBES: limits, BPFTRACE_MAX_BPF_PROGS: limits } });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  const lines = createInterface({ input: child.stdout });
  let timer: NodeJS.Timeout | undefined;
  const ready = await new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), BPFTRACE_LIMIT_MS);
    lines.on('line', (l) => l === 'ready' && resolve(true));
    void exited.then(() => resolve(false));
  });
  clearTimeout(timer);
  if (!ready) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`bpftrace did not attach ${tracepoints} tracepoints within ${BPFTRACE_LIMIT_MS} ms: ${stderr.trim().slice(-500)}`);
  }
  const attachMs = performance.now() - started;
  const callNs = loop();
  const stopping = performance.now();
  child.kill('SIGINT');
  const stuck = setTimeout(() => child.kill('SIGKILL'), BPFTRACE_LIMIT_MS);
  await exited;
  clearTimeout(stuck);
  return { attachMs, callNs, detachMs: performance.now() - stopping };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const query = fayQuery();
const rounds = { untraced: [] as number[], native: [] as Figures[], bpftrace: [] as Figures[] };
for (let round = 0; round < ROUNDS; round++) {
  const before = loop();
  const n = await native(query);
  const b = await underBpftrace();
  rounds.untraced.push((before + loop()) / 2);
  rounds.native.push(n);
  rounds.bpftrace.push(b);
  process.stderr.write(
    `round ${round + 1}/${ROUNDS}: native attach ${n.attachMs.toFixed(0)} ms, ${n.callNs.toFixed(1)} ns/call, detach ${n.detachMs.toFixed(0)} ms; ` +
      `bpftrace attach ${b.attachMs.toFixed(0)} ms, ${b.callNs.toFixed(1)} ns/call, detach ${b.detachMs.toFixed(0)} ms\n`,
  );
}
const untraced = median(rounds.untraced);
const figure = (name: keyof Figures, of: Figures[]) => median(of.map((f) => f[name]));
const added = (of: Figures[]) => median(of.map((f, i) => f.callNs - rounds.untraced[i]!));
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
console.log(`every tracepoint but the syscalls ones: ${tracepoints} tracepoints in ${categories.length} categories, counted by probe; medians of ${ROUNDS} rounds`);
console.log(`                          attach ms   added ns a getppid (2 events)   detach ms`);
for (const [name, of] of [['Fay native', rounds.native], ['bpftrace one-liner', rounds.bpftrace]] as const) {
  console.log(`${name.padEnd(24)}  ${figure('attachMs', of).toFixed(0).padStart(9)}   ${added(of).toFixed(1).padStart(29)}   ${figure('detachMs', of).toFixed(0).padStart(9)}`);
}
console.log(
  `Fay native against bpftrace: attach ${ratio(figure('attachMs', rounds.native), figure('attachMs', rounds.bpftrace))}, added cost ${ratio(added(rounds.native), added(rounds.bpftrace))}, detach ${ratio(figure('detachMs', rounds.native), figure('detachMs', rounds.bpftrace))} (untraced ${untraced.toFixed(1)} ns a call)`,
);
console.log(
  JSON.stringify({
    bench: 'all-tracepoints',
    tracepoints,
    untraced_ns: untraced,
    native: { attach_ms: figure('attachMs', rounds.native), added_ns: added(rounds.native), detach_ms: figure('detachMs', rounds.native) },
    bpftrace: { attach_ms: figure('attachMs', rounds.bpftrace), added_ns: added(rounds.bpftrace), detach_ms: figure('detachMs', rounds.bpftrace) },
  }),
);
