import { spawnSync } from 'node:child_process';
import type { TracepointField } from './tracefs.js';

/** What a value of a C type is to Fay: a number, a string, or a struct to read further into. */
export type CKind =
  | { readonly kind: 'int' }
  | { readonly kind: 'str'; readonly inline: boolean }
  | { readonly kind: 'struct'; readonly struct: string; readonly pointer: boolean }
  | { readonly kind: 'strings' }
  | { readonly kind: 'opaque' };

/** One member of a struct, as its definition spells it. */
export interface StructMember {
  readonly name: string;
  readonly cType: string;
}

/** The members of the kernel's structs (from its BTF). */
export interface StructLister {
  /** The members of `struct name`; undefined when the kernel has no such struct. */
  members(struct: string): readonly StructMember[] | undefined;
}

/** How Fay reads a value of a C type (`const struct __kernel_timespec *`, `char[16]`, `const char *const *`). */
export function kindOf(cType: string): CKind {
  const type = cType.replace(/\b(const|volatile)\b/g, ' ').replace(/\s+/g, ' ').trim();
  const pointers = (type.match(/\*/g) ?? []).length;
  const base = type.replace(/[\s*]+$/, '').replace(/\s*\[\d*\]$/, '');
  const array = /\[\d*\]$/.test(type);
  const struct = /^struct (\w+)$/.exec(base);
  if (struct) {
    if (array || pointers > 1) return { kind: 'opaque' };
    return { kind: 'struct', struct: struct[1]!, pointer: pointers === 1 };
  }
  if (/^(unsigned )?char\b/.test(base) || base === 'u8') {
    if (array && pointers === 0) return { kind: 'str', inline: true };
    if (pointers === 1) return { kind: 'str', inline: false };
    if (pointers === 2) return { kind: 'strings' };
  }
  if (array || /^union\b/.test(base) || type.includes('(')) return { kind: 'opaque' };
  return { kind: 'int' };
}

/**
 * A struct's definition as `bpftrace -lv 'struct name'` prints it from the kernel's BTF: its
 * members, one per line. Nested blocks (anonymous unions and structs) and function pointers are
 * left out: they are not values a member path can name.
 */
export function parseStruct(text: string): StructMember[] {
  const members: StructMember[] = [];
  let depth = 0;
  for (const line of text.split('\n')) {
    const opens = (line.match(/\{/g) ?? []).length;
    const closes = (line.match(/\}/g) ?? []).length;
    if (depth === 1 && opens === 0 && closes === 0) {
      const match = /^\s*(.+?)\s*\b(\w+)(\s*\[\d*\])?\s*;\s*$/.exec(line);
      if (match && !line.includes('(')) members.push({ name: match[2]!, cType: `${match[1]!}${match[3] ? match[3].trim() : ''}` });
    }
    depth += opens - closes;
  }
  return members;
}

/** Lists a struct's members through bpftrace (0.1 s each), once per struct. */
export class BpftraceStructLister implements StructLister {
  private readonly cache = new Map<string, readonly StructMember[] | undefined>();

  constructor(private readonly bpftrace: string) {}

  members(struct: string): readonly StructMember[] | undefined {
    if (!/^\w+$/.test(struct)) return undefined;
    if (!this.cache.has(struct)) {
      const listed = spawnSync(this.bpftrace, ['-lv', `struct ${struct}`], { encoding: 'utf8', timeout: 10_000 });
      const members = listed.status === 0 ? parseStruct(listed.stdout) : [];
      this.cache.set(struct, members.length > 0 ? members : undefined);
    }
    return this.cache.get(struct);
  }
}

/** Argument fields read deeper: a member behind a struct pointer (`args.rqtp.tv_sec`), or one string of an array of them (`args.argv[1]`). */
export interface DeepField {
  readonly type: 'int' | 'str';
  /** The bpftrace expression, read as a string with str() where `type` is str and not `inline`. */
  readonly raw: string;
  readonly inline: boolean;
  readonly cType: string;
  /**
   * A member path behind the argument's struct pointer: the pointer (`base`, an expression) and
   * the path read from it cast back to its struct, so that the path can be read when the call
   * returns from the pointer saved at its entry (an output struct is filled by then).
   */
  readonly behind?: { readonly base: string; readonly struct: string; readonly path: string; readonly cast: string };
}

/** The most strings of an array (argv, envp) a query may name, `args.argv[0]` … `args.argv[15]`. */
export const MAX_STRING_INDEX = 15;
/** How many members deep a path may go (`args.a.b.c.d.e`). */
const MAX_MEMBER_DEPTH = 5;

/**
 * How a field name reads an argument deeper, or undefined if it does not. A member path goes
 * through struct pointers and embedded structs as the kernel's BTF declares them; the kernel reads
 * it safely (a bad pointer reads as 0). One string of a NULL-terminated array is read only if
 * none before it is the terminator, so that nothing past the array is ever read.
 */
export function deepField(args: readonly TracepointField[], name: string, structs: StructLister): DeepField | undefined {
  const indexed = /^args\.(\w+)\[(\d+)\]$/.exec(name);
  if (indexed) {
    const arg = args.find((a) => a.name === indexed[1]);
    const index = Number(indexed[2]);
    if (!arg || kindOf(arg.cType).kind !== 'strings' || index > MAX_STRING_INDEX) return undefined;
    const at = (i: number) => `args->${arg.name}[${i}]`;
    const before = Array.from({ length: index }, (_, i) => `${at(i)} != 0`);
    const raw = before.length === 0 ? `(uint64)${at(index)}` : `((${before.join(' && ')}) ? (uint64)${at(index)} : 0)`;
    return { type: 'str', raw, inline: false, cType: 'char *' };
  }
  const named = /^args\.(\w+)((?:\.\w+)+)$/.exec(name);
  if (!named) return undefined;
  const members = named[2]!.slice(1).split('.');
  if (members.length > MAX_MEMBER_DEPTH) return undefined;
  const arg = args.find((a) => a.name === named[1]);
  if (!arg) return undefined;
  let cType = arg.cType;
  let kind = kindOf(cType);
  if (kind.kind !== 'struct' || !kind.pointer) return undefined;
  const base = `args->${arg.name}`;
  const struct = kind.struct;
  let path = '';
  for (const member of members) {
    if (kind.kind !== 'struct') return undefined;
    const found = structs.members(kind.struct)?.find((m) => m.name === member);
    if (!found) return undefined;
    path += `${kind.pointer ? '->' : '.'}${member}`;
    cType = found.cType;
    kind = kindOf(cType);
  }
  const behind = { base: `(uint64)${base}`, struct, path, cast: '' };
  switch (kind.kind) {
    case 'int':
      return { type: 'int', raw: `${base}${path}`, inline: false, cType, behind };
    case 'str':
      return { type: 'str', raw: `${base}${path}`, inline: kind.inline, cType, behind };
    case 'struct':
      return kind.pointer ? { type: 'int', raw: `(uint64)${base}${path}`, inline: false, cType, behind: { ...behind, cast: '(uint64)' } } : undefined;
    default:
      return undefined;
  }
}
