import type { AggregateFunction } from '../../agg/aggregate.js';
import type { LinearBuckets } from '../../agg/histograms.js';
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
  /** Counts events the ship clause dropped over the events-per-second cap; printed every flush. */
  readonly dropCounter: string | undefined;
  readonly record: RecordLayout | undefined;
}

/**
 * The flight recorder's ring: `@fay_ring[cpu, slot] = (ktime, column…)`, a
 * ring per CPU with room for `size` events and some slack (events on other
 * CPUs that race the trigger must not evict the ones before it).
 */
export interface RecordLayout {
  readonly ring: string;
  readonly size: number;
  readonly columns: readonly DecodedColumn[];
}

/** Extra ring slots per CPU beyond the recording's size. */
export const RING_SLACK = 1024;

/** Printed before a dump of the ring: the trigger's kernel time, or "end". */
export const MARK_DUMP = 'fay:dump ';

/** Probe ids of raw system calls are this plus the system call number. */
export const RAW_SYSCALL_BASE = 1_000_000;

/** How one printed key part is turned back into a value. */
/**
 * How a printed value reads back. `joined`: the text of the join() printed just before the event;
 * `sockaddr`: a socket address's first 24 bytes, written out as text (both shipped values only).
 */
export type KeyDecoding = 'int' | 'bool' | 'str' | 'stack' | 'probe' | 'joined' | 'sockaddr' | { readonly dictionary: string };

/** One group key column of the query: a constant on this machine, or a part of the printed map key. */
export type KeyColumnLayout =
  | { readonly kind: 'const'; readonly value: Value }
  | { readonly kind: 'printed'; readonly index: number; readonly decoding: KeyDecoding; readonly type: ValueType };

/**
 * A bpftrace map holding one aggregate's state: one cumulative map (read as
 * deltas between flushes), or two buffers that alternate by window, each
 * printed and cleared half a period after its window closes.
 */
export type MapRef = readonly [string] | readonly [string, string];

/** Where each aggregate of the query lives in bpftrace maps. */
export type AggregateMaps =
  | { readonly function: 'count'; readonly count: MapRef }
  | { readonly function: 'sum'; readonly sum: MapRef }
  | { readonly function: 'avg'; readonly sum: MapRef; readonly count: MapRef }
  | { readonly function: 'hist'; readonly hist: MapRef }
  | { readonly function: 'lhist'; readonly hist: MapRef; readonly buckets: LinearBuckets }
  | { readonly function: Extract<AggregateFunction, 'min' | 'max'>; readonly value: MapRef };

/**
 * Which maps alternate: none; only min/max (they cannot be read as deltas, so
 * windows need fresh ones); or all (stack keys: bpftrace names a stack when it
 * prints it, and the name changes once its process is gone, so cumulative
 * maps would count a stack twice under two names).
 */
export type Rotation = 'none' | 'extremes' | 'all';

export interface AggregateLayout {
  readonly keys: readonly KeyColumnLayout[];
  /** How many parts the printed keys have. */
  readonly printedParts: number;
  /** Which printed part may contain commas (at most one), or -1. */
  readonly freePart: number;
  readonly aggregates: readonly AggregateMaps[];
  /** Interning dictionaries (id → string), read every flush and kept. */
  readonly dictionaries: readonly string[];
  readonly rotation: Rotation;
  /**
   * For a keyed aggregate, whose maps can fill up (a new group then goes uncounted): `total` counts
   * every event that reached the maps, `counted` is the map whose values count the events the
   * groups took (a count, or a histogram's buckets). The difference is what went uncounted.
   */
  readonly seen?: { readonly total: MapRef; readonly counted: MapRef };
}

/** Every map an aggregate uses. */
export function mapRefsOf(maps: AggregateMaps): MapRef[] {
  switch (maps.function) {
    case 'count':
      return [maps.count];
    case 'sum':
      return [maps.sum];
    case 'avg':
      return [maps.count, maps.sum];
    case 'hist':
    case 'lhist':
      return [maps.hist];
    case 'min':
    case 'max':
      return [maps.value];
  }
}

/** Each shipped event is printed as a tuple; this names and decodes its elements. */
export interface ShipLayout {
  readonly values: readonly DecodedColumn[];
}

/** A value printed by the probe: its column's name, how to read it back, its type. */
export interface DecodedColumn {
  readonly name: string;
  readonly decoding: KeyDecoding;
  readonly type: ValueType;
}

/**
 * Printed by the program's BEGIN probe. bpftrace fires BEGIN only after every
 * probe is attached, whereas its own "attached_probes" message comes before.
 */
export const MARK_READY = 'fay:ready';

/**
 * The name (comm) a thread takes for the one kill(2) that asks a program to stop or re-arm: the
 * program's clause matches on it. Matching on the call's arguments (args->pid) would cost every
 * program ~100 ms of start: bpftrace 0.17 parses a tracepoint's argument struct with clang.
 */
export function requestComm(token: number): string {
  return `fay~${token}`;
}

/** Printed once per CPU after the agent asked to stop: everything that CPU emitted before has been read. */
export const MARK_DRAINED = 'fay:drained ';

/** Markers the program prints around each flush. */
export const MARK_FLUSH = 'fay:flush ';
export const MARK_ROTATED = 'fay:rotated ';
export const MARK_END = 'fay:end';
