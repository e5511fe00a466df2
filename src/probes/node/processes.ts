import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { globToRegExp } from '../../plan/expr.js';

/** A running Node.js process that a js: probe point can select. */
export interface NodeProcess {
  readonly pid: number;
  readonly comm: string;
  /** The command line, for listings. */
  readonly command: string;
}

/** The process name (comm) Fay's own processes take: `*` leaves them out. */
export const FAY_COMM = 'fay';

/**
 * Names this process fay (its comm; the command line stays as it was), so that no Fay, this one or
 * another, takes it for a program to probe: a query's own work would count in its answer (a client
 * parsing the results calls JSON.parse). `comm=fay` still selects it, by name.
 */
export function nameProcessFay(): void {
  try {
    writeFileSync('/proc/self/comm', FAY_COMM);
  } catch {
    // Not Linux, or /proc is not writable here: the process keeps its name.
  }
}

/** Which processes a js: probe point means: `pid=N`, `comm=NAME` (a glob) or `*`. */
export type ProcessSelector =
  | { readonly kind: 'pid'; readonly pid: number }
  | { readonly kind: 'comm'; readonly comm: string }
  | { readonly kind: 'all' };

/** Parses a selector, or returns why it is not one. */
export function parseSelector(text: string): ProcessSelector | string {
  if (text === '*') return { kind: 'all' };
  const pid = /^pid=(\d+)$/.exec(text);
  if (pid) return { kind: 'pid', pid: Number(pid[1]) };
  const comm = /^comm=(.+)$/.exec(text);
  if (comm) return { kind: 'comm', comm: comm[1]! };
  return `"${text}" is not a process selector: use pid=N, comm=NAME or *`;
}

export function selectorText(selector: ProcessSelector): string {
  switch (selector.kind) {
    case 'pid':
      return `pid=${selector.pid}`;
    case 'comm':
      return `comm=${selector.comm}`;
    case 'all':
      return '*';
  }
}

/** A process, if it exists and runs Node.js (its executable is a node binary). */
export function nodeProcess(pid: number): NodeProcess | undefined {
  try {
    const exe = basename(readlinkSync(`/proc/${pid}/exe`));
    if (!/^node(js)?(\d+)?$/.test(exe)) return undefined;
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { pid, comm, command };
  } catch {
    return undefined;
  }
}

/**
 * Every Node.js process a selector picks (comm= a glob of its name), this process excluded, and
 * those `skip` says are known already (not read again); `*` leaves out Fay's own (FAY_COMM).
 */
export function selectProcesses(selector: ProcessSelector, skip: (pid: number) => boolean = () => false): NodeProcess[] {
  if (selector.kind === 'pid') {
    const p = nodeProcess(selector.pid);
    return p ? [p] : [];
  }
  const matchComm = selector.kind === 'comm' ? RegExp.prototype.test.bind(globToRegExp(selector.comm)) : (comm: string) => comm !== FAY_COMM;
  const found: NodeProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || skip(Number(entry))) continue;
    const p = nodeProcess(Number(entry));
    if (p && matchComm(p.comm)) found.push(p);
  }
  return found;
}

/** A process's network namespace (as /proc names it, e.g. net:[4026531840]), or undefined if it cannot be read. */
export function networkNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** The pid a process knows itself by, in its own pid namespace (a container's), from /proc's NSpid; else the pid. */
export function pidInItsNamespace(pid: number): number {
  try {
    const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
    return Number(nspid?.[nspid.length - 1] ?? pid);
  } catch {
    return pid;
  }
}

/** Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux architecture Node.js runs on). */
const USER_HZ = 100;

/**
 * When a process started, in clock ticks since boot, or undefined if it is gone: with the pid, it
 * tells one process from a later one that got the same pid.
 */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces and parentheses): state is field 3, starttime field 22.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** How long ago (ms) a process that started at `start` (processStart) did. */
export function msSinceStart(start: number): number {
  const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return uptimeS * 1000 - (start / USER_HZ) * 1000;
}

/** How long ago (ms) a process started, or undefined if it is gone. */
export function processAgeMs(pid: number): number | undefined {
  const start = processStart(pid);
  return start === undefined ? undefined : msSinceStart(start);
}
