import { wireArray, wireNumber, type AggregateKind } from './aggregate.js';
import { murmur3, scalarKey } from './hash.js';

/** Registers: 2^12, for a standard error of 1.04 / sqrt(4096) ≈ 1.6%. */
const PRECISION = 12;
const REGISTERS = 1 << PRECISION;
/** Up to this many distinct values the count is exact: the hashes themselves are kept. */
const EXACT_LIMIT = 256;
export const DISTINCT_STANDARD_ERROR = 1.04 / Math.sqrt(REGISTERS);

/**
 * distinct(x): exact while there are few values (a set of 32-bit hashes), then
 * a HyperLogLog (Flajolet et al. 2007). Both merge exactly: set union, then
 * register-wise maximum.
 */
export interface DistinctState {
  hashes: Set<number> | undefined;
  registers: Uint8Array | undefined;
}

function registerAdd(registers: Uint8Array, hash: number): void {
  const index = hash >>> (32 - PRECISION);
  const rest = (hash << PRECISION) >>> 0;
  const rank = rest === 0 ? 32 - PRECISION + 1 : Math.clz32(rest) + 1;
  if (rank > registers[index]!) registers[index] = rank;
}

function toRegisters(s: DistinctState): Uint8Array {
  if (!s.registers) {
    s.registers = new Uint8Array(REGISTERS);
    for (const h of s.hashes ?? []) registerAdd(s.registers, h);
    s.hashes = undefined;
  }
  return s.registers;
}

function addHash(s: DistinctState, hash: number): void {
  if (s.registers) return registerAdd(s.registers, hash);
  s.hashes ??= new Set();
  s.hashes.add(hash);
  if (s.hashes.size > EXACT_LIMIT) toRegisters(s);
}

function estimate(registers: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (const r of registers) {
    sum += 2 ** -r;
    if (r === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / REGISTERS);
  const raw = (alpha * REGISTERS * REGISTERS) / sum;
  if (raw <= 2.5 * REGISTERS && zeros > 0) return REGISTERS * Math.log(REGISTERS / zeros);
  const two32 = 2 ** 32;
  if (raw > two32 / 30) return -two32 * Math.log(1 - raw / two32);
  return raw;
}

export const distinct: AggregateKind<DistinctState, number> = {
  name: 'distinct',
  empty: () => ({ hashes: undefined, registers: undefined }),
  add: (s, v) => addHash(s, murmur3(scalarKey(v))),
  merge: (into, from) => {
    if (from.registers) {
      const registers = toRegisters(into);
      for (let i = 0; i < REGISTERS; i++) if (from.registers[i]! > registers[i]!) registers[i] = from.registers[i]!;
    } else {
      for (const h of from.hashes ?? []) addHash(into, h);
    }
  },
  finalize: (s) => (s.registers ? Math.round(estimate(s.registers)) : (s.hashes?.size ?? 0)),
  // Wire: ["h", hash…] while exact, ["r", base64 registers] after.
  encode: (s) => (s.registers ? ['r', Buffer.from(s.registers).toString('base64')] : ['h', ...(s.hashes ?? [])]),
  decode: (w) => {
    const [tag, ...rest] = wireArray(w);
    if (tag === 'r') {
      const registers = new Uint8Array(Buffer.from(String(rest[0]), 'base64'));
      if (registers.length !== REGISTERS) throw new TypeError(`distinct registers must be ${REGISTERS} bytes`);
      return { hashes: undefined, registers };
    }
    if (tag !== 'h') throw new TypeError('distinct state is ["h", …] or ["r", …]');
    const state: DistinctState = { hashes: undefined, registers: undefined };
    for (const h of rest) addHash(state, wireNumber(h) >>> 0);
    return state;
  },
};
