import type { AggregateFunction } from '../../agg/aggregates.js';
import type { Value, ValueType } from '../../plan/expr.js';

/**
 * What the generated bpftrace program prints and how to read it back: the
 * contract between codegen.ts and decoder.ts.
 */
export interface ProgramLayout {
  readonly text: string;
  readonly aggregate: AggregateLayout | undefined;
  readonly ship: ShipLayout | undefined;
  /** Probe id → probe point name (ids at or above RAW_SYSCALL_BASE are raw system call numbers). */
  readonly probeNames: readonly string[];
  readonly rawSyscallNames: Readonly<Record<number, string>> | undefined;
  /** Wall-clock ns minus the kernel's monotonic ns, as used in the program for `time`. */
  readonly clockOffsetNs: number;
  readonly windowed: boolean;
}

/** Probe ids of raw system calls are this plus the system call number. */
export const RAW_SYSCALL_BASE = 1_000_000;

/** How one printed key part is turned back into a value. */
export type KeyDecoding = 'int' | 'bool' | 'str' | 'stack' | 'probe' | { readonly dictionary: string };

/** One group key column of the query: a constant on this machine, or a part of the printed map key. */
export type KeyColumnLayout =
  | { readonly kind: 'const'; readonly value: Value }
  | { readonly kind: 'printed'; readonly index: number; readonly decoding: KeyDecoding; readonly type: ValueType };

/** Where each aggregate of the query lives in bpftrace maps. */
export type AggregateMaps =
  | { readonly function: 'count'; readonly count: string }
  | { readonly function: 'sum'; readonly sum: string }
  | { readonly function: 'avg'; readonly sum: string; readonly count: string }
  | { readonly function: 'hist'; readonly hist: string }
  | {
      readonly function: Extract<AggregateFunction, 'min' | 'max'>;
      /** One map when the extremes are cumulative; two alternating buffers when windowed. */
      readonly buffers: readonly [string] | readonly [string, string];
    };

export interface AggregateLayout {
  readonly keys: readonly KeyColumnLayout[];
  /** How many parts the printed keys have. */
  readonly printedParts: number;
  /** Which printed part may contain commas (at most one), or -1. */
  readonly freePart: number;
  readonly aggregates: readonly AggregateMaps[];
  /** Interning dictionaries (id → string), read every flush and kept. */
  readonly dictionaries: readonly string[];
  /** Whether min/max use alternating buffers printed half a period after each window closes. */
  readonly rotatingExtremes: boolean;
}

/** Each shipped event is printed as a tuple; this names and decodes its elements. */
export interface ShipLayout {
  readonly values: readonly { readonly name: string; readonly decoding: KeyDecoding; readonly type: ValueType }[];
}

/** Markers the program prints around each flush. */
export const MARK_FLUSH = 'fay:flush ';
export const MARK_EXTREMES = 'fay:extremes ';
export const MARK_END = 'fay:end';
