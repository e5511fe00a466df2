import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, afterEach, before } from 'node:test';
import { workloadBinary } from './workload.js';

/** Ids of every BPF program loaded in the kernel right now. */
export function loadedBpfPrograms(): Set<number> {
  const out = execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  return new Set((JSON.parse(out) as { id: number }[]).map((p) => p.id));
}

/** BPF programs loaded now that were not loaded in `before`. */
export function newBpfPrograms(before: ReadonlySet<number>): number[] {
  return [...loadedBpfPrograms()].filter((id) => !before.has(id));
}

/** The parent of a process, or 0 once it is gone. */
export function parentOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Pids of running bpftrace processes. */
export function bpftraceProcesses(): number[] {
  return processesNamed('bpftrace');
}

/** Pids of the processes that hold queries' kernel probes: bpftrace, or the native backend's loader. */
export function kernelSideProcesses(): number[] {
  return [...bpftraceProcesses(), ...loaderProcesses()];
}

/** Pids of running loaders of Fay's native backend. */
export function loaderProcesses(): number[] {
  return processesNamed('fay-bpf-loader');
}

/** BPF maps the native backend makes (named fay_…) that are in the kernel now. */
export function nativeMaps(): string[] {
  const out = execFileSync('bpftool', ['map', 'show', '--json'], { encoding: 'utf8' });
  return (JSON.parse(out) as { name?: string }[]).map((m) => m.name ?? '').filter((name) => name.startsWith('fay_'));
}

function processesNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Resolves when no process in `pids` is alive any more; rejects after `timeoutMs`. */
export async function processesGone(pids: readonly number[], timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const alive = () => pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  while (alive().length > 0) {
    if (Date.now() > deadline) throw new Error(`still running after ${timeoutMs} ms: ${alive().join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Stops a process as an operator would (SIGTERM), if it still runs, and resolves once it is gone. */
export async function stopProcess(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Gone already.
  }
  await processesGone([pid]);
}

/**
 * Hooks for a suite of kernel tests: the C workload built before it, and after it (after each of its
 * tests too, with `each`) no bpftrace process running and no BPF program loaded that was not before.
 * Gives the programs loaded since the suite began, for a test to check at a moment of its own.
 */
export function leavesKernelAsFound(options: { each?: boolean } = {}): { newPrograms: () => number[] } {
  let programsBefore: Set<number>;
  before(() => {
    workloadBinary();
    programsBefore = loadedBpfPrograms();
  });
  const check = async () => {
    // A kernel-side process still exiting as the test ends (a busy machine's detach) is given 5 s.
    for (let tries = 0; tries < 250 && kernelSideProcesses().length > 0; tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(bpftraceProcesses(), [], 'no bpftrace process is left');
    assert.deepEqual(loaderProcesses(), [], 'no loader of the native backend is left');
    // The kernel lets go of a program and its maps a little after their last user is gone (a
    // loader killed outright cannot wait for that, as a loader that is told to stop does).
    for (let tries = 0; tries < 100 && (nativeMaps().length > 0 || newBpfPrograms(programsBefore).length > 0); tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(nativeMaps(), [], 'no map of the native backend is left');
    assert.deepEqual(newBpfPrograms(programsBefore), [], 'no BPF program is left loaded');
  };
  if (options.each) afterEach(check);
  after(check);
  return { newPrograms: () => newBpfPrograms(programsBefore) };
}
