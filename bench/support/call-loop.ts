import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { workloadBinary } from '../../src/testing/workload.js';

/** The loop runs alone on the last CPU; everything else may use the others. */
export const LOOP_CPU = String(availableParallelism() - 1);

/**
 * ns per system call of the workload's timed loop (getppid, or getuid for `benchother`), measured
 * by the workload itself around its loop, pinned to LOOP_CPU; `wrapper` runs it under another
 * command (strace).
 */
export function callLoop(calls: number, options: { readonly wrapper?: readonly string[]; readonly mode?: 'bench' | 'benchother' } = {}): number {
  const command = ['taskset', '-c', LOOP_CPU, ...(options.wrapper ?? []), workloadBinary(), 'fay-bench', options.mode ?? 'bench', String(calls)];
  const result = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command.join(' ')} failed: ${result.stderr}`);
  return Number(result.stdout.trim().split('\n').pop());
}
