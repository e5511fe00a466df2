/**
 * eBPF instructions, typed: a builder that Fay's native code generator writes programs with
 * (labels for jumps, map references by index for the loader to fill in), their encoding (8 bytes
 * each, as the kernel reads them) and a disassembler in the kernel verifier's notation, for
 * `fay explain`. In the spirit of cilium/ebpf's asm package; only what the generator needs.
 */

export type Register = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
/** The frame pointer: read-only, the top of the program's 512-byte stack. */
export const FP: Register = 10;

export type Size = 'u8' | 'u16' | 'u32' | 'u64';
export type AluOp = 'add' | 'sub' | 'mul' | 'div' | 'or' | 'and' | 'lsh' | 'rsh' | 'mod' | 'xor' | 'mov' | 'arsh';
export type JumpOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le' | 'sgt' | 'sge' | 'slt' | 'sle' | 'set';

// Instruction classes and fields (include/uapi/linux/bpf.h).
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU64 = 0x07, JMP = 0x05;
const K = 0x00, X = 0x08;
const IMM = 0x00, MEM = 0x60;
/** An atomic read-modify-write of memory (BPF_ATOMIC; imm 0 is BPF_ADD, formerly BPF_XADD). */
const ATOMIC = 0xc0;
const DW = 0x18;
const SIZES: Readonly<Record<Size, number>> = { u32: 0x00, u16: 0x08, u8: 0x10, u64: 0x18 };
const ALU: Readonly<Record<AluOp, number>> = { add: 0x00, sub: 0x10, mul: 0x20, div: 0x30, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70, mod: 0x90, xor: 0xa0, mov: 0xb0, arsh: 0xc0 };
const JUMPS: Readonly<Record<JumpOp, number>> = { eq: 0x10, gt: 0x20, ge: 0x30, set: 0x40, ne: 0x50, sgt: 0x60, sge: 0x70, lt: 0xa0, le: 0xb0, slt: 0xc0, sle: 0xd0 };
const JA = 0x00, CALL = 0x80, EXIT = 0x90;
/** ld_imm64's source register when its immediate is a map (the loader puts the map's fd there). */
export const PSEUDO_MAP_FD = 1;
/** …when it is the address of a map's value (an array map's first element, plus an offset). */
export const PSEUDO_MAP_VALUE = 2;

/** Kernel helper functions the generator calls, by their numbers. */
export const HELPERS = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  probe_read: 4,
  ktime_get_ns: 5,
  get_prandom_u32: 7,
  get_smp_processor_id: 8,
  get_current_pid_tgid: 14,
  get_current_uid_gid: 15,
  get_current_comm: 16,
  get_current_cgroup_id: 80,
  probe_read_kernel: 113,
  probe_read_user_str: 114,
  ringbuf_output: 130,
} as const;
const HELPER_NAMES = new Map<number, string>(Object.entries(HELPERS).map(([name, id]) => [id, name]));

/** One instruction (ld_imm64 is two: the second has code 0 and the high half in imm). */
export interface Instruction {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

/** Where a jump goes, until assemble() knows. */
interface Pending {
  readonly at: number;
  readonly label: string;
}

/** A program being written: instructions, labels, then assemble(). */
export class Assembler {
  private readonly code: Instruction[] = [];
  private readonly labels = new Map<string, number>();
  private readonly jumps: Pending[] = [];
  private next = 0;

  /** A label name not used yet. */
  fresh(prefix: string): string {
    return `${prefix}_${this.next++}`;
  }

  private push(code: number, dst: number, src: number, off: number, imm: number): this {
    this.code.push({ code, dst, src, off, imm: imm | 0 });
    return this;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`label ${name} twice`);
    this.labels.set(name, this.code.length);
    return this;
  }

  /** dst op= imm (64 bits). */
  aluImm(op: AluOp, dst: Register, imm: number): this {
    if (!Number.isInteger(imm) || imm < -(2 ** 31) || imm >= 2 ** 31) throw new RangeError(`an immediate is 32 bits, not ${imm}`);
    return this.push(ALU64 | K | ALU[op], dst, 0, 0, imm);
  }

  /** dst op= src (64 bits). */
  aluReg(op: AluOp, dst: Register, src: Register): this {
    return this.push(ALU64 | X | ALU[op], dst, src, 0, 0);
  }

  mov(dst: Register, src: Register): this {
    return this.aluReg('mov', dst, src);
  }

  /** dst = a 64-bit constant: one mov when it fits 32 signed bits, else ld_imm64. */
  constant(dst: Register, value: bigint | number): this {
    const v = BigInt.asIntN(64, BigInt(value));
    if (v >= -(2n ** 31n) && v < 2n ** 31n) return this.aluImm('mov', dst, Number(v));
    const bits = BigInt.asUintN(64, v);
    this.push(LD | DW | IMM, dst, 0, 0, Number(BigInt.asIntN(32, bits & 0xffffffffn)));
    return this.push(0, 0, 0, 0, Number(BigInt.asIntN(32, bits >> 32n)));
  }

  /** dst = the map numbered `map` (its fd, put in by the loader). */
  loadMap(dst: Register, map: number): this {
    this.push(LD | DW | IMM, dst, PSEUDO_MAP_FD, 0, map);
    return this.push(0, 0, 0, 0, 0);
  }

  /** dst = the address of array map `map`'s first value, plus `offset`: a global variable. */
  loadMapValue(dst: Register, map: number, offset = 0): this {
    this.push(LD | DW | IMM, dst, PSEUDO_MAP_VALUE, 0, map);
    return this.push(0, 0, 0, 0, offset);
  }

  /** dst = *(size *)(src + off). */
  load(size: Size, dst: Register, src: Register, off: number): this {
    return this.push(LDX | MEM | SIZES[size], dst, src, off, 0);
  }

  /** *(size *)(dst + off) = src. */
  store(size: Size, dst: Register, off: number, src: Register): this {
    return this.push(STX | MEM | SIZES[size], dst, src, off, 0);
  }

  /** lock *(size *)(dst + off) += src: an add no other CPU's can interleave with (u32 or u64). */
  atomicAdd(size: 'u32' | 'u64', dst: Register, off: number, src: Register): this {
    return this.push(STX | ATOMIC | SIZES[size], dst, src, off, 0);
  }

  /** *(size *)(dst + off) = imm. */
  storeImm(size: Size, dst: Register, off: number, imm: number): this {
    return this.push(ST | MEM | SIZES[size], dst, 0, off, imm);
  }

  /** if (dst op imm) goto label. */
  jumpImm(op: JumpOp, dst: Register, imm: number, label: string): this {
    this.jumps.push({ at: this.code.length, label });
    return this.push(JMP | K | JUMPS[op], dst, 0, 0, imm);
  }

  /** if (dst op src) goto label. */
  jumpReg(op: JumpOp, dst: Register, src: Register, label: string): this {
    this.jumps.push({ at: this.code.length, label });
    return this.push(JMP | X | JUMPS[op], dst, src, 0, 0);
  }

  goto(label: string): this {
    this.jumps.push({ at: this.code.length, label });
    return this.push(JMP | JA, 0, 0, 0, 0);
  }

  call(helper: number): this {
    return this.push(JMP | CALL, 0, 0, 0, helper);
  }

  exit(): this {
    return this.push(JMP | EXIT, 0, 0, 0, 0);
  }

  /** The instructions, jumps resolved. */
  assemble(): Instruction[] {
    const code = this.code.slice();
    for (const { at, label } of this.jumps) {
      const target = this.labels.get(label);
      if (target === undefined) throw new Error(`no label ${label}`);
      const off = target - at - 1;
      if (off < -(2 ** 15) || off >= 2 ** 15) throw new RangeError('a jump too far');
      code[at] = { ...code[at]!, off };
    }
    return code;
  }
}

/** The bytes the kernel reads: code, dst | src << 4, off (16 bits), imm (32 bits), little-endian. */
export function encode(code: readonly Instruction[]): Buffer {
  const out = Buffer.alloc(code.length * 8);
  code.forEach((insn, i) => {
    out.writeUInt8(insn.code, i * 8);
    out.writeUInt8((insn.dst & 0xf) | ((insn.src & 0xf) << 4), i * 8 + 1);
    out.writeInt16LE(insn.off, i * 8 + 2);
    out.writeInt32LE(insn.imm, i * 8 + 4);
  });
  return out;
}

const SIZE_NAMES = new Map(Object.entries(SIZES).map(([name, bits]) => [bits, name]));
const ALU_SYMBOLS: Readonly<Record<AluOp, string>> = { add: '+=', sub: '-=', mul: '*=', div: '/=', or: '|=', and: '&=', lsh: '<<=', rsh: '>>=', mod: '%=', xor: '^=', mov: '=', arsh: 's>>=' };
const JUMP_SYMBOLS: Readonly<Record<JumpOp, string>> = { eq: '==', ne: '!=', gt: '>', ge: '>=', lt: '<', le: '<=', sgt: 's>', sge: 's>=', slt: 's<', sle: 's<=', set: '&' };
const byValue = <T extends string>(table: Readonly<Record<T, number>>, value: number): T | undefined => (Object.keys(table) as T[]).find((k) => table[k] === value);

/** The program in the kernel verifier's notation, one numbered line per instruction; `maps` names map numbers. */
export function disassemble(code: readonly Instruction[], maps: readonly string[] = []): string[] {
  const lines: string[] = [];
  const mapName = (i: number) => maps[i] ?? `map#${i}`;
  for (let i = 0; i < code.length; i++) {
    const { code: op, dst, src, off, imm } = code[i]!;
    const cls = op & 0x07;
    const at = `${String(i).padStart(4)}: `;
    const size = SIZE_NAMES.get(op & 0x18) ?? '?';
    const offset = off < 0 ? ` - ${-off}` : ` + ${off}`;
    let text: string;
    if (op === (LD | DW | IMM)) {
      const high = code[i + 1]?.imm ?? 0;
      text =
        src === PSEUDO_MAP_FD ? `r${dst} = map[${mapName(imm)}]` : src === PSEUDO_MAP_VALUE ? `r${dst} = &map[${mapName(imm)}][0] + ${high}` : `r${dst} = ${(BigInt.asIntN(32, BigInt(high)) << 32n) | BigInt.asUintN(32, BigInt(imm))} ll`;
      lines.push(at + text);
      i++;
      continue;
    }
    if (cls === ALU64) {
      const name = byValue(ALU, op & 0xf0) ?? '?';
      text = `r${dst} ${ALU_SYMBOLS[name as AluOp] ?? '?'} ${op & X ? `r${src}` : imm}`;
    } else if (cls === LDX) text = `r${dst} = *(${size} *)(r${src}${offset})`;
    else if (cls === STX && (op & 0xe0) === ATOMIC) text = `lock *(${size} *)(r${dst}${offset}) += r${src}`;
    else if (cls === STX) text = `*(${size} *)(r${dst}${offset}) = r${src}`;
    else if (cls === ST) text = `*(${size} *)(r${dst}${offset}) = ${imm}`;
    else if (cls === JMP) {
      const kind = op & 0xf0;
      if (kind === CALL) text = `call ${HELPER_NAMES.get(imm) ?? `#${imm}`}`;
      else if (kind === EXIT) text = 'exit';
      else if (kind === JA) text = `goto ${i + off + 1}`;
      else {
        const name = byValue(JUMPS, kind);
        text = `if r${dst} ${name === undefined ? '?' : JUMP_SYMBOLS[name]} ${op & X ? `r${src}` : imm} goto ${i + off + 1}`;
      }
    } else text = `.insn 0x${op.toString(16)}`;
    lines.push(at + text);
  }
  return lines;
}
