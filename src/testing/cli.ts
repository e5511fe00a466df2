import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fayCommand } from './fay-command.js';

/** A running `fay` command: its process, its stdout lines as they come, its stderr so far. */
export interface FayProcess {
  readonly child: ChildProcess;
  /** Resolves with the next stdout line (or undefined at the end). */
  nextLine(): Promise<string | undefined>;
  /** Its stderr so far. */
  stderr(): string;
  /** Resolves when its stderr so far matches (rejects if it exits first). */
  stderrMatch(pattern: RegExp): Promise<string>;
  /** Resolves when it exits, with its exit code, all remaining stdout lines and all stderr. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }>;
}

/** Starts `fay <args>` (the built command), optionally under another command (e.g. setpriv). */
export function startFay(args: readonly string[], options: { env?: NodeJS.ProcessEnv; wrapper?: readonly string[]; stdin?: string; cwd?: string } = {}): FayProcess {
  const command = [...(options.wrapper ?? []), ...fayCommand(), ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: options.env ?? process.env, ...(options.cwd !== undefined && { cwd: options.cwd }) });
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  const pending: string[] = [];
  const waiters: ((line: string | undefined) => void)[] = [];
  let closed = false;
  createInterface({ input: child.stdout! })
    .on('line', (line) => {
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else pending.push(line);
    })
    .on('close', () => {
      closed = true;
      for (const w of waiters.splice(0)) w(undefined);
    });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const stderrMatch = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(stderr)) return false;
        child.stderr!.off('data', check);
        child.off('close', gone);
        resolve(stderr);
        return true;
      };
      const gone = () => reject(new Error(`fay exited before its stderr matched ${String(pattern)}:\n${stderr}`));
      if (check()) return;
      // After the listener that appends, so each check sees the chunk just read.
      child.stderr!.on('data', check);
      child.once('close', gone);
    });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, lines: pending.splice(0), stderr }));
  });
  return {
    child,
    stderr: () => stderr,
    stderrMatch,
    nextLine: () => {
      if (pending.length > 0) return Promise.resolve(pending.shift());
      if (closed) return Promise.resolve(undefined);
      return new Promise((resolve) => waiters.push(resolve));
    },
    exit,
  };
}

/** Runs `fay <args>` to the end. */
export function runFay(args: readonly string[], options: { env?: NodeJS.ProcessEnv; wrapper?: readonly string[]; cwd?: string } = {}) {
  return startFay(args, options).exit;
}
