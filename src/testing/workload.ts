import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = new URL('./workload.c', import.meta.url);

let binary: string | undefined;

/** The compiled test workload (built once per source version, in the temp directory). */
export function workloadBinary(): string {
  if (binary) return binary;
  const source = readFileSync(SOURCE);
  const dir = join(tmpdir(), `fay-workload-${createHash('sha256').update(source).digest('hex').slice(0, 12)}`);
  const path = join(dir, 'workload');
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const result = spawnSync('gcc', ['-O1', '-g', '-fno-omit-frame-pointer', '-pthread', '-o', `${path}.tmp`, SOURCE.pathname], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`could not compile the workload: ${result.stderr}`);
    spawnSync('mv', [`${path}.tmp`, path]);
  }
  return (binary = path);
}

export interface WorkloadResult {
  readonly pid: number;
  readonly stdout: string;
}

/** Runs the workload to completion under a process name; rejects if it fails. */
export function runWorkload(comm: string, ...args: (string | number)[]): Promise<WorkloadResult> {
  return startWorkload(comm, args, false).done;
}

export interface WaitingWorkload {
  readonly pid: number;
  /** Lets it start, and resolves when it has finished. */
  go(): Promise<WorkloadResult>;
}

/** Starts the workload paused before its first step, so that probes can be attached to its pid first. */
export function waitingWorkload(comm: string, ...args: (string | number)[]): WaitingWorkload {
  const started = startWorkload(comm, args, true);
  return {
    pid: started.pid,
    go: () => {
      started.stdin!.end('g');
      return started.done;
    },
  };
}

export interface HeldWorkload {
  readonly pid: number;
  /** Resolves once it has done its work (it is still alive). */
  readonly held: Promise<void>;
  /** Lets it exit, and resolves when it has. */
  release(): Promise<WorkloadResult>;
}

/** Runs the workload and keeps it alive afterwards until released: for what is read only while a process lives (its symbols). */
export function heldWorkload(comm: string, ...args: (string | number)[]): HeldWorkload {
  const started = startWorkload(comm, args, false, true);
  return {
    pid: started.pid,
    held: started.held,
    release: () => {
      started.stdin!.end('g');
      return started.done;
    },
  };
}

function startWorkload(comm: string, args: (string | number)[], wait: boolean, hold = false) {
  const child = spawn(workloadBinary(), [comm, ...args.map(String)], {
    stdio: [wait || hold ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...(wait && { WORKLOAD_WAIT: '1' }), ...(hold && { WORKLOAD_HOLD: '1' }) },
  });
  let stdout = '';
  let markHeld!: () => void;
  let failHeld!: (error: Error) => void;
  const held = new Promise<void>((resolve, reject) => {
    markHeld = resolve;
    failHeld = reject;
  });
  held.catch(() => undefined);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (stdout.includes('held\n')) markHeld();
  });
  const done = new Promise<WorkloadResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      // A workload that ended before holding never will.
      failHeld(new Error(`workload ${args.join(' ')} exited (${code}) before it held`));
      if (code === 0) resolve({ pid: child.pid!, stdout });
      else reject(new Error(`workload ${args.join(' ')} exited with ${code}`));
    });
  });
  return { pid: child.pid!, stdin: child.stdin, done, held };
}
