/**
 * Start to first result (issue 24), side by side in one run, each a new process timed from its
 * start to its first result line, the query's period 10 ms so that the period is not what is
 * measured: bpftrace's one-liner (`interval:ms:10`, its first print); `fay query --backend native
 * --json --every 10ms` starting cold (it loads the whole command and runs the query itself); the
 * same command while this machine's agent runs (`fay agent`, started here on a socket of its own),
 * which the command hands the query to; and an empty `node -e`, the floor of any Node.js command.
 * ROUNDS rounds, the cases in a new random order each round; medians. Target: under 100 ms.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { findBpftrace } from '../src/probes/bpf/environment.js';
import { prng } from '../src/prng.js';

const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 9);
const FAY = fileURLToPath(new URL('../dist/bin/fay.cjs', import.meta.url));
const QUERY = 'syscall:getppid | count()';
const dir = mkdtempSync(join(tmpdir(), 'fay-start-bench-'));
const env = { ...process.env, FAY_RUN_DIR: join(dir, 'run'), FAY_STORE_DIR: join(dir, 'store') };
const bpftrace = findBpftrace();
if (bpftrace === undefined) throw new Error('bpftrace is not installed: npm run bench sets it up (scripts/setup.sh)');

/** ms from starting a command to its first line of output that passes `test`. */
async function firstLine(command: readonly string[], extraEnv: NodeJS.ProcessEnv, test: (line: string) => boolean = () => true): Promise<number> {
  const started = performance.now();
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], env: { ...env, ...extraEnv } });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => test(line) && resolve());
    child.on('exit', (code) => reject(new Error(`${command.join(' ')} exited (${code}) before its first line`)));
  });
  const ms = performance.now() - started;
  child.kill('SIGINT');
  await exited;
  return ms;
}

const cases = {
  node: () => firstLine([process.execPath, '-e', 'console.log(1)'], {}),
  bpftrace: () => firstLine([bpftrace, '-f', 'json', '-e', 'tracepoint:syscalls:sys_enter_getppid { @c = count(); } interval:ms:10 { print(@c); }'], {}, (line) => line.includes('"type": "map"')),
  cold: () => firstLine([process.execPath, FAY, 'query', '--backend', 'native', '--json', '--every', '10ms', QUERY], { FAY_NO_AGENT: '1' }),
  agent: () => firstLine([process.execPath, FAY, 'query', '--backend', 'native', '--json', '--every', '10ms', QUERY], {}),
};
type Case = keyof typeof cases;

// This machine's agent, on a socket of its own; ready once it says so.
const agent = spawn(process.execPath, [FAY, 'agent'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
let agentLog = '';
await new Promise<void>((resolve, reject) => {
  agent.stderr.setEncoding('utf8').on('data', (d: string) => {
    agentLog += d;
    if (agentLog.includes('ready')) resolve();
  });
  agent.on('exit', (code) => reject(new Error(`fay agent exited (${code}):\n${agentLog}`)));
});

const times: Record<Case, number[]> = { node: [], bpftrace: [], cold: [], agent: [] };
const random = prng(24);
try {
  // One of each first, not counted: the page cache and the agent's first query warmed.
  for (const c of Object.keys(cases) as Case[]) await cases[c]();
  for (let round = 0; round < ROUNDS; round++) {
    const order = (Object.keys(cases) as Case[]).map((c) => ({ c, r: random() })).sort((a, b) => a.r - b.r).map((x) => x.c);
    for (const c of order) times[c].push(await cases[c]());
    process.stderr.write(`round ${round + 1}/${ROUNDS}: ${order.map((c) => `${c} ${times[c].at(-1)!.toFixed(0)} ms`).join(', ')}\n`);
  }
} finally {
  agent.kill('SIGTERM');
  await new Promise((resolve) => agent.on('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
if (!/runs a query for a command on this machine/.test(agentLog)) throw new Error(`the agent ran no query for the command:\n${agentLog}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const m = Object.fromEntries((Object.keys(times) as Case[]).map((c) => [c, median(times[c])])) as Record<Case, number>;
console.log(`start to first result, ${QUERY}, every 10 ms (medians of ${ROUNDS}, a new process each)`);
console.log(`bpftrace one-liner (interval:ms:10)                              ${m.bpftrace.toFixed(0)} ms  baseline`);
console.log(`fay query --backend native --json, cold (runs the query itself)  ${m.cold.toFixed(0)} ms  ${(m.cold / m.bpftrace).toFixed(2)}× bpftrace`);
console.log(`the same, this machine's agent running (fay agent runs it)       ${m.agent.toFixed(0)} ms  ${(m.agent / m.bpftrace).toFixed(2)}× bpftrace (target under 100 ms)`);
console.log(`for reference: an empty node -e                                  ${m.node.toFixed(0)} ms`);
console.log(JSON.stringify({ bench: 'start', rounds: ROUNDS, bpftrace_ms: m.bpftrace, cold_ms: m.cold, agent_ms: m.agent, node_ms: m.node }));
