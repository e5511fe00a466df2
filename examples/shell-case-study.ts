/**
 * The original Fay's case study, on Linux: why is printing a big file to a terminal slow? Fay
 * (SOSP 2011) counted 3.75 million system calls to print a 16 MB file to a Windows console and
 * found who made them. Here `cat` prints a 16 MB ASCII file to a real pseudo-terminal, whose other
 * end `script` reads as a terminal emulator does, while Fay counts every system call of both by
 * process and call. docs/case-study-shell.md has the figures measured and what they mean.
 *
 *   npx tsx examples/shell-case-study.ts [megabytes]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Fay } from 'fay';

/** The processes of the study: the writer, and the terminal that reads the pty's other end. */
export const WRITER = 'cat';
export const TERMINAL = 'script';

/** A file of printable ASCII lines, `bytes` long. */
export function asciiFile(dir: string, bytes: number): string {
  const line = `${'the quick brown fox jumps over the lazy dog 0123456789 '.repeat(2).slice(0, 99)}\n`;
  const path = join(dir, 'big.txt');
  writeFileSync(path, line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes));
  return path;
}

/** Prints a file to a fresh pseudo-terminal: `script` runs `cat` on the pty and reads its master, as a terminal does. Resolves with the ms it took. */
export async function printToTerminal(path: string): Promise<number> {
  const started = performance.now();
  const terminal = spawn(TERMINAL, ['--quiet', '--command', `${WRITER} '${path.replace(/'/g, "'\\''")}'`, '/dev/null'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TERM: 'xterm', COLUMNS: '100', LINES: '50' },
  });
  // What the terminal shows goes nowhere: drawing it is not what is measured here.
  terminal.stdout.resume();
  const [code] = (await once(terminal, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${TERMINAL} exited with ${code}`);
  return performance.now() - started;
}

/** Every system call of the writer and the terminal, by call and by process. */
export function callsByProcess(fay: Fay) {
  return fay
    .syscalls('*')
    .where((e, p) => e.comm === p.writer || e.comm === p.terminal, { writer: WRITER, terminal: TERMINAL })
    .groupBy((e) => ({ call: e.probe, comm: e.comm }))
    .count();
}

/** One line of the study's table: a call, how often it was made, and by whom. */
export interface CallLine {
  readonly call: string;
  readonly count: number;
  readonly callers: readonly { readonly comm: string; readonly count: number }[];
}

/** The counts by call and process as the study's table: calls by count, each with its callers by count. */
export function tableOf(rows: readonly { call: string; comm: string; count: number }[]): CallLine[] {
  const byCall = new Map<string, { comm: string; count: number }[]>();
  for (const r of rows) {
    const call = r.call.replace(/^syscall:/, '');
    byCall.set(call, [...(byCall.get(call) ?? []), { comm: r.comm, count: r.count }]);
  }
  return [...byCall]
    .map(([call, callers]) => ({ call, count: callers.reduce((n, c) => n + c.count, 0), callers: callers.sort((a, b) => b.count - a.count) }))
    .sort((a, b) => b.count - a.count || a.call.localeCompare(b.call));
}

/** The study: a file of `megabytes` MB printed to a terminal while Fay counts. */
export async function caseStudy(fay: Fay, megabytes: number): Promise<{ table: CallLine[]; total: number; ms: number; bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'fay-shell-study-'));
  try {
    const bytes = Math.round(megabytes * 1024 * 1024);
    const path = asciiFile(dir, bytes);
    const run = callsByProcess(fay).start();
    const messages: { rows: { call: string; comm: string; count: number }[] }[] = [];
    const reading = (async () => {
      for await (const m of run) {
        if (m.kind === 'result' && m.complete) messages.push({ rows: m.rows.map((r) => ({ call: r[0] as string, comm: r[1] as string, count: r[2] as number })) });
      }
    })();
    await run.attached;
    const ms = await printToTerminal(path);
    await run.stop();
    await reading;
    const table = tableOf(messages.at(-1)?.rows ?? []);
    return { table, total: table.reduce((n, l) => n + l.count, 0), ms, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const megabytes = Number(process.argv[2] ?? 16);
  const fay = await connect();
  console.log(`${callsByProcess(fay).toFayQL()}\n`);
  const { table, total, ms, bytes } = await caseStudy(fay, megabytes);
  await fay.close();
  console.log(`${WRITER} printed ${(bytes / 1048576).toFixed(1)} MB to a terminal (${TERMINAL} on a pty) in ${ms.toFixed(0)} ms: ${total.toLocaleString('en')} system calls, ${(total / (bytes / 1048576)).toFixed(0)} per MB\n`);
  console.log(`${'call'.padEnd(16)}${'count'.padStart(10)}  callers`);
  for (const line of table.slice(0, 12)) {
    console.log(`${line.call.padEnd(16)}${line.count.toLocaleString('en').padStart(10)}  ${line.callers.map((c) => `${c.comm} ${c.count.toLocaleString('en')}`).join(', ')}`);
  }
}
