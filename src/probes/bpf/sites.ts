import type { TracepointField } from './tracefs.js';
import { pathArgument, type BpfSource } from './sources.js';
import { RAW_SYSCALL_BASE } from './layout.js';
import { deepField, type StructLister } from './structs.js';

/**
 * Where generated code runs for one probe of a source: the bpftrace attach
 * points of its entry (and, for a call pair, its return), and how each field
 * reads there.
 */
export interface ProbeSite {
  readonly entry: readonly string[];
  /** Return-side attach points, for sources that have a return. */
  readonly exit: readonly string[] | undefined;
  /** Extra entry predicate that selects the probe's events (raw system call numbers). */
  readonly entryFilter: string | undefined;
  /** A bpftrace expression for this probe's id, when the `probe` field is needed. */
  readonly probeId: string | undefined;
  /** The id a probe point name has at this site (to compare `probe` with a name); undefined: not one of its probes. */
  readonly probeIdOf: (name: string) => number | undefined;
  /** Source-specific fields (args, ret) as read at entry, or undefined when absent there. */
  readonly entryField: (name: string) => FieldReading | undefined;
  /** Source-specific fields only the return side has (ret). */
  readonly exitField: (name: string) => FieldReading | undefined;
  /** Nested calls of the same thread are possible (functions), so entry state is kept per call depth. */
  readonly nested: boolean;
}

/** A field read in bpftrace: `raw` is what can be saved in a map, `type` says whether to read it as a string. */
export interface FieldReading {
  readonly raw: string;
  readonly type: 'int' | 'str';
  /** A string field stored inline in the record (char arrays), which cannot be saved as a pointer. */
  readonly inline?: boolean;
  /**
   * Read when the call returns, where it has a return: `save` at its entry, `read` of the saved
   * value at its return (a member behind a struct pointer: an output struct, args.statbuf's, is
   * filled only by then; an input one still reads the same).
   */
  readonly atReturn?: { readonly save: string; readonly read: (saved: string) => string };
}

/** Assigns probe ids: index into the table of probe point names. */
export class ProbeIds {
  readonly names: string[] = [];

  idOf(name: string): number {
    return this.find(name) ?? this.names.push(name) - 1;
  }

  find(name: string): number | undefined {
    const id = this.names.indexOf(name);
    return id < 0 ? undefined : id;
  }
}

function quotePath(path: string): string {
  return /^[A-Za-z0-9/._+-]+$/.test(path) ? path : `"${path}"`;
}

const none = (): undefined => undefined;

/**
 * The sites of one source. With `perProbe`, every probe point gets its own
 * site so that its id is a literal; otherwise sites share attach lists.
 */
export function sitesOf(source: BpfSource, perProbe: boolean, ids: ProbeIds): ProbeSite[] {
  switch (source.kind) {
    case 'syscall': {
      if (source.raw) {
        const filter = source.raw.ids?.map((id) => `args->id == ${id}`).join(' || ');
        return [
          {
            entry: ['tracepoint:raw_syscalls:sys_enter'],
            exit: ['tracepoint:raw_syscalls:sys_exit'],
            entryFilter: filter,
            probeId: `(${RAW_SYSCALL_BASE} + args->id)`,
            probeIdOf: (name) => {
              const nr = Object.entries(source.raw!.names).find(([, n]) => `syscall:${n}` === name)?.[0];
              return nr === undefined ? undefined : RAW_SYSCALL_BASE + Number(nr);
            },
            entryField: (name) => {
              const index = positionalIndex(name);
              return index === undefined ? undefined : { raw: `args->args[${index}]`, type: 'int' };
            },
            exitField: (name) => (name === 'ret' ? { raw: 'args->ret', type: 'int' } : undefined),
            nested: false,
          },
        ];
      }
      return source.syscalls.map((syscall) => ({
        entry: [`tracepoint:syscalls:sys_enter_${syscall.name}`],
        exit: [`tracepoint:syscalls:sys_exit_${syscall.name}`],
        entryFilter: undefined,
        probeId: String(ids.idOf(`syscall:${syscall.name}`)),
        probeIdOf: (name) => ids.find(name),
        entryField: (name) => {
          const index = positionalIndex(name);
          const arg =
            index !== undefined ? syscall.args[index] : (syscall.args.find((a) => `args.${a.name}` === name) ?? (name === 'args.path' ? pathArgument(syscall.args) : undefined));
          if (!arg && index === undefined) return deepReading(syscall.args, name, source.structs, true);
          if (!arg) return { raw: '0', type: 'int' };
          return { raw: `${syscallArgumentCast(arg)}args->${arg.name}`, type: arg.type };
        },
        exitField: (name) => (name === 'ret' ? { raw: 'args->ret', type: 'int' } : undefined),
        nested: false,
      }));
    }
    case 'tracepoint': {
      const groups = perProbe ? source.tracepoints.map((t) => [t]) : [source.tracepoints];
      return groups.map((group) => ({
        entry: group.map((t) => `tracepoint:${t}`),
        exit: undefined,
        entryFilter: undefined,
        probeId: perProbe ? String(ids.idOf(`tracepoint:${group[0]!}`)) : undefined,
        probeIdOf: (name) => ids.find(name),
        entryField: (name) => {
          const field = source.fields.find((f) => `args.${f.name}` === name);
          if (!field) return deepReading(source.fields, name, source.structs);
          // char arrays are strings in place; pointers and __data_loc strings are read with str().
          const inline = field.type === 'str' && field.cType.endsWith(']') && !field.cType.startsWith('__data_loc');
          return { raw: `args->${field.name}`, type: field.type, inline };
        },
        exitField: none,
        nested: false,
      }));
    }
    case 'uprobe': {
      const binary = quotePath(source.binary);
      // The functions Fay matched, each by name: a glob of the query never reaches bpftrace, whose
      // wildcards differ from Fay's ([abc] is a syntax error there).
      const groups = perProbe ? source.symbols.map((s) => [s]) : [source.symbols];
      return groups.map((group) => ({
        entry: group.map((s) => `uprobe:${binary}:${s}`),
        exit: group.map((s) => `uretprobe:${binary}:${s}`),
        entryFilter: undefined,
        probeId: perProbe ? String(ids.idOf(`uprobe:${source.binary}:${group[0]!}`)) : undefined,
        probeIdOf: (name) => ids.find(name),
        entryField: registerArgument,
        exitField: (name) => (name === 'ret' ? { raw: 'retval', type: 'int' } : undefined),
        nested: true,
      }));
    }
    case 'kernel': {
      const [enter, leave] = source.via === 'kprobe' ? ['kprobe', 'kretprobe'] : ['kfunc', 'kretfunc'];
      const groups = perProbe ? source.functions.map((f) => [f]) : [source.functions];
      return groups.map((group) => ({
        entry: group.map((f) => `${enter}:${f}`),
        exit: group.map((f) => `${leave}:${f}`),
        entryFilter: undefined,
        probeId: perProbe ? String(ids.idOf(`kernel:${group[0]!}`)) : undefined,
        probeIdOf: (name) => ids.find(name),
        entryField: source.via === 'kprobe' ? registerArgument : none,
        exitField: (name) => (name === 'ret' ? { raw: 'retval', type: 'int' } : undefined),
        nested: true,
      }));
    }
    case 'profile':
      return [single(`profile:hz:${source.hz}`, ids.idOf(source.point), ids)];
    case 'interval':
      return [single(`interval:ms:${source.periodMs}`, ids.idOf(source.point), ids)];
  }
}

const SIGNED_32 = new Set(['int', 'pid_t', 'key_t', 'clockid_t', 'timer_t', 'mqd_t', 'const int']);
const SIGNED_64 = new Set(['long', 'long long', 'loff_t', 'off_t', 'ssize_t', 'time_t', 's64', '__s64']);

/**
 * System call tracepoints store every argument in an unsigned 8-byte slot;
 * the declared C type says how to read it back (AT_FDCWD is -100, not 4294967196).
 */
function syscallArgumentCast(arg: TracepointField): string {
  const cType = arg.cType.replace(/^const\s+/, '');
  if (arg.type !== 'int') return '';
  if (SIGNED_32.has(cType)) return '(int32)';
  if (SIGNED_64.has(cType)) return '(int64)';
  return '';
}

function single(attach: string, id: number, ids: ProbeIds): ProbeSite {
  return {
    entry: [attach],
    exit: undefined,
    entryFilter: undefined,
    probeId: String(id),
    probeIdOf: (name) => ids.find(name),
    entryField: none,
    exitField: none,
    nested: false,
  };
}

function deepReading(args: readonly TracepointField[], name: string, structs: StructLister, returns = false): FieldReading | undefined {
  const deep = deepField(args, name, structs);
  if (!deep) return undefined;
  const behind = returns ? deep.behind : undefined;
  return {
    raw: deep.raw,
    type: deep.type,
    inline: deep.inline,
    ...(behind && { atReturn: { save: behind.base, read: (saved: string) => `${behind.cast}((struct ${behind.struct} *)${saved})${behind.path}` } }),
  };
}

function registerArgument(name: string): FieldReading | undefined {
  const index = positionalIndex(name);
  return index === undefined ? undefined : { raw: `arg${index}`, type: 'int' };
}

function positionalIndex(name: string): number | undefined {
  const match = /^args\[(\d)\]$/.exec(name);
  return match ? Number(match[1]) : undefined;
}
