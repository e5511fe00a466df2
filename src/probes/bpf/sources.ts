import type { FieldSpec, ProbeCapabilities, ResolveFailure, SourceSchema } from '../../plan/catalog.js';
import { globToRegExp, isGlob } from '../../plan/expr.js';
import { closestNames } from '../../errors.js';
import type { KernelFunctionSupport } from './kernel-support.js';
import { SYSCALLS_X86_64 } from './syscall-table-x86_64.js';
import type { Tracefs, TracepointField } from './tracefs.js';
import type { SymbolLister } from './symbols.js';
import { deepField, kindOf, type StructLister } from './structs.js';

/** A system call the probe listens to, with its entry arguments. */
export interface SyscallTarget {
  readonly name: string;
  readonly args: readonly TracepointField[];
}

/** What one kernel-side probe point resolves to on this machine. */
export type BpfSource =
  | { readonly kind: 'syscall'; readonly point: string; readonly syscalls: readonly SyscallTarget[]; readonly raw: RawSyscalls | undefined; readonly structs: StructLister }
  | {
      readonly kind: 'tracepoint';
      readonly point: string;
      readonly tracepoints: readonly string[];
      /** The fields every one of them has (by name and kind). */
      readonly fields: readonly TracepointField[];
      /** Each tracepoint's own fields, where they are in its record (`category:event` → fields). */
      readonly layouts: ReadonlyMap<string, readonly TracepointField[]>;
      readonly structs: StructLister;
    }
  | { readonly kind: 'uprobe'; readonly point: string; readonly binary: string; readonly symbols: readonly string[] }
  | { readonly kind: 'kernel'; readonly point: string; readonly functions: readonly string[]; readonly via: 'fentry' | 'kprobe' }
  | { readonly kind: 'profile'; readonly point: string; readonly hz: number }
  | { readonly kind: 'interval'; readonly point: string; readonly periodMs: number };

/** x86-64 system call numbers by name (the generated table is by number). */
export const SYSCALL_NUMBERS_X86_64: ReadonlyMap<string, number> = new Map(Object.entries(SYSCALLS_X86_64).map(([id, name]) => [name, Number(id)]));

/** Many system calls at once go through the two raw_syscalls tracepoints, filtered by number. */
export interface RawSyscalls {
  /** Numbers to keep; undefined: every system call. */
  readonly ids: readonly number[] | undefined;
  /** Number → name, for the `probe` field. */
  readonly names: Readonly<Record<number, string>>;
}

/** A schema that also carries what the bpf provider needs to compile it. */
export interface BpfSourceSchema extends SourceSchema {
  readonly bpf: BpfSource;
}

/** Above this many system calls, one raw_syscalls probe is cheaper to attach than one tracepoint each. */
const RAW_SYSCALLS_THRESHOLD = 16;
/**
 * A probe point may expand to this many functions at most, and a query to this many kernel probes
 * in all: each takes the kernel ~70 ms to detach (360 syscall tracepoints: 25 s, measured here).
 */
export const MAX_KERNEL_PROBES = 512;
const MAX_FUNCTIONS = MAX_KERNEL_PROBES;
/**
 * A tracepoint glob may take in every tracepoint of a kernel: Fay's native backend attaches and
 * detaches thousands in seconds (docs/benchmarks.md). A query bpftrace runs is still held to
 * MAX_KERNEL_PROBES, when its program is made.
 */
const MAX_TRACEPOINTS = 8192;

export interface SourceContext {
  readonly tracefs: Tracefs;
  readonly symbols: SymbolLister;
  /** The kernel's structs, for argument fields read behind pointers (`args.rqtp.tv_sec`). */
  readonly structs: StructLister;
  readonly kernelSupport: () => KernelFunctionSupport;
  readonly capabilities: ProbeCapabilities;
}

const PREFIXES = ['syscall', 'tracepoint', 'uprobe', 'kernel', 'profile', 'interval'] as const;
export const BPF_PREFIXES: readonly string[] = PREFIXES;

/** Resolves a kernel-side probe point to its schema, or says why it cannot. */
export function resolveBpfSource(point: string, ctx: SourceContext): BpfSourceSchema | ResolveFailure {
  const colon = point.indexOf(':');
  const prefix = point.slice(0, colon);
  const rest = colon < 0 ? '' : point.slice(colon + 1);
  if (rest === '') return { reason: `${point} names no target`, hint: `e.g. ${example(prefix)}` };
  let source: BpfSource | ResolveFailure;
  switch (prefix) {
    case 'syscall':
      source = resolveSyscalls(rest, ctx);
      break;
    case 'tracepoint':
      source = resolveTracepoints(rest, ctx);
      break;
    case 'uprobe':
      source = resolveUprobe(rest, ctx);
      break;
    case 'kernel':
      source = resolveKernel(rest, ctx);
      break;
    case 'profile':
      source = resolveProfile(rest);
      break;
    case 'interval':
      source = resolveInterval(rest);
      break;
    default:
      return { reason: `unknown provider "${prefix}"`, suggestions: PREFIXES.map((p) => `${p}:`) };
  }
  if ('reason' in source) return source;
  const probeName = onlyProbe(source);
  return {
    point: source.point,
    provider: 'bpf',
    fields: fieldsOf(source),
    ...deepFieldsOf(source),
    capabilities: ctx.capabilities,
    ...(probeName !== undefined && { probeName }),
    bpf: source,
  };
}

/**
 * Fields read deeper than an argument, by name: a member behind a struct pointer
 * (`args.rqtp.tv_sec`), one string of an array of them (`args.argv[1]`). Every system call or
 * tracepoint of the source must read it alike.
 */
function deepFieldsOf(source: BpfSource): Pick<SourceSchema, 'fieldFor'> {
  let argSets: (readonly TracepointField[])[];
  if (source.kind === 'syscall' && source.raw === undefined) argSets = source.syscalls.map((s) => s.args);
  else if (source.kind === 'tracepoint') argSets = [source.fields];
  else return {};
  return {
    fieldFor: (name) => {
      const found = argSets.map((args) => deepField(args, name, source.structs));
      const first = found[0];
      if (!first || !found.every((f) => f?.type === first.type)) return undefined;
      return { name, type: first.type, description: first.cType };
    },
  };
}

/** The `probe` of every event of a source that is one probe (as sites.ts names it), or undefined. */
function onlyProbe(source: BpfSource): string | undefined {
  switch (source.kind) {
    case 'syscall':
      return source.syscalls.length === 1 && source.raw === undefined ? `syscall:${source.syscalls[0]!.name}` : undefined;
    case 'tracepoint':
      return source.tracepoints.length === 1 ? `tracepoint:${source.tracepoints[0]!}` : undefined;
    case 'uprobe':
      return source.symbols.length === 1 ? `uprobe:${source.binary}:${source.symbols[0]!}` : undefined;
    case 'kernel':
      return source.functions.length === 1 ? `kernel:${source.functions[0]!}` : undefined;
    case 'profile':
    case 'interval':
      return source.point;
  }
}

function example(prefix: string): string {
  switch (prefix) {
    case 'syscall':
      return 'syscall:openat or syscall:*';
    case 'tracepoint':
      return 'tracepoint:kmem:kmalloc';
    case 'uprobe':
      return 'uprobe:/usr/bin/node:uv_fs_open';
    case 'kernel':
      return 'kernel:vfs_read';
    case 'profile':
      return 'profile:99hz';
    case 'interval':
      return 'interval:1s';
    default:
      return 'syscall:openat';
  }
}

function matching(pattern: string, names: readonly string[]): string[] {
  if (!isGlob(pattern)) return names.includes(pattern) ? [pattern] : [];
  const re = globToRegExp(pattern);
  return names.filter((n) => re.test(n));
}

/** Every system call with tracepoints on this kernel. */
export function syscallNames(tracefs: Tracefs): string[] {
  return tracefs
    .listEvents()
    .filter((e) => e.startsWith('syscalls:sys_enter_'))
    .map((e) => e.slice('syscalls:sys_enter_'.length));
}

function resolveSyscalls(pattern: string, ctx: SourceContext): BpfSource | ResolveFailure {
  const all = syscallNames(ctx.tracefs);
  const names = matching(pattern, all);
  if (names.length === 0) {
    return { reason: `no system call matches "${pattern}"`, suggestions: closestNames(pattern, all).map((n) => `syscall:${n}`) };
  }
  const point = `syscall:${pattern}`;
  const syscalls = names.map((name) => ({ name, args: ctx.tracefs.fields('syscalls', `sys_enter_${name}`) ?? [] }));
  let raw: RawSyscalls | undefined;
  if (names.length > RAW_SYSCALLS_THRESHOLD && process.arch === 'x64') {
    const ids = names.map((n) => SYSCALL_NUMBERS_X86_64.get(n)).filter((id): id is number => id !== undefined);
    raw = { ids: names.length === all.length ? undefined : ids, names: SYSCALLS_X86_64 };
  }
  return { kind: 'syscall', point, syscalls, raw, structs: ctx.structs };
}

function resolveTracepoints(rest: string, ctx: SourceContext): BpfSource | ResolveFailure {
  const all = ctx.tracefs.listEvents();
  if (!rest.includes(':')) {
    return {
      reason: `a tracepoint is category:event, e.g. tracepoint:kmem:kmalloc; "${rest}" has no event`,
      suggestions: all.filter((e) => e.startsWith(`${rest}:`)).slice(0, 3).map((e) => `tracepoint:${e}`),
    };
  }
  const tracepoints = matching(rest, all);
  if (tracepoints.length === 0 && rest.startsWith('ftrace:')) {
    return {
      unavailable: true,
      reason: "ftrace's own events (function, kernel_stack, print, …) are not tracepoints a program can attach to: the kernel refuses them",
      hint: 'fay probes "tracepoint:*" lists the tracepoints that can be probed',
    };
  }
  if (tracepoints.length === 0) {
    return {
      reason: `no tracepoint matches "${rest}"`,
      suggestions: closestNames(rest, all).map((e) => `tracepoint:${e}`),
      hint: 'fay probes "tracepoint:*" lists them all',
    };
  }
  if (tracepoints.length > MAX_TRACEPOINTS) {
    return { reason: `tracepoint:${rest} matches ${tracepoints.length} tracepoints; narrow it to at most ${MAX_TRACEPOINTS}` };
  }
  const layouts = new Map(
    tracepoints.map((t) => {
      const [category, event] = t.split(':') as [string, string];
      return [t, ctx.tracefs.fields(category, event) ?? []] as const;
    }),
  );
  const fields = intersect([...layouts.values()]);
  return { kind: 'tracepoint', point: `tracepoint:${rest}`, tracepoints, fields, layouts, structs: ctx.structs };
}

function resolveUprobe(rest: string, ctx: SourceContext): BpfSource | ResolveFailure {
  const split = rest.lastIndexOf(':');
  if (split <= 0) return { reason: 'a uprobe is binary:function, e.g. uprobe:/usr/bin/node:uv_fs_open' };
  const binaryText = rest.slice(0, split).replace(/^"(.*)"$/, '$1');
  const pattern = rest.slice(split + 1);
  const binary = ctx.symbols.resolveBinary(binaryText);
  if (binary === undefined) {
    return { reason: `no binary or library "${binaryText}" found`, hint: 'give an absolute path, a command on PATH, or a library name such as libc' };
  }
  const symbols = ctx.symbols.functions(binary, pattern);
  if (symbols.length === 0) {
    const near = isGlob(pattern) ? [] : ctx.symbols.functions(binary, `*${pattern.slice(0, 4)}*`);
    return {
      reason: `no function in ${binary} matches "${pattern}"`,
      suggestions: closestNames(pattern, near).map((s) => `uprobe:${binary}:${s}`),
      hint: `fay probes "uprobe:${binary}:*" lists them`,
    };
  }
  if (symbols.length > MAX_FUNCTIONS) {
    return { reason: `uprobe:${binary}:${pattern} matches ${symbols.length} functions; narrow it to at most ${MAX_FUNCTIONS}` };
  }
  return { kind: 'uprobe', point: `uprobe:${binary}:${pattern}`, binary, symbols };
}

function resolveKernel(pattern: string, ctx: SourceContext): BpfSource | ResolveFailure {
  const support = ctx.kernelSupport();
  if (!support.available) {
    const name = pattern.replace(/[*?[\]]/g, '');
    const word = name.split('_').filter((w) => w.length > 2).pop() ?? name;
    const near = ctx.tracefs.listEvents().filter((e) => e.includes(name)).slice(0, 3).map((e) => `tracepoint:${e}`);
    const syscall = syscallNames(ctx.tracefs).includes(word) ? [`syscall:${word}`] : [];
    const alternatives = [...syscall, ...near].slice(0, 4);
    return {
      unavailable: true,
      reason: support.reason,
      hint: `use a tracepoint instead${alternatives.length ? `, e.g. ${alternatives.join(', ')}` : ''}; fay probes "tracepoint:*${word}*" lists candidates`,
    };
  }
  const available = ctx.tracefs.kernelFunctions();
  const functions = matching(pattern, available);
  if (functions.length === 0) {
    return { reason: `no traceable kernel function matches "${pattern}"`, suggestions: closestNames(pattern, available).map((f) => `kernel:${f}`) };
  }
  if (functions.length > MAX_FUNCTIONS) {
    return { reason: `kernel:${pattern} matches ${functions.length} functions; narrow it to at most ${MAX_FUNCTIONS}` };
  }
  return { kind: 'kernel', point: `kernel:${pattern}`, functions, via: support.via };
}

function resolveProfile(rest: string): BpfSource | ResolveFailure {
  const match = /^(?:(\d+)hz|hz:(\d+))$/.exec(rest);
  const hz = Number(match?.[1] ?? match?.[2]);
  if (!match || !(hz >= 1 && hz <= 10000)) {
    return { reason: `profile takes a sampling rate such as profile:99hz (1 to 10000), not "${rest}"` };
  }
  return { kind: 'profile', point: `profile:${hz}hz`, hz };
}

function resolveInterval(rest: string): BpfSource | ResolveFailure {
  const match = /^(\d+)(ms|s|m)$/.exec(rest);
  if (!match) return { reason: `interval takes a period such as interval:1s or interval:100ms, not "${rest}"` };
  const periodMs = Number(match[1]) * ({ ms: 1, s: 1000, m: 60000 } as const)[match[2] as 'ms' | 's' | 'm'];
  if (periodMs < 1) return { reason: 'the interval must be at least 1ms' };
  return { kind: 'interval', point: `interval:${rest}`, periodMs };
}

const CORE: readonly FieldSpec[] = [
  { name: 'time', type: 'int', description: 'when the probe fired (for a call pair: when it returned), ns since the epoch' },
  { name: 'host', type: 'str', description: 'the machine the event happened on' },
  { name: 'probe', type: 'str', description: 'the probe point that fired, e.g. syscall:openat' },
  { name: 'pid', type: 'int', description: 'process id' },
  { name: 'tid', type: 'int', description: 'thread id' },
  { name: 'comm', type: 'str', description: 'process name (up to 15 characters)' },
  { name: 'cpu', type: 'int', description: 'CPU the event happened on' },
  { name: 'uid', type: 'int', description: 'user id' },
  { name: 'kstack', type: 'stack', description: 'kernel stack' },
  { name: 'ustack', type: 'stack', description: 'user stack' },
];

const PAIR: readonly FieldSpec[] = [
  { name: 'ret', type: 'int', description: 'return value' },
  { name: 'duration', type: 'int', description: 'ns from entry to return', unit: 'ns' },
];

function positional(count: number): FieldSpec[] {
  return Array.from({ length: count }, (_, i) => ({ name: `args[${i}]`, type: 'int' as const, description: `argument ${i} as a number` }));
}

/** Fields common to every listed field set, with the same type. */
function intersect(sets: readonly (readonly TracepointField[])[]): TracepointField[] {
  const [first, ...others] = sets;
  if (!first) return [];
  return first.filter((f) => others.every((o) => o.some((g) => g.name === f.name && g.type === f.type)));
}

function argFields(fields: readonly TracepointField[]): FieldSpec[] {
  return fields.map((f) => {
    const kind = kindOf(f.cType);
    const pointsTo = kind.kind === 'strings' ? 'strings' : kind.kind === 'struct' && kind.pointer && kind.struct === 'sockaddr' ? 'sockaddr' : undefined;
    return { name: `args.${f.name}`, type: f.type, description: f.cType, ...(pointsTo && { pointsTo }) };
  });
}

/** The names system calls give the path they take (openat: filename, statfs: pathname, truncate: path), first found first. */
const PATH_ARGUMENTS = ['filename', 'pathname', 'path'];

/**
 * A system call's path argument, whatever it calls it: what `args.path` reads, so that one query
 * can group openat's and statfs's paths together. Undefined for a call that takes no path.
 */
export function pathArgument(args: readonly TracepointField[]): TracepointField | undefined {
  for (const name of PATH_ARGUMENTS) {
    const arg = args.find((a) => a.name === name && a.type === 'str');
    if (arg) return arg;
  }
  return undefined;
}

const PATH_FIELD: FieldSpec = { name: 'args.path', type: 'str', description: 'the path the call takes, whatever its name: args.filename, args.pathname or args.path' };

function fieldsOf(source: BpfSource): Map<string, FieldSpec> {
  let specific: FieldSpec[];
  switch (source.kind) {
    case 'syscall':
      specific = [
        ...(source.raw ? [] : argFields(intersect(source.syscalls.map((s) => s.args)))),
        // One name for every call's path, where each call takes one (and none calls an argument path itself).
        ...(!source.raw && source.syscalls.every((s) => pathArgument(s.args) !== undefined) ? [PATH_FIELD] : []),
        ...positional(6),
        ...PAIR,
      ];
      break;
    case 'tracepoint':
      specific = argFields(source.fields);
      break;
    case 'uprobe':
    case 'kernel':
      specific = [...positional(6), ...PAIR];
      break;
    case 'profile':
      specific = [];
      break;
    case 'interval':
      return new Map(CORE.filter((f) => ['time', 'host', 'probe', 'cpu'].includes(f.name)).map((f) => [f.name, f]));
  }
  return new Map([...CORE, ...specific].map((f) => [f.name, f]));
}
