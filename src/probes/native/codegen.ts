import type { AggregateSpec, Column } from '../../plan/logical.js';
import { conjoin, conjuncts, fieldsOf, type Expr } from '../../plan/expr.js';
import { DEFAULT_LIMITS } from '../../plan/limits.js';
import type { ProbeStage } from '../../plan/planner.js';
import { SYSCALL_NUMBERS_X86_64, type BpfSourceSchema } from '../bpf/sources.js';
import { SYSCALLS_X86_64 } from '../bpf/syscall-table-x86_64.js';
import type { TracepointField } from '../bpf/tracefs.js';
import { Assembler, FP, HELPERS, type Instruction, type JumpOp, type Register } from './asm.js';

/**
 * Fay's own eBPF code generator: a probe stage of the shape it covers compiled straight to eBPF
 * instructions (no bpftrace, no LLVM). What it covers (everything else goes to bpftrace, with the
 * reason for `fay explain`):
 *
 *  - sources: `syscall:` points (the raw tracepoints sys_enter and, for `ret` and `duration`,
 *    sys_exit, filtered by number); `tracepoint:` points, a program each, on its raw tracepoint,
 *    or, when the query reads the tracepoints' own integer fields, on the tracepoint's record
 *    (`syscalls:` events are system calls' own: `syscall:`); `uprobe:` functions, a program each
 *    (two with ret or duration: entry and return);
 *  - fields: pid, tid, uid, cpu, comm, probe, host, time; of functions, args[0]–args[5], ret and
 *    duration; of system calls, integer arguments
 *    (`args.flags`, `args[1]`), ret and duration; of tracepoints, integer fields (`args.sig`);
 *  - strings: `comm`, what a system call's `char *` argument points to, a tracepoint's char arrays;
 *  - a filter of comparisons of integer fields with integer constants and of strings `==`/`!=` a string,
 *    joined by and, or, not;
 *  - keys among those fields; aggregates count, sum, min, max, avg, hist, lhist of an integer field;
 *  - `sample`: each event that passed the filter kept with the query's probability;
 *  - shipped events (select, and the values of the aggregates the agent keeps): fields, through a
 *    ring buffer, within the events-a-second budget.
 *
 * The program counts into one of two per-CPU maps, the one a `phase` variable names; the reader
 * flips the phase at each period, waits for programs still running on the old map to finish, reads
 * it and empties it. So each period's figures are exact and its own, whatever the aggregate, and
 * an event is never counted twice or lost between periods. An event whose group does not fit (the
 * map is full) is counted as uncounted.
 */

// Kernel numbers (include/uapi/linux/bpf.h).
export const MAP_TYPES = { hash: 1, array: 2, percpuHash: 5, percpuArray: 6, lruHash: 9, ringbuf: 27 } as const;
export const PROG_RAW_TRACEPOINT = 17;
export const PROG_TRACEPOINT = 5;
export const PROG_KPROBE = 2;
const BPF_NOEXIST = 1;
const BPF_F_NO_PREALLOC = 1;
const EEXIST = 17;

/** x86-64's pt_regs offsets of a system call's six arguments (di, si, dx, r10, r8, r9). */
const ARG_REGISTERS = [112, 104, 96, 56, 72, 64];
/** …of a function's six arguments in the C calling convention (di, si, dx, cx, r8, r9), and of its return value (ax). */
const CALL_REGISTERS = [112, 104, 96, 88, 72, 64];
const RETURN_REGISTER = 80;
/** Where a system call's own tracepoint's record has its first argument (sys_enter_*) or its return value (sys_exit_*): after the common fields and __syscall_nr. */
const CALL_RECORD_ARGS = 16;

export interface NativeMap {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** BPF_F_… flags (BPF_F_NO_PREALLOC: values allocated as groups come). */
  readonly flags?: number;
}

/** A group key's part, where it is in the key bytes and how to read it back. */
export type KeyPart =
  | { readonly kind: 'string'; readonly offset: number; readonly size: number }
  | { readonly kind: 'int'; readonly offset: number; readonly signed: boolean }
  | { readonly kind: 'probe'; readonly offset: number }
  | { readonly kind: 'const'; readonly value: string | number };

/** A shipped value's place in an event's record: as a key part, or the event's time (monotonic ns in the record; the reader adds the wall clock's offset). */
export type ShipPart = KeyPart | { readonly kind: 'time'; readonly offset: number };

/** Events shipped to the agent through a ring buffer, each a record of the query's values, within a budget a second. */
export interface NativeShip {
  /** The ring buffer. */
  readonly ring: number;
  /** Per-CPU counts of events over the budget, and of events the ring had no room for. */
  readonly dropped: number;
  readonly lost: number;
  readonly values: readonly { readonly name: string; readonly part: ShipPart }[];
  readonly size: number;
}

/** The ring's bytes: room for ~100,000 events of ~40 bytes between two reads. */
const RING_BYTES = 1 << 22;

/** An aggregate's place in a group's value: its u64 slots. */
export interface AggregateSlots {
  readonly function: 'count' | 'sum' | 'min' | 'max' | 'avg' | 'hist' | 'lhist';
  /** count: [n]; sum: [sum]; min/max: [value, seen]; avg: [sum, n]; hist, lhist: [the first bucket's], each bucket one slot. */
  readonly offsets: readonly number[];
  /** hist, lhist: how many buckets, the first numbered -1 (below the range; a log2 histogram's negative values). */
  readonly buckets?: number;
}

/** A log2 histogram's buckets, numbered as agg/log2.ts numbers them: -1 (negative), 0, then 1…64 for [2^(k-1), 2^k). */
const LOG2_BUCKETS = 66;
/** A group's value above this many bytes is allocated as its group comes (a histogram's), not set aside for every possible group. */
const PREALLOCATED_VALUE_BYTES = 64;

/** One program: its type, where it attaches (a raw tracepoint's name, a tracepoint's `category:event`, or a function's `binary:symbol`) and its code. */
export interface NativeProgramPart {
  readonly type: number;
  readonly attach: string;
  readonly code: readonly Instruction[];
  /** A uprobe's binary and function, and whether at its return. */
  readonly uprobe?: { readonly binary: string; readonly symbol: string; readonly ret: boolean };
}

export interface NativeProgram {
  readonly maps: readonly NativeMap[];
  readonly programs: readonly NativeProgramPart[];
  /** The two maps of groups (index into maps), one per phase; undefined when the program only ships events. */
  readonly tables: readonly [number, number] | undefined;
  readonly phase: number;
  readonly uncounted: number;
  readonly keys: readonly KeyPart[];
  readonly keySize: number;
  readonly valueSize: number;
  readonly aggregates: readonly AggregateSlots[];
  /** Whether the groups are a hash by key (false: one group, an array of one). */
  readonly keyed: boolean;
  /** Tracepoints: a probe key's number is its place here (else it is a system call's number). */
  readonly probeNames?: readonly string[];
  /** The events the program ships, if it ships any. */
  readonly ship?: NativeShip;
}

/** Why the native backend does not take a stage. */
export class NotCovered extends Error {}

/** A field the program reads, and how. */
type FieldSource =
  | { readonly kind: 'pid' | 'tid' | 'uid' | 'cpu' | 'id' }
  | { readonly kind: 'ret' | 'duration' | 'time' }
  | { readonly kind: 'arg'; readonly index: number; readonly bits: 8 | 16 | 32 | 64; readonly signed: boolean }
  | { readonly kind: 'comm' }
  /** A system call's `char *` argument: the string it points to, as bpftrace reads one (63 bytes and a NUL at most). */
  | { readonly kind: 'userString'; readonly index: number }
  | { readonly kind: 'record'; readonly field: string; readonly signed: boolean }
  /** A tracepoint's `char[N]` field, N ≤ 64. */
  | { readonly kind: 'recordString'; readonly field: string; readonly size: number }
  | { readonly kind: 'callArg'; readonly index: number }
  | { readonly kind: 'const'; readonly value: string | number };

/** The bytes a user string is read into (bpftrace's default string length). */
const USER_STRING_BYTES = 64;

/** The stack bytes a field takes: a string's own size, else a u64. */
function slotBytes(source: FieldSource): number {
  return source.kind === 'comm' ? 16 : source.kind === 'userString' ? USER_STRING_BYTES : source.kind === 'recordString' ? source.size : 8;
}

/** The width and sign of a C type of a system call's argument as the format file spells it. */
function argumentType(cType: string): { bits: 8 | 16 | 32 | 64; signed: boolean } | undefined {
  const t = cType.replace(/\bconst\b|\b__user\b/g, '').replace(/\s+/g, ' ').trim();
  if (t.includes('*')) return { bits: 64, signed: false };
  if (/^(long|long int|loff_t|off_t|ssize_t|__s64|s64|time_t|clockid_t64|long long)$/.test(t)) return { bits: 64, signed: true };
  if (/^(unsigned long|size_t|u64|__u64|unsigned long long|umode_t64|aio_context_t|key_serial_t64|cap_user_header_t)$/.test(t)) return { bits: 64, signed: false };
  if (/^(int|pid_t|clockid_t|timer_t|mqd_t|key_serial_t|rwf_t|__s32|s32|qid_t)$/.test(t)) return { bits: 32, signed: true };
  if (/^(unsigned int|unsigned|u32|__u32|uid_t|gid_t|old_uid_t|old_gid_t|umode_t|mode_t|key_t)$/.test(t)) return t === 'umode_t' ? { bits: 16, signed: false } : { bits: 32, signed: false };
  if (/^(unsigned short|u16|__u16)$/.test(t)) return { bits: 16, signed: false };
  return undefined;
}

/**
 * Where a stage's programs run: on system calls (raw sys_enter and sys_exit, one program, the
 * calls told apart by number) or on tracepoints (a program each, on the raw tracepoint of its
 * name, its probe a constant).
 */
type Points =
  | {
      readonly kind: 'syscalls';
      readonly ids: readonly number[] | undefined;
      readonly args: readonly (TracepointField | undefined)[];
      /** Each call on its own tracepoints (syscalls:sys_enter_<name>, sys_exit_<name>), a program each, its names in the order of ids; else one program on the raw sys_enter. */
      readonly perCall?: readonly string[];
    }
  | {
      readonly kind: 'tracepoints';
      readonly names: readonly string[];
      /** Each tracepoint's fields, where they are in its record. */
      readonly layouts: ReadonlyMap<string, readonly TracepointField[]>;
    }
  | { readonly kind: 'functions'; readonly names: readonly string[]; readonly functions: readonly { readonly binary: string; readonly symbol: string }[] };

function pointsOf(stage: ProbeStage, perCall: boolean): Points {
  const kinds = new Set(stage.sources.map((source) => (source.schema as Partial<BpfSourceSchema>).bpf?.kind));
  if (kinds.has('uprobe')) {
    if (kinds.size > 1) throw new NotCovered('functions (uprobe:) and other points in one query (the native backend runs one kind at a time)');
    const functions = stage.sources.flatMap((source) => {
      const bpf = (source.schema as BpfSourceSchema).bpf;
      return bpf.kind === 'uprobe' ? bpf.symbols.map((symbol) => ({ binary: bpf.binary, symbol })) : [];
    });
    const unique = [...new Map(functions.map((f) => [`${f.binary}:${f.symbol}`, f])).values()];
    return { kind: 'functions', names: unique.map((f) => `${f.binary}:${f.symbol}`), functions: unique };
  }
  if (!kinds.has('tracepoint')) {
    const calls = syscallsOf(stage);
    if (!perCall || calls.ids === undefined) return { kind: 'syscalls', ...calls };
    return { kind: 'syscalls', ...calls, perCall: calls.ids.map((id) => SYSCALLS_X86_64[id]!) };
  }
  if (kinds.size > 1) throw new NotCovered('system calls and tracepoints in one query (the native backend runs either)');
  const names: string[] = [];
  const layouts = new Map<string, readonly TracepointField[]>();
  for (const source of stage.sources) {
    const bpf = (source.schema as BpfSourceSchema).bpf;
    if (bpf.kind !== 'tracepoint') continue;
    for (const [t, fields] of bpf.layouts) layouts.set(t, fields);
    for (const t of bpf.tracepoints) {
      if (t.startsWith('syscalls:')) throw new NotCovered(`${source.text} takes in tracepoint:${t}, a system call's own event (the native backend runs system calls as syscall: points)`);
      names.push(t);
    }
  }
  return { kind: 'tracepoints', names: [...new Set(names)], layouts };
}

/** The system calls a stage listens to: their numbers (undefined: every one) and their common arguments. */
function syscallsOf(stage: ProbeStage): { ids: number[] | undefined; args: readonly (TracepointField | undefined)[] } {
  const ids: number[] = [];
  let all = false;
  let args: readonly (TracepointField | undefined)[] | undefined;
  for (const source of stage.sources) {
    const bpf = (source.schema as Partial<BpfSourceSchema>).bpf;
    if (bpf?.kind !== 'syscall') throw new NotCovered(`${source.text} is neither a system call nor a tracepoint (the native backend covers syscall: and tracepoint: points)`);
    if (bpf.raw !== undefined && bpf.raw.ids === undefined) {
      // Every system call: no numbers to check (the probe key names them from the table).
      all = true;
      args = [];
      continue;
    }
    for (const s of bpf.syscalls) {
      const id = SYSCALL_NUMBERS_X86_64.get(s.name);
      if (id === undefined) throw new NotCovered(`system call ${s.name} has no x86-64 number here`);
      ids.push(id);
      // An argument by name or position is one all the calls share, at the same position: the
      // others are left as holes, so that a shared one keeps its register.
      args = (args ?? s.args).map((a, i) => (a !== undefined && s.args[i]?.name === a.name && s.args[i]?.cType === a.cType ? a : undefined));
    }
  }
  return { ids: all ? undefined : [...new Set(ids)].sort((a, b) => a - b), args: args ?? [] };
}

/** Fields known only when the system call returns. */
const RETURN_FIELDS = new Set(['ret', 'duration']);

/** How the program reads a field, or why it cannot. */
function fieldSource(name: string, points: Points, host: string): FieldSource {
  switch (name) {
    case 'pid':
    case 'tid':
    case 'uid':
    case 'cpu':
      return { kind: name };
    case 'comm':
      return { kind: 'comm' };
    case 'probe':
      return { kind: 'id' };
    case 'host':
      return { kind: 'const', value: host };
    case 'time':
      return { kind: 'time' };
  }
  if (points.kind === 'tracepoints') return recordField(name, points);
  if (points.kind === 'functions') {
    if (name === 'ret' || name === 'duration') return { kind: name };
    const index = Number(/^args\[(\d)\]$/.exec(name)?.[1] ?? -1);
    if (index < 0 || index > 5) throw new NotCovered(`field ${name} of a function (the native backend reads pid, tid, uid, cpu, comm, probe, host, args[0]–args[5], ret and duration there)`);
    return { kind: 'callArg', index };
  }
  const args = points.args;
  if (name === 'ret' || name === 'duration') return { kind: name };
  const positional = /^args\[(\d)\]$/.exec(name);
  const named = /^args\.(\w+)$/.exec(name);
  const index = positional ? Number(positional[1]) : named ? args.findIndex((a) => a?.name === named[1]) : -1;
  const arg = args[index];
  if (index < 0 || index > 5 || arg === undefined) throw new NotCovered(`field ${name} (the native backend reads pid, tid, uid, cpu, comm, probe, host and integer arguments)`);
  if (arg.type !== 'int') {
    if (/^(const\s+)?char\s*\*$/.test(arg.cType.replace(/\b__user\b/g, '').trim())) return { kind: 'userString', index };
    throw new NotCovered(`${name} is a ${arg.cType} (the native backend reads integers and strings a char * points to)`);
  }
  const type = argumentType(arg.cType);
  if (type === undefined) throw new NotCovered(`${name}'s type ${arg.cType} is not one the native backend reads`);
  return { kind: 'arg', index, ...type };
}

/** Where a tracepoint's own field is read: from its record, at each tracepoint's offset (an integer of 1, 2, 4 or 8 bytes). */
function recordField(name: string, points: Points & { kind: 'tracepoints' }): FieldSource {
  const field = /^args\.(\w+)$/.exec(name)?.[1];
  if (field === undefined) throw new NotCovered(`field ${name} of a tracepoint (the native backend reads pid, tid, uid, cpu, comm, probe, host and its integer fields there)`);
  let signed = false;
  let ints = 0;
  const strings = new Set<number>();
  for (const t of points.names) {
    const f = points.layouts.get(t)?.find((candidate) => candidate.name === field);
    if (f === undefined || f.offset === undefined) throw new NotCovered(`tracepoint:${t} has no field ${field} whose place is known`);
    if (f.type === 'str' && /^char\[\d+\]$/.test(f.cType) && (f.size ?? 0) <= USER_STRING_BYTES) strings.add(align8(f.size!));
    else if (f.type !== 'int' || ![1, 2, 4, 8].includes(f.size ?? 0)) throw new NotCovered(`${name} is a ${f.cType} (the native backend reads a tracepoint's integer fields and char arrays)`);
    else ints++;
    signed = f.signed === true;
  }
  if (strings.size > 0 && ints > 0) throw new NotCovered(`${name} is a number in some of the tracepoints and a string in others`);
  // A char array of different sizes in different tracepoints: read as the largest.
  if (strings.size > 0) return { kind: 'recordString', field, size: Math.max(...strings) };
  return { kind: 'record', field, signed };
}

/** Whether a stage's programs read tracepoints' own fields (then they are tracepoint programs on the record, not raw ones). */
function readsRecord(points: Points, fields: ReadonlySet<string>): boolean {
  return points.kind === 'tracepoints' && [...fields].some((f) => f.startsWith('args.'));
}

const FUNCTIONS = new Set(['count', 'sum', 'min', 'max', 'avg', 'hist', 'lhist']);
/** Buckets an lhist may have in the kernel (each is 8 bytes a group and CPU). */
const MAX_LINEAR_BUCKETS = 1024;

export interface NativeOptions {
  readonly host: string;
  readonly mapEntries: number;
  /** Events shipped a second at most (the rest counted as dropped). */
  readonly maxEventsPerSecond?: number;
  /** Named system calls each on its own tracepoints (as bpftrace attaches them), not all on the raw sys_enter: the machine's other calls then pay only the kernel's slow path. */
  readonly perCallTracepoints?: boolean;
  /** Only processes in this cgroup (v2) are seen: the agent stands for it (fay agent --cgroup). */
  readonly cgroupId?: bigint;
}

/** Generates the native program for a stage, or throws NotCovered saying why it cannot. */
export function nativeProgram(stage: ProbeStage, options: NativeOptions): NativeProgram {
  if (stage.record !== undefined) throw new NotCovered('record (the flight recorder) runs on bpftrace');
  const aggregate = stage.aggregate ?? { keys: [], aggregates: [] };
  if (stage.aggregate === undefined && stage.ship === undefined) throw new NotCovered('the query neither aggregates nor ships events');
  for (const value of stage.ship?.values ?? []) {
    if (value.expr.kind !== 'Field') throw new NotCovered(`the query ships ${value.name}, an expression (the native backend ships fields)`);
  }
  const points = pointsOf(stage, options.perCallTracepoints === true);
  for (const spec of aggregate.aggregates) {
    if (!FUNCTIONS.has(spec.function)) throw new NotCovered(`${spec.function}() (the native backend keeps count, sum, min, max, avg, hist, lhist)`);
    if (spec.function === 'lhist') {
      const [min = 0, max = 0, step = 1] = spec.params;
      if (![min, max, step].every(Number.isSafeInteger) || min < -(2 ** 31) || max >= 2 ** 31 || step >= 2 ** 31) throw new NotCovered('lhist with bounds beyond 32 bits');
      if (Math.ceil((max - min) / step) + 2 > MAX_LINEAR_BUCKETS) throw new NotCovered(`lhist with more than ${MAX_LINEAR_BUCKETS} buckets`);
    }
    if (spec.argument !== undefined && !(spec.argument.kind === 'Field' && spec.argument.type === 'int')) throw new NotCovered(`${spec.function} of an expression (the native backend aggregates integer fields)`);
  }
  const maps: NativeMap[] = [];
  const returns = [...fieldsRead(stage.filter, aggregate.keys, aggregate.aggregates, stage.ship?.values)].some((f) => RETURN_FIELDS.has(f));
  const whole = (filter: Expr | undefined): ProgramWork => ({ filter, keyColumns: aggregate.keys, aggregates: aggregate.aggregates, shipped: stage.ship?.values, aggregating: stage.aggregate !== undefined, sampleRate: stage.sampleRate });
  // One program on the raw sys_enter for system calls, or one per point (tracepoint, function, a call's own tracepoint), its probe a constant.
  const perPoint = points.kind !== 'syscalls' || points.perCall !== undefined;
  const count = points.kind === 'syscalls' ? (points.perCall?.length ?? 1) : points.names.length;
  const probeNames = points.kind === 'tracepoints' ? points.names.map((t) => `tracepoint:${t}`) : points.kind === 'functions' ? points.names.map((n) => `uprobe:${n}`) : undefined;
  const generator = (work: ProgramWork, starts: number | undefined, point: number) => new Generator(work, points, options, maps, starts, perPoint ? point : undefined);
  let programs: NativeProgram[];
  if (!returns) programs = Array.from({ length: count }, (_, point) => generator(whole(stage.filter), undefined, point).generate());
  else {
    // A call's entry and its return: the entry keeps its start (time, probe) by thread (and
    // function: one called inside another is timed on its own), with the filter's parts that need
    // no return value checked there; the return does the rest.
    const parts = stage.filter ? conjuncts(stage.filter) : [];
    const atEntry = parts.filter((e) => ![...fieldsOf(e)].some((f) => RETURN_FIELDS.has(f)));
    const atReturn = parts.filter((e) => !atEntry.includes(e));
    const entry: ProgramWork = { filter: atEntry.length > 0 ? conjoin(atEntry) : undefined, keyColumns: [], aggregates: [], shipped: undefined, aggregating: false, sampleRate: undefined };
    const starts = maps.push({ name: 'fay_starts', type: MAP_TYPES.lruHash, keySize: points.kind === 'functions' ? 16 : 8, valueSize: 16, maxEntries: START_ENTRIES }) - 1;
    programs = Array.from({ length: count }, (_, point) => {
      const enter = generator(entry, undefined, point).generateEntry(starts);
      const program = generator(whole(atReturn.length > 0 ? conjoin(atReturn) : undefined), starts, point).generate();
      return { ...program, programs: [enter, ...program.programs] };
    });
  }
  return { ...programs[0]!, programs: programs.flatMap((p) => p.programs), ...(probeNames !== undefined && { probeNames }) };
}

/** What one program does: its filter, the groups it keeps, the values it ships, its sampling. */
interface ProgramWork {
  readonly filter: Expr | undefined;
  readonly keyColumns: readonly Column[];
  readonly aggregates: readonly AggregateSpec[];
  /** The values each event ships, when the query ships events. */
  readonly shipped: readonly Column[] | undefined;
  /** Whether the program keeps groups (a query that only ships events, or a call's entry, keeps none). */
  readonly aggregating: boolean;
  /** The probability an event that passed the filter is kept (sample); undefined: every one. */
  readonly sampleRate: number | undefined;
}

/** The slot of bpf_get_current_pid_tgid()'s answer among the fields' (not a field name). */
const PID_TGID = '#pid_tgid';
/** …and of the starts map's key, for functions. */
const START_KEY = '#start_key';

/** Calls in flight at once, by thread: an LRU map, so that calls that never return (exit) do not fill it. */
const START_ENTRIES = 65536;

/** Stack slots: fields read once, kept at fixed places below the frame pointer. */
class Frame {
  private used = 0;
  /** A slot of `bytes` (a multiple of 8): its offset from FP. */
  take(bytes: number): number {
    this.used += bytes;
    if (this.used > 512) throw new NotCovered('the query needs more than the 512 bytes of stack an eBPF program has');
    return -this.used;
  }
}

const NEGATED: Readonly<Record<string, JumpOp>> = { '==': 'ne', '!=': 'eq', '<': 'sge', '<=': 'sgt', '>': 'sle', '>=': 'slt' };
const DIRECT: Readonly<Record<string, JumpOp>> = { '==': 'eq', '!=': 'ne', '<': 'slt', '<=': 'sle', '>': 'sgt', '>=': 'sge' };
const MIRRORED: Readonly<Record<string, string>> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

class Generator {
  private readonly asm = new Assembler();
  private readonly frame = new Frame();
  /** Where each field read so far is on the stack. */
  private readonly slots = new Map<string, number>();
  // Registers: r6 the context, r7 the phase; r0–r5 scratch (calls clobber them). Fields live in stack slots.
  private readonly ctx: Register = 6;
  private readonly phaseReg: Register = 7;

  private readonly filter: Expr | undefined;
  private readonly keyColumns: readonly Column[];
  private readonly aggregates: readonly AggregateSpec[];
  private readonly shipped: readonly Column[] | undefined;
  private readonly aggregating: boolean;
  private readonly sampleRate: number | undefined;

  constructor(
    work: ProgramWork,
    private readonly points: Points,
    private readonly options: NativeOptions,
    private readonly maps: NativeMap[],
    /** At a call's return: the map of its starts (undefined: the program is at the entry). */
    private readonly starts: number | undefined,
    /** A program on one point (a tracepoint, a function, a call's own tracepoint): its place among the points. */
    private readonly probe?: number,
  ) {
    ({ filter: this.filter, keyColumns: this.keyColumns, aggregates: this.aggregates, shipped: this.shipped, aggregating: this.aggregating, sampleRate: this.sampleRate } = work);
  }

  private source(name: string): FieldSource {
    return fieldSource(name, this.points, this.options.host);
  }

  /** Whether the program is on a system call's own tracepoint (its context that tracepoint's record). */
  private get onCall(): boolean {
    return this.points.kind === 'syscalls' && this.points.perCall !== undefined;
  }

  /** Whether the program is a tracepoint program, on the tracepoint's record (it reads the record's fields), not a raw one. */
  private get onRecord(): boolean {
    return readsRecord(this.points, fieldsRead(this.filter, this.keyColumns, this.aggregates, this.shipped));
  }

  generate(): NativeProgram {
    const { asm } = this;
    const out = 'out';
    // Keys and values: where each goes.
    const keys: KeyPart[] = [];
    let keySize = 0;
    for (const column of this.keyColumns) {
      if (column.expr.kind !== 'Field') throw new NotCovered(`key ${column.name} is an expression (the native backend keys on fields)`);
      const source = this.source(column.expr.name);
      if (source.kind === 'const') keys.push({ kind: 'const', value: source.value });
      else if (isString(source)) keys.push({ kind: 'string', offset: (keySize += slotBytes(source)) - slotBytes(source), size: slotBytes(source) });
      else if (source.kind === 'id') keys.push({ kind: 'probe', offset: (keySize += 8) - 8 });
      else keys.push({ kind: 'int', offset: (keySize += 8) - 8, signed: ((source.kind === 'arg' || source.kind === 'record') && source.signed) || source.kind === 'ret' });
    }
    let valueSize = 0;
    const slots: AggregateSlots[] = this.aggregates.map((a) => {
      const fn = a.function as AggregateSlots['function'];
      if (fn === 'hist' || fn === 'lhist') {
        const [min = 0, max = 0, step = 1] = a.params;
        const buckets = fn === 'hist' ? LOG2_BUCKETS : Math.ceil((max - min) / step) + 2;
        const at = valueSize;
        valueSize += 8 * buckets;
        return { function: fn, offsets: [at], buckets };
      }
      const n = fn === 'count' || fn === 'sum' ? 1 : 2;
      const offsets = Array.from({ length: n }, (_, i) => valueSize + 8 * i);
      valueSize += 8 * n;
      return { function: fn, offsets };
    });
    if (valueSize === 0) valueSize = 8;
    const keyed = keySize > 0;
    const tableType = keyed ? MAP_TYPES.percpuHash : MAP_TYPES.percpuArray;
    const tableKey = keyed ? keySize : 4;
    const flags = keyed && valueSize > PREALLOCATED_VALUE_BYTES ? BPF_F_NO_PREALLOC : 0;
    const tables: [number, number] | undefined = this.aggregating
      ? [
          this.map('fay_groups_0', tableType, tableKey, valueSize, keyed ? this.options.mapEntries : 1, flags),
          this.map('fay_groups_1', tableType, tableKey, valueSize, keyed ? this.options.mapEntries : 1, flags),
        ]
      : undefined;
    // A new group's first value: zeroes, from a map (a histogram's value is larger than the stack).
    const zero = keyed ? this.map('fay_zero', MAP_TYPES.array, 4, valueSize, 1) : -1;
    const phase = this.map('fay_phase', MAP_TYPES.array, 4, 8, 1);
    const uncounted = this.map('fay_uncounted', MAP_TYPES.percpuArray, 4, 8, 1);
    const ship = this.shipLayout();

    asm.mov(this.ctx, 1);
    if (this.starts !== undefined) this.takeStart(this.starts, out);
    else this.checkNumber(out);
    this.checkFilter(out);
    this.checkSample(out);
    if (ship !== undefined) this.shipEvent(ship);
    if (tables !== undefined) this.aggregate(tables, keys, keyed, keySize, zero, phase, slots, uncounted, out);
    asm.label(out).aluImm('mov', 0, 0).exit();
    return {
      maps: this.maps,
      programs: [this.part(asm.assemble(), this.starts !== undefined)],
      tables,
      phase,
      uncounted,
      keys,
      keySize,
      valueSize,
      aggregates: slots,
      keyed,
      ...(ship !== undefined && { ship }),
    };
  }

  /** The shipped values' places in an event's record, and the maps shipping uses; undefined when the query ships nothing. */
  private shipLayout(): NativeShip | undefined {
    if (this.shipped === undefined) return undefined;
    let size = 0;
    const values = this.shipped.map((column) => {
      const source = this.source((column.expr as { name: string }).name);
      const part: ShipPart =
        source.kind === 'const'
          ? { kind: 'const', value: source.value }
          : isString(source)
            ? { kind: 'string', offset: (size += slotBytes(source)) - slotBytes(source), size: slotBytes(source) }
            : source.kind === 'id'
              ? { kind: 'probe', offset: (size += 8) - 8 }
              : source.kind === 'time'
                ? { kind: 'time', offset: (size += 8) - 8 }
                : { kind: 'int', offset: (size += 8) - 8, signed: ((source.kind === 'arg' || source.kind === 'record') && source.signed) || source.kind === 'ret' };
      return { name: column.name, part };
    });
    return {
      ring: this.map('fay_events', MAP_TYPES.ringbuf, 0, 0, RING_BYTES),
      dropped: this.map('fay_dropped', MAP_TYPES.percpuArray, 4, 8, 1),
      lost: this.map('fay_lost', MAP_TYPES.percpuArray, 4, 8, 1),
      values,
      size: Math.max(8, size),
    };
  }

  /**
   * The event's record to the ring buffer, within the budget a second (a second's count in a
   * global slot, reset when the second changes: CPUs may race past the budget by a few, as
   * bpftrace's do, but every event refused is counted, per CPU, exactly); an event the ring has
   * no room for is counted as lost.
   */
  private shipEvent(ship: NativeShip): void {
    const { asm } = this;
    const done = asm.fresh('shipped');
    const over = asm.fresh('over');
    // Every value read first (reads call helpers, which clobber r0–r5).
    const from = ship.values.map((v, i) => (v.part.kind === 'const' ? undefined : this.read((this.shipped![i]!.expr as { name: string }).name)));
    const budget = this.map('fay_budget', MAP_TYPES.array, 4, 16, 1);
    const record = this.frame.take(align8(ship.size));
    // The second, from the event's time (read once: the same slot when the event ships its time).
    asm.load('u64', 0, FP, this.read('time')).aluImm('div', 0, 1_000_000_000).loadMapValue(1, budget);
    const same = asm.fresh('second');
    asm.load('u64', 2, 1, 0).jumpReg('eq', 2, 0, same).store('u64', 1, 0, 0).storeImm('u64', 1, 8, 0).label(same);
    asm.load('u64', 2, 1, 8).jumpImm('ge', 2, this.options.maxEventsPerSecond ?? DEFAULT_LIMITS.maxEventsPerSecond, over);
    asm.aluImm('mov', 2, 1).atomicAdd('u64', 1, 8, 2);
    for (let off = 0; off < align8(ship.size); off += 8) asm.storeImm('u64', FP, record + off, 0);
    ship.values.forEach((v, i) => {
      if (v.part.kind === 'const') return;
      const words = v.part.kind === 'string' ? v.part.size / 8 : 1;
      for (let w = 0; w < words; w++) asm.load('u64', 1, FP, from[i]! + 8 * w).store('u64', FP, record + v.part.offset + 8 * w, 1);
    });
    asm.loadMap(1, ship.ring).mov(2, FP).aluImm('add', 2, record).aluImm('mov', 3, ship.size).aluImm('mov', 4, 0).call(HELPERS.ringbuf_output);
    asm.jumpImm('eq', 0, 0, done);
    this.countInto(ship.lost);
    asm.goto(done).label(over);
    this.countInto(ship.dropped);
    asm.label(done);
  }

  /** The group's value updated in the current phase's map, with the key built from the fields. */
  private aggregate(tables: [number, number], keys: readonly KeyPart[], keyed: boolean, keySize: number, zero: number, phase: number, slots: readonly AggregateSlots[], uncounted: number, out: string): void {
    const { asm } = this;
    // The key, built on the stack from the fields.
    const keyAt = keyed ? this.frame.take(align8(keySize)) : this.frame.take(8);
    if (!keyed) asm.storeImm('u32', FP, keyAt, 0);
    else {
      for (let off = 0; off < align8(keySize); off += 8) asm.storeImm('u64', FP, keyAt + off, 0);
      this.keyColumns.forEach((column, i) => {
        const part = keys[i]!;
        if (part.kind === 'const') return;
        const from = this.read((column.expr as { name: string }).name);
        const words = part.kind === 'string' ? part.size / 8 : 1;
        for (let w = 0; w < words; w++) asm.load('u64', 1, FP, from + 8 * w).store('u64', FP, keyAt + part.offset + 8 * w, 1);
      });
    }
    // Values aggregated, read before the map's value is in hand (calls clobber r0–r5).
    const valueAt = this.aggregates.map((a) => (a.argument?.kind === 'Field' ? this.read(a.argument.name) : undefined));

    // The group's value in the current phase's map: found, or made. The code is written once per
    // phase, so that each helper call sees one map: the verifier then inlines an array's lookup
    // (one map reaching a call from two paths makes it call the generic one, measured ~+25 ns).
    asm.loadMapValue(1, phase).load('u64', this.phaseReg, 1, 0);
    const second = asm.fresh('phase1');
    asm.jumpImm('ne', this.phaseReg, 0, second);
    this.update(tables[0], keyed, keyAt, zero, valueAt, slots, uncounted, out);
    asm.goto(out).label(second);
    this.update(tables[1], keyed, keyAt, zero, valueAt, slots, uncounted, out);
  }

  /** The entry program of a call whose return is counted: its number checked, the filter's entry part, then its start kept by thread. */
  generateEntry(starts: number): NativeProgram['programs'][number] {
    const { asm } = this;
    const out = 'out';
    asm.mov(this.ctx, 1);
    this.checkNumber(out);
    this.checkFilter(out);
    const value = this.frame.take(16);
    const key = this.startKey();
    asm.call(HELPERS.ktime_get_ns).store('u64', FP, value, 0);
    // The probe: a system call's number (args[1] of sys_enter), or the program's own.
    const probe = this.probeConstant();
    if (probe !== undefined) asm.storeImm('u64', FP, value + 8, probe);
    else asm.load('u64', 1, this.ctx, 8).store('u64', FP, value + 8, 1);
    asm.loadMap(1, starts).mov(2, FP).aluImm('add', 2, key).mov(3, FP).aluImm('add', 3, value).aluImm('mov', 4, 0).call(HELPERS.map_update_elem);
    asm.label(out).aluImm('mov', 0, 0).exit();
    return this.part(asm.assemble(), false);
  }

  /** The program made of `code`: its type and where it attaches (at a function's return when `atReturn`). */
  private part(code: readonly Instruction[], atReturn: boolean): NativeProgramPart {
    if (this.points.kind === 'functions') {
      const { binary, symbol } = this.points.functions[this.probe!]!;
      return { type: PROG_KPROBE, attach: `${binary}:${symbol}${atReturn ? ' (return)' : ''}`, code, uprobe: { binary, symbol, ret: atReturn } };
    }
    if (this.points.kind === 'tracepoints') {
      // On the record: attached as `category:event`; raw: by the event's name alone.
      const name = this.points.names[this.probe!]!;
      return this.onRecord ? { type: PROG_TRACEPOINT, attach: name, code } : { type: PROG_RAW_TRACEPOINT, attach: name.split(':')[1]!, code };
    }
    if (this.points.perCall !== undefined) return { type: PROG_TRACEPOINT, attach: `syscalls:sys_${atReturn ? 'exit' : 'enter'}_${this.points.perCall[this.probe!]!}`, code };
    return { type: PROG_RAW_TRACEPOINT, attach: atReturn ? 'sys_exit' : 'sys_enter', code };
  }

  /** On to `out` unless the call is one of those listened to, by its number (args[1] of sys_enter), by a process of the agent's cgroup. */
  private checkNumber(out: string): void {
    const { asm } = this;
    const ids = this.points.kind === 'syscalls' && this.points.perCall === undefined ? this.points.ids : undefined;
    if (ids !== undefined) {
      asm.load('u64', 2, this.ctx, 8);
      const hit = asm.fresh('wanted');
      if (ids.length <= 8) for (const id of ids) asm.jumpImm('eq', 2, id, hit);
      else {
        // A range check per run of consecutive numbers.
        for (const [low, high] of runs(ids)) {
          if (low === high) asm.jumpImm('eq', 2, low, hit);
          else {
            const next = asm.fresh('run');
            asm.jumpImm('lt', 2, low, next).jumpImm('le', 2, high, hit).label(next);
          }
        }
      }
      asm.goto(out).label(hit);
    }
    if (this.options.cgroupId !== undefined) asm.call(HELPERS.get_current_cgroup_id).constant(1, this.options.cgroupId).jumpReg('ne', 0, 1, out);
  }

  /** On to `out` unless the filter holds. */
  private checkFilter(out: string): void {
    if (this.filter === undefined) return;
    // Every field the filter reads, read first: a field read on one branch of an `or` only
    // would be unset on the other.
    for (const name of fieldsOf(this.filter)) if (this.source(name).kind !== 'const') this.read(name);
    this.jumpIfFalse(this.filter, out);
  }

  /** On to `out` unless the event is sampled: 24 of 32 random bits below the rate's share of 2^24 (as Fay's bpftrace programs decide). */
  private checkSample(out: string): void {
    const rate = this.sampleRate;
    if (rate === undefined || rate >= 1) return;
    this.asm.call(HELPERS.get_prandom_u32).aluImm('and', 0, 0xffffff).jumpImm('ge', 0, Math.round(rate * 2 ** 24), out);
  }

  /** At the return: this thread's start taken out of `starts` (none: a call that began before the probe, not counted); its number and duration in their slots. */
  private takeStart(starts: number, out: string): void {
    const { asm } = this;
    const key = this.startKey();
    const start = this.frame.take(8);
    const id = this.frame.take(8);
    asm.loadMap(1, starts).mov(2, FP).aluImm('add', 2, key).call(HELPERS.map_lookup_elem).jumpImm('eq', 0, 0, out);
    asm.load('u64', 1, 0, 0).store('u64', FP, start, 1).load('u64', 1, 0, 8).store('u64', FP, id, 1);
    asm.loadMap(1, starts).mov(2, FP).aluImm('add', 2, key).call(HELPERS.map_delete_elem);
    this.slots.set('probe', id);
    if (fieldsRead(this.filter, this.keyColumns, this.aggregates, this.shipped).has('duration')) {
      const duration = this.frame.take(8);
      asm.call(HELPERS.ktime_get_ns).load('u64', 1, FP, start).aluReg('sub', 0, 1).store('u64', FP, duration, 0);
      this.slots.set('duration', duration);
    }
  }

  /** The group's value in `table`, found or made, and each aggregate's slots updated; on to `out` when it does not fit. */
  private update(table: number, keyed: boolean, keyAt: number, zero: number, valueAt: readonly (number | undefined)[], slots: readonly AggregateSlots[], uncounted: number, out: string): void {
    const { asm } = this;
    const have = asm.fresh('have');
    const lookup = () => asm.loadMap(1, table).mov(2, FP).aluImm('add', 2, keyAt).call(HELPERS.map_lookup_elem);
    lookup();
    asm.jumpImm('ne', 0, 0, have);
    if (keyed) {
      const zeroKey = this.zeroKeyAt ?? (this.zeroKeyAt = this.frame.take(8));
      asm.storeImm('u32', FP, zeroKey, 0).loadMap(1, zero).mov(2, FP).aluImm('add', 2, zeroKey).call(HELPERS.map_lookup_elem);
      const zeroes = asm.fresh('zeroes');
      asm.jumpImm('ne', 0, 0, zeroes);
      this.countInto(uncounted);
      asm.goto(out).label(zeroes);
      asm.mov(3, 0).loadMap(1, table).mov(2, FP).aluImm('add', 2, keyAt).aluImm('mov', 4, BPF_NOEXIST).call(HELPERS.map_update_elem);
      const made = asm.fresh('made');
      asm.jumpImm('eq', 0, 0, made).jumpImm('eq', 0, -EEXIST, made);
      this.countInto(uncounted);
      asm.goto(out).label(made);
      lookup();
      asm.jumpImm('ne', 0, 0, have);
    }
    this.countInto(uncounted);
    asm.goto(out).label(have);
    // r0: this CPU's value of the group (a per-CPU map: no other CPU writes it).
    slots.forEach((slot, i) => {
      const [first, second] = slot.offsets as [number, number | undefined];
      const at = valueAt[i];
      if (slot.function === 'hist' || slot.function === 'lhist') this.bucket(slot, this.aggregates[i]!.params, at!);
      else if (slot.function === 'count') asm.load('u64', 1, 0, first).aluImm('add', 1, 1).store('u64', 0, first, 1);
      else if (slot.function === 'sum' || slot.function === 'avg') {
        asm.load('u64', 1, 0, first).load('u64', 2, FP, at!).aluReg('add', 1, 2).store('u64', 0, first, 1);
        if (slot.function === 'avg') asm.load('u64', 1, 0, second!).aluImm('add', 1, 1).store('u64', 0, second!, 1);
      } else {
        // min/max: [value, seen]; the first value, or a smaller (larger) one, is kept.
        const keep = asm.fresh('keep');
        const skip = asm.fresh('skip');
        asm.load('u64', 2, FP, at!).load('u64', 1, 0, second!).jumpImm('eq', 1, 0, keep);
        asm.load('u64', 1, 0, first).jumpReg(slot.function === 'min' ? 'sge' : 'sle', 2, 1, skip);
        asm.label(keep).store('u64', 0, first, 2).storeImm('u64', 0, second!, 1).label(skip);
      }
    });
  }

  /**
   * Adds one to the bucket of the value at stack slot `at`, in the histogram at `slot` of the
   * group's value (r0). The bucket's index is bounded on every path, as the verifier requires of
   * an offset into a map's value.
   */
  private bucket(slot: AggregateSlots, params: readonly number[], at: number): void {
    const { asm } = this;
    const add = asm.fresh('add');
    // r2 the value; r3 the bucket's slot (bucket + 1).
    asm.load('u64', 2, FP, at);
    if (slot.function === 'hist') {
      const positive = asm.fresh('positive');
      asm.aluImm('mov', 3, 0).jumpImm('slt', 2, 0, add);
      asm.aluImm('mov', 3, 1).jumpImm('eq', 2, 0, add);
      // floor(log2(v)) by halving the range: 32, 16, 8, 4, 2, 1 bits.
      asm.label(positive).aluImm('mov', 3, 0);
      for (const bits of [32, 16, 8, 4, 2, 1]) {
        const skip = asm.fresh('bits');
        asm.mov(4, 2).aluImm('rsh', 4, bits).jumpImm('eq', 4, 0, skip).mov(2, 4).aluImm('add', 3, bits).label(skip);
      }
      asm.aluImm('add', 3, 2);
    } else {
      const [min = 0, max = 0, step = 1] = params;
      const count = slot.buckets! - 2;
      const top = asm.fresh('top');
      asm.aluImm('mov', 3, 0).jumpImm('slt', 2, min, add);
      asm.jumpImm('sge', 2, max, top);
      asm.aluImm('sub', 2, min).aluImm('div', 2, step).mov(3, 2).aluImm('add', 3, 1);
      asm.jumpImm('le', 3, count, add);
      asm.label(top).aluImm('mov', 3, count + 1);
    }
    asm.label(add).aluImm('lsh', 3, 3).aluReg('add', 3, 0);
    asm.load('u64', 1, 3, slot.offsets[0]!).aluImm('add', 1, 1).store('u64', 3, slot.offsets[0]!, 1);
  }

  private zeroKeyAt: number | undefined;
  private uncountedKeyAt: number | undefined;

  /** The number a probe key holds for a probe's name, or undefined when the query has no such probe. */
  private probeNumber(name: string): number | undefined {
    if (this.points.kind !== 'syscalls') {
      const at = this.points.names.indexOf(name.replace(this.points.kind === 'tracepoints' ? /^tracepoint:/ : /^uprobe:/, ''));
      return at < 0 ? undefined : at;
    }
    const call = /^syscall:(\w+)$/.exec(name)?.[1];
    return call === undefined ? undefined : SYSCALL_NUMBERS_X86_64.get(call);
  }

  /** A map's index: made the first time its name is asked for (the programs of one query share their maps). */
  private map(name: string, type: number, keySize: number, valueSize: number, maxEntries: number, flags = 0): number {
    const made = this.maps.findIndex((m) => m.name === name);
    if (made >= 0) return made;
    this.maps.push({ name, type, keySize, valueSize, maxEntries, ...(flags !== 0 && { flags }) });
    return this.maps.length - 1;
  }

  /** Adds one to a per-CPU counter (an array of one). */
  private countInto(counter: number): void {
    const { asm } = this;
    const none = asm.fresh('none');
    const zero = this.uncountedKeyAt ?? (this.uncountedKeyAt = this.frame.take(8));
    asm.storeImm('u32', FP, zero, 0).loadMap(1, counter).mov(2, FP).aluImm('add', 2, zero).call(HELPERS.map_lookup_elem);
    asm.jumpImm('eq', 0, 0, none).load('u64', 1, 0, 0).aluImm('add', 1, 1).store('u64', 0, 0, 1).label(none);
  }

  /** The probe a program on one point stands for: a system call's number, or its place among the tracepoints or functions; undefined for the raw sys_enter's. */
  private probeConstant(): number | undefined {
    if (this.probe === undefined) return undefined;
    return this.points.kind === 'syscalls' ? this.points.ids![this.probe]! : this.probe;
  }

  /** The starts map's key: the thread (pid_tgid), and for a function its probe too (16 bytes). */
  private startKey(): number {
    if (this.points.kind !== 'functions') return this.pidTgid();
    const known = this.slots.get(START_KEY);
    if (known !== undefined) return known;
    const thread = this.pidTgid();
    const at = this.frame.take(16);
    this.asm.load('u64', 1, FP, thread).store('u64', FP, at, 1).storeImm('u64', FP, at + 8, this.probe!);
    this.slots.set(START_KEY, at);
    return at;
  }

  /** The stack slot holding the thread's pid and tid (one u64), read the first time: pid, tid and the starts map's key share it. */
  private pidTgid(): number {
    const known = this.slots.get(PID_TGID);
    if (known !== undefined) return known;
    const at = this.frame.take(8);
    this.asm.call(HELPERS.get_current_pid_tgid).store('u64', FP, at, 0);
    this.slots.set(PID_TGID, at);
    return at;
  }

  /** The stack slot holding a field, read into it the first time (8 bytes; comm 16). */
  private read(name: string): number {
    const known = this.slots.get(name);
    if (known !== undefined) return known;
    const { asm } = this;
    const source = this.source(name);
    const at = this.frame.take(slotBytes(source));
    switch (source.kind) {
      case 'pid':
      case 'tid':
        asm.load('u64', 0, FP, this.pidTgid());
        if (source.kind === 'pid') asm.aluImm('rsh', 0, 32);
        else asm.constant(1, 0xffffffff).aluReg('and', 0, 1);
        asm.store('u64', FP, at, 0);
        break;
      case 'uid':
        asm.call(HELPERS.get_current_uid_gid).constant(1, 0xffffffff).aluReg('and', 0, 1).store('u64', FP, at, 0);
        break;
      case 'cpu':
        asm.call(HELPERS.get_smp_processor_id).store('u64', FP, at, 0);
        break;
      case 'time':
        // Monotonic ns; the reader adds the wall clock's offset.
        asm.call(HELPERS.ktime_get_ns).store('u64', FP, at, 0);
        break;
      case 'id':
        // A program on one point has its probe as a constant; a system call's number is args[1] of sys_enter.
        if (this.probeConstant() !== undefined) asm.storeImm('u64', FP, at, this.probeConstant()!);
        else asm.load('u64', 1, this.ctx, 8).store('u64', FP, at, 1);
        break;
      case 'ret':
        // args[1] of sys_exit: the return value, a long; a function's, in ax.
        if (this.starts === undefined) throw new Error('ret read at a call’s entry');
        // …in a system call's own exit tracepoint, its record's ret (after __syscall_nr).
        asm.load('u64', 1, this.ctx, this.points.kind === 'functions' ? RETURN_REGISTER : this.onCall ? CALL_RECORD_ARGS : 8).store('u64', FP, at, 1);
        break;
      case 'callArg':
        // The function's argument in its register, in the pt_regs that is the program's context.
        asm.load('u64', 1, this.ctx, CALL_REGISTERS[source.index]!).store('u64', FP, at, 1);
        break;
      case 'duration':
        throw new Error('duration is read where the start is taken');
      case 'comm':
        asm.storeImm('u64', FP, at, 0).storeImm('u64', FP, at + 8, 0);
        asm.mov(1, FP).aluImm('add', 1, at).aluImm('mov', 2, 16).call(HELPERS.get_current_comm);
        break;
      case 'userString': {
        // Zeroed first (the read leaves the bytes after the NUL as they were), then the string the
        // argument points to: the pointer from the call's record, or from its register.
        for (let w = 0; w < USER_STRING_BYTES; w += 8) asm.storeImm('u64', FP, at + w, 0);
        if (this.onCall) asm.load('u64', 3, this.ctx, CALL_RECORD_ARGS + 8 * source.index);
        else {
          const pointer = this.frame.take(8);
          asm.storeImm('u64', FP, pointer, 0);
          asm.mov(1, FP).aluImm('add', 1, pointer).aluImm('mov', 2, 8).load('u64', 3, this.ctx, 0).aluImm('add', 3, ARG_REGISTERS[source.index]!).call(HELPERS.probe_read_kernel);
          asm.load('u64', 3, FP, pointer);
        }
        asm.mov(1, FP).aluImm('add', 1, at).aluImm('mov', 2, USER_STRING_BYTES).call(HELPERS.probe_read_user_str);
        break;
      }
      case 'recordString': {
        // The char array from the record, in the widest loads its offset allows (the context must be read aligned), zero-padded.
        if (this.points.kind !== 'tracepoints') throw new Error('a record field off a tracepoint');
        const field = this.points.layouts.get(this.points.names[this.probe!]!)!.find((f) => f.name === source.field)!;
        for (let w = 0; w < source.size; w += 8) asm.storeImm('u64', FP, at + w, 0);
        const unit = [8, 4, 2, 1].find((u) => field.offset! % u === 0 && field.size! % u === 0)!;
        const size = unit === 8 ? 'u64' : unit === 4 ? 'u32' : unit === 2 ? 'u16' : 'u8';
        for (let b = 0; b < field.size!; b += unit) asm.load(size, 1, this.ctx, field.offset! + b).store(size, FP, at + b, 1);
        break;
      }
      case 'arg': {
        if (this.onCall) {
          // In the call's own tracepoint's record, eight bytes each after __syscall_nr.
          asm.load('u64', 1, this.ctx, CALL_RECORD_ARGS + 8 * source.index).store('u64', FP, at, 1);
        } else {
          // The argument's register in the pt_regs the raw tracepoint hands over, read with probe_read_kernel.
          asm.storeImm('u64', FP, at, 0);
          asm.mov(1, FP).aluImm('add', 1, at).aluImm('mov', 2, 8).load('u64', 3, this.ctx, 0).aluImm('add', 3, ARG_REGISTERS[source.index]!).call(HELPERS.probe_read_kernel);
        }
        if (source.bits < 64) {
          // To the C type's width, sign-extended when it is signed.
          const shift = 64 - source.bits;
          asm.load('u64', 1, FP, at).aluImm('lsh', 1, shift).aluImm(source.signed ? 'arsh' : 'rsh', 1, shift).store('u64', FP, at, 1);
        }
        break;
      }
      case 'record': {
        // The field at its tracepoint's offset in the record (the context), widened to 64 bits.
        if (this.points.kind !== 'tracepoints') throw new Error('a record field off a tracepoint');
        const field = this.points.layouts.get(this.points.names[this.probe!]!)!.find((f) => f.name === source.field)!;
        const size = field.size!;
        asm.load(size === 1 ? 'u8' : size === 2 ? 'u16' : size === 4 ? 'u32' : 'u64', 1, this.ctx, field.offset!);
        if (size < 8 && field.signed) asm.aluImm('lsh', 1, 64 - 8 * size).aluImm('arsh', 1, 64 - 8 * size);
        asm.store('u64', FP, at, 1);
        break;
      }
      case 'const':
        throw new NotCovered(`${name} in a filter (a constant here)`);
    }
    this.slots.set(name, at);
    return at;
  }

  /**
   * Goes to `label`, always. As a condition the verifier resolves, not a `goto`: the code after
   * an unconditional jump would be unreachable, and the kernel refuses a program with unreachable
   * instructions (a filter that can never hold, `comm == "a name longer than a comm"`).
   */
  private always(label: string): void {
    this.asm.jumpReg('eq', this.ctx, this.ctx, label);
  }

  /** Code that goes to `label` when `e` is false, and on when it is true. */
  private jumpIfFalse(e: Expr, label: string): void {
    this.branch(e, label, false);
  }

  /** Goes to `label` when `e` is `when`; on otherwise. */
  private branch(e: Expr, label: string, when: boolean): void {
    const { asm } = this;
    if (e.kind === 'Const' && typeof e.value === 'boolean') {
      if (e.value === when) this.always(label);
      return;
    }
    if (e.kind === 'Not') return this.branch(e.operand, label, !when);
    if (e.kind !== 'Binary') throw new NotCovered(`a filter of ${e.kind.toLowerCase()} (the native backend compares fields with constants)`);
    if (e.operator === 'and' || e.operator === 'or') {
      // and: false when either is false; or: true when either is true.
      if ((e.operator === 'and') === !when) {
        this.branch(e.left, label, when);
        this.branch(e.right, label, when);
      } else {
        const on = asm.fresh('on');
        this.branch(e.left, on, !when);
        this.branch(e.right, label, when);
        asm.label(on);
      }
      return;
    }
    const op = e.operator;
    if (!(op in DIRECT)) throw new NotCovered(`arithmetic (${op}) in a filter`);
    let field = e.left;
    let constant = e.right;
    let relation = op;
    if (field.kind === 'Const') [field, constant, relation] = [e.right, e.left, MIRRORED[op]! as typeof op];
    if (field.kind !== 'Field' || constant.kind !== 'Const') throw new NotCovered('a comparison that is not of a field with a constant');
    const jump = (when ? DIRECT : NEGATED)[relation]!;
    if (field.type === 'str' && field.name === 'probe' && typeof constant.value === 'string' && (relation === '==' || relation === '!=')) {
      // The probe's name is its system call's number here, or its place among the tracepoints.
      const id = this.probeNumber(constant.value);
      if (id === undefined) {
        // No system call has that name: probe never equals it.
        if ((relation === '!=') === when) this.always(label);
        return;
      }
      asm.load('u64', 1, FP, this.read('probe')).jumpImm(jump, 1, id, label);
      return;
    }
    if (field.type === 'str') {
      if (typeof constant.value !== 'string' || (relation !== '==' && relation !== '!=')) throw new NotCovered(`a string comparison other than ${field.name} == or != a string`);
      this.stringEquals(field.name, constant.value, label, (relation === '==') === when);
      return;
    }
    if (field.type !== 'int' || typeof constant.value !== 'number' || !Number.isSafeInteger(constant.value)) throw new NotCovered(`a comparison of ${field.name} with ${String(constant.value)}`);
    const at = this.read(field.name);
    asm.load('u64', 1, FP, at);
    if (constant.value >= -(2 ** 31) && constant.value < 2 ** 31) asm.jumpImm(jump, 1, constant.value, label);
    else asm.constant(2, constant.value).jumpReg(jump, 1, 2, label);
  }

  /** Goes to `label` when a string field equals `text` (`equal`) or when it does not (`!equal`): its slot compared word by word with the text, zero-padded. */
  private stringEquals(name: string, text: string, label: string, equal: boolean): void {
    const { asm } = this;
    const source = this.source(name);
    if (!isString(source)) throw new NotCovered(`${name} compared with a string`);
    const slot = slotBytes(source);
    const bytes = Buffer.alloc(slot);
    const encoded = Buffer.from(text, 'utf8');
    // A string holds at most its slot less the NUL (a char array may fill its slot): a longer text never equals it.
    if (encoded.length > (source.kind === 'recordString' ? slot : slot - 1) || encoded.includes(0)) {
      if (!equal) this.always(label);
      return;
    }
    encoded.copy(bytes);
    const at = this.read(name);
    const differs = equal ? asm.fresh('differs') : label;
    for (let w = 0; w < slot / 8; w++) asm.load('u64', 1, FP, at + 8 * w).constant(2, bytes.readBigUInt64LE(8 * w)).jumpReg('ne', 1, 2, differs);
    if (equal) asm.goto(label).label(differs);
  }
}

/** The fields a filter, keys and aggregates read. */
function fieldsRead(filter: Expr | undefined, keys: readonly Column[], aggregates: readonly AggregateSpec[], shipped: readonly Column[] = []): Set<string> {
  const fields = fieldsOf(filter);
  for (const k of keys) fieldsOf(k.expr, fields);
  for (const a of aggregates) fieldsOf(a.argument, fields);
  for (const c of shipped) fieldsOf(c.expr, fields);
  return fields;
}

function isString(source: FieldSource): boolean {
  return source.kind === 'comm' || source.kind === 'userString' || source.kind === 'recordString';
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Sorted numbers as runs of consecutive ones, [low, high]. */
function runs(ids: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const id of ids) {
    const last = out[out.length - 1];
    if (last !== undefined && id === last[1] + 1) last[1] = id;
    else out.push([id, id]);
  }
  return out;
}
