import type { AggregateKind } from '../../agg/aggregate.js';
import { linearBucketOfEntry, type HistState } from '../../agg/histograms.js';
import { GroupTable, type KeyPart } from '../../agg/group-table.js';
import { log2BucketFromLow } from '../../agg/log2.js';
import type { Value } from '../../plan/expr.js';
import type { Row } from '../../plan/evaluate.js';
import type { ProbePartial, ProbeSink } from '../provider.js';
import {
  MARK_DUMP,
  MARK_END,
  MARK_FLUSH,
  MARK_ROTATED,
  RAW_SYSCALL_BASE,
  type AggregateLayout,
  type AggregateMaps,
  type KeyDecoding,
  type MapRef,
  type ProgramLayout,
} from './layout.js';
import { bufferBytes, socketAddressText } from './sockaddr.js';

export interface DecoderOptions {
  /** Groups a partial keeps before folding the rest into (other). */
  readonly maxGroups: number;
  /** The size of the kernel maps (BPFTRACE_MAP_KEYS_MAX). */
  readonly mapKeysMax: number;
  /** Called once a triggered dump has been read, to re-arm the recorder. */
  readonly onDumpRead?: () => void;
  /**
   * Wall-clock ns less kernel ns as it is now (default: the program's, fixed when it was compiled).
   * Flushes and dumps are stamped with it, so that a wall clock stepped during the query moves
   * its windows with the client's clock.
   */
  readonly clockOffsetNs?: () => number;
}

/** A printed map's entries: printed key → value (a number, or hist buckets). */
type MapEntries = Map<string, number | Map<number, number>>;

interface HistEntry {
  min?: number;
  max?: number;
  count: number;
}

/**
 * Reads bpftrace's JSON output (-f json) for one generated program and turns
 * it into delta partials and shipped events. bpftrace maps are cumulative and
 * never cleared while running (clearing races with writers and loses counts);
 * each flush is subtracted from the previous one instead.
 */
export class BpftraceOutputDecoder {
  private readonly previous = new Map<string, MapEntries>();
  private readonly dictionaries = new Map<string, Map<number, string>>();
  private collecting: { kind: 'flush' | 'rotated' | 'dump'; label: number; maps: Map<string, unknown> } | undefined;
  private flushes = 0;
  private windowStartNs: number;
  /** Windows whose alternating buffers are still to come, by window index. */
  private readonly pending = new Map<number, ProbePartial>();
  private readonly clockOffsetNs: () => number;
  /** The texts of the join() calls printed since the last event, for it. */
  private readonly joined: string[] = [];

  constructor(
    private readonly layout: ProgramLayout,
    private readonly kinds: readonly AggregateKind[],
    private readonly sink: ProbeSink,
    startNs: number,
    private readonly options: DecoderOptions,
  ) {
    this.windowStartNs = startNs;
    this.clockOffsetNs = options.clockOffsetNs ?? (() => layout.clockOffsetNs);
  }

  /** The probes are attached: the first period starts now (wall-clock ns). */
  startAt(ns: number): void {
    this.windowStartNs = ns;
  }

  /** Feeds one line of bpftrace's standard output. Lines that are not JSON (blank separators) are skipped. */
  line(text: string): void {
    if (!text.startsWith('{')) return;
    let message: { type?: string; data?: unknown };
    try {
      message = parseBpftraceJson(text) as { type?: string; data?: unknown };
    } catch {
      this.sink.notice(`unreadable line from bpftrace: ${text.slice(0, 120)}`);
      return;
    }
    switch (message.type) {
      case 'printf':
        this.marker(String(message.data));
        break;
      case 'map':
      case 'hist':
        if (this.collecting && message.data && typeof message.data === 'object') {
          for (const [name, value] of Object.entries(message.data)) this.collecting.maps.set(name, value);
        }
        break;
      case 'value':
        if (this.layout.ship && Array.isArray(message.data)) this.sink.events([this.event(message.data)]);
        this.joined.length = 0;
        break;
      case 'join':
        // Printed just before the event that holds it (see the ship action), in the same order.
        if (this.joined.length < 16) this.joined.push(typeof message.data === 'string' ? message.data : '');
        break;
      case 'lost_events': {
        const lost = (message.data as { events?: number } | undefined)?.events ?? 0;
        this.sink.notice(`the kernel dropped ${lost} events: they came faster than bpftrace could read them`);
        break;
      }
      default:
        break;
    }
  }

  /** Delivers windows still waiting for their min/max buffers (at exit). */
  finish(): void {
    for (const index of [...this.pending.keys()].sort((a, b) => a - b)) {
      this.sink.partial(this.pending.get(index)!);
      this.pending.delete(index);
    }
  }

  private marker(text: string): void {
    if (text.startsWith(MARK_FLUSH)) {
      this.collecting = { kind: 'flush', label: Number(text.slice(MARK_FLUSH.length)), maps: new Map() };
    } else if (text.startsWith(MARK_DUMP)) {
      // "fay:dump <kernel ns of the trigger>", or "fay:dump end" for the last dump.
      this.collecting = { kind: 'dump', label: Number(text.slice(MARK_DUMP.length)), maps: new Map() };
    } else if (text.startsWith(MARK_ROTATED)) {
      this.collecting = { kind: 'rotated', label: Number(text.slice(MARK_ROTATED.length)), maps: new Map() };
    } else if (text.startsWith(MARK_END) && this.collecting) {
      const done = this.collecting;
      this.collecting = undefined;
      if (done.kind === 'flush') this.flush(done.label, done.maps);
      else if (done.kind === 'dump') this.dump(done.label, done.maps);
      else this.rotated(done.label, done.maps);
    }
  }

  private flush(kernelNs: number, maps: Map<string, unknown>): void {
    this.flushMaps = maps;
    const drops = this.layout.dropCounter;
    if (drops) {
      const before = (this.previous.get(drops)?.get('') as number | undefined) ?? 0;
      const now = (parseEntries(maps.get(drops), false).get('') as number | undefined) ?? 0;
      this.previous.set(drops, new Map([['', now]]));
      if (now > before) this.sink.dropped(now - before);
    }
    const aggregate = this.layout.aggregate;
    if (!aggregate) return;
    for (const name of aggregate.dictionaries) this.readDictionary(name, maps.get(name));
    const table = new GroupTable(this.kinds, { maxGroups: this.options.maxGroups });
    const groups = new Map<string, unknown[]>();
    const stateOf = (printedKey: string): unknown[] => {
      let states = groups.get(printedKey);
      if (!states) {
        states = table.group(this.decodeKey(printedKey, aggregate)).states;
        groups.set(printedKey, states);
      }
      return states;
    };

    const cumulative = (ref: MapRef): string | undefined => (ref.length === 1 ? ref[0] : undefined);
    // Merged, not assigned: past the group cap several keys share the (other) row.
    const merge = (key: string, i: number, state: unknown) => this.kinds[i]!.merge(stateOf(key)[i], state);
    aggregate.aggregates.forEach((maps, i) => {
      const deltas = (ref: MapRef, state: (delta: number) => unknown) => {
        const name = cumulative(ref);
        if (name) for (const [key, delta] of this.deltas(name)) merge(key, i, state(delta));
      };
      switch (maps.function) {
        case 'count':
          deltas(maps.count, (count) => ({ count }));
          break;
        case 'sum':
          deltas(maps.sum, (sum) => ({ sum }));
          break;
        case 'avg':
          deltas(maps.sum, (sum) => ({ sum, count: 0 }));
          deltas(maps.count, (count) => ({ sum: 0, count }));
          break;
        case 'hist':
        case 'lhist': {
          const name = cumulative(maps.hist);
          if (name) for (const [key, buckets] of this.histDeltas(name, bucketMapping(maps))) merge(key, i, { buckets } satisfies HistState);
          break;
        }
        case 'min':
        case 'max': {
          // Cumulative extremes merge idempotently: the current value is a valid partial.
          const name = cumulative(maps.value);
          if (!name) break;
          const before = this.previous.get(name);
          for (const [key, value] of this.entries(name)) if (before?.get(key) !== value) merge(key, i, { value });
          break;
        }
      }
    });
    const uncountedEvents = this.uncountedSince(aggregate);
    // This flush becomes the baseline only after every delta was taken against the previous one.
    for (const [name, entries] of this.parsed) this.previous.set(name, entries);
    this.parsed.clear();

    const endNs = Math.max(this.windowStartNs, kernelNs + this.clockOffsetNs());
    const partial: ProbePartial = { table, startNs: this.windowStartNs, endNs, ...(uncountedEvents > 0 && { uncountedEvents }) };
    this.windowStartNs = endNs;
    const index = this.flushes++;
    if (aggregate.rotation !== 'none') this.pending.set(index, partial);
    else this.sink.partial(partial);
  }

  /**
   * The flight recorder's rings: the last `size` events by kernel time, up to
   * the trigger's time (events on other CPUs may race past it), oldest first.
   */
  private dump(triggerKernelNs: number, maps: Map<string, unknown>): void {
    const record = this.layout.record;
    if (!record) return;
    const raw = maps.get(record.ring);
    const slots = raw && typeof raw === 'object' ? Object.values(raw as Record<string, unknown>) : [];
    const triggered = !Number.isNaN(triggerKernelNs);
    const events = slots
      .filter((e): e is [number, ...unknown[]] => Array.isArray(e) && typeof e[0] === 'number')
      .filter((e) => !triggered || e[0] <= triggerKernelNs)
      .sort((a, b) => a[0] - b[0])
      .slice(-record.size);
    const rows = events.map((event) => {
      const row: Record<string, Value> = {};
      record.columns.forEach((c, i) => {
        const value = event[i + 1];
        row[c.name] = typeof value === 'number' || typeof value === 'string' ? this.decodeValue(value, c.decoding) : '';
      });
      return row;
    });
    this.sink.dump({ rows, triggerNs: triggered ? triggerKernelNs + this.clockOffsetNs() : undefined });
    if (triggered) this.options.onDumpRead?.();
  }

  /** A window's alternating buffers, printed once it closed: their values are that window's states as they are. */
  private rotated(window: number, maps: Map<string, unknown>): void {
    const aggregate = this.layout.aggregate;
    const partial = this.pending.get(window);
    if (!aggregate || !partial) return;
    const keyed = aggregate.printedParts > 0;
    const merge = (ref: MapRef, i: number, state: (value: number | Map<number, number>) => unknown, bucketOf?: BucketOfEntry) => {
      if (ref.length !== 2) return;
      for (const buffer of ref) {
        for (const [key, value] of parseEntries(maps.get(buffer), keyed, bucketOf)) {
          this.kinds[i]!.merge(partial.table.group(this.decodeKey(key, aggregate)).states[i], state(value));
        }
      }
    };
    aggregate.aggregates.forEach((m, i) => {
      switch (m.function) {
        case 'count':
          merge(m.count, i, (v) => ({ count: v }));
          break;
        case 'sum':
          merge(m.sum, i, (v) => ({ sum: v }));
          break;
        case 'avg':
          merge(m.sum, i, (v) => ({ sum: v, count: 0 }));
          merge(m.count, i, (v) => ({ sum: 0, count: v }));
          break;
        case 'hist':
        case 'lhist':
          merge(m.hist, i, (v) => ({ buckets: v }), bucketMapping(m));
          break;
        case 'min':
        case 'max':
          merge(m.value, i, (v) => ({ value: v }));
          break;
      }
    });
    // Its events that reached a full map: the window's own buffers, so the difference is exact.
    const seen = aggregate.seen;
    if (seen && seen.total.length === 2 && seen.counted.length === 2) {
      let total = 0;
      let counted = 0;
      for (const buffer of seen.total) total += (parseEntries(maps.get(buffer), false).get('') as number | undefined) ?? 0;
      for (const buffer of seen.counted) counted += eventsIn(parseEntries(maps.get(buffer), keyed));
      if (total > counted) this.pending.set(window, { ...partial, uncountedEvents: (partial.uncountedEvents ?? 0) + total - counted });
    }
    // Windows complete in order; a print for an already delivered window is an empty repeat.
    for (const index of [...this.pending.keys()].sort((a, b) => a - b)) {
      if (index > window) break;
      this.sink.partial(this.pending.get(index)!);
      this.pending.delete(index);
    }
  }

  /** Events that reached a full map and went uncounted, as reported so far (cumulative maps). */
  private uncountedSoFar = 0;

  /**
   * Events that went uncounted since the last flush (a keyed map was full): every event that
   * reached the maps, less those the groups counted, both cumulative. The total is printed a moment
   * before the groups, so the difference never counts an event that was merely in flight.
   */
  private uncountedSince(aggregate: AggregateLayout): number {
    const seen = aggregate.seen;
    if (!seen || seen.total.length !== 1 || seen.counted.length !== 1) return 0;
    const total = (parseEntries(this.flushMaps.get(seen.total[0]), false).get('') as number | undefined) ?? 0;
    const uncounted = total - eventsIn(this.entries(seen.counted[0])) - this.uncountedSoFar;
    if (uncounted <= 0) return 0;
    this.uncountedSoFar += uncounted;
    return uncounted;
  }

  /** The maps printed in the flush being read, and those parsed so far. */
  private flushMaps = new Map<string, unknown>();
  private readonly parsed = new Map<string, MapEntries>();

  private entries(name: string, bucketOf?: BucketOfEntry): MapEntries {
    let entries = this.parsed.get(name);
    if (entries === undefined) {
      entries = parseEntries(this.flushMaps.get(name), this.layout.aggregate!.printedParts > 0, bucketOf);
      this.parsed.set(name, entries);
      this.checkFull(name, entries.size);
    }
    return entries;
  }

  private readonly full = new Set<string>();

  /** A kernel map at its size takes no new groups: their events go uncounted. Said once per map. */
  private checkFull(name: string, size: number): void {
    if (size < this.options.mapKeysMax || this.full.has(name) || this.layout.aggregate!.printedParts === 0) return;
    this.full.add(name);
    this.sink.notice(
      `the kernel map ${name} is full (${size} groups): events of further groups are not counted; raise --max-groups or group by fewer keys`,
    );
  }

  private *deltas(name: string): Generator<[string, number]> {
    const before = this.previous.get(name);
    for (const [key, value] of this.entries(name)) {
      const delta = (value as number) - ((before?.get(key) as number | undefined) ?? 0);
      if (delta !== 0) yield [key, delta];
    }
  }

  private *histDeltas(name: string, bucketOf: BucketOfEntry): Generator<[string, Map<number, number>]> {
    const before = this.previous.get(name);
    for (const [key, value] of this.entries(name, bucketOf)) {
      const old = before?.get(key) as Map<number, number> | undefined;
      const delta = new Map<number, number>();
      for (const [bucket, n] of value as Map<number, number>) {
        const d = n - (old?.get(bucket) ?? 0);
        if (d !== 0) delta.set(bucket, d);
      }
      if (delta.size > 0) yield [key, delta];
    }
  }

  private readDictionary(name: string, raw: unknown): void {
    let dictionary = this.dictionaries.get(name);
    if (!dictionary) this.dictionaries.set(name, (dictionary = new Map<number, string>()));
    if (raw && typeof raw === 'object') {
      // The first name wins: a stack printed after its process exited loses its symbols.
      for (const [id, value] of Object.entries(raw)) if (!dictionary.has(Number(id))) dictionary.set(Number(id), String(value));
    }
  }

  private decodeKey(printed: string, aggregate: AggregateLayout): KeyPart[] {
    const parts = splitKey(printed, aggregate.printedParts, aggregate.freePart);
    return aggregate.keys.map((k) => (k.kind === 'const' ? k.value : this.decodeValue(parts[k.index] ?? '', k.decoding)));
  }

  private decodeValue(text: string | number, decoding: KeyDecoding): KeyPart {
    if (typeof decoding === 'object') {
      return this.dictionaries.get(decoding.dictionary)?.get(Number(text)) ?? `(unknown string #${text})`;
    }
    switch (decoding) {
      case 'int':
        return typeof text === 'number' ? text : parseInteger(text);
      case 'bool':
        return Number(text) !== 0;
      case 'str':
      case 'stack':
        return String(text);
      case 'probe':
        return this.probeName(Number(text));
      case 'joined':
        // Only an event holds one (see event()): a key never does.
        return '';
      case 'sockaddr':
        return socketAddressText(bufferBytes(String(text)));
    }
  }

  private probeName(id: number): string {
    if (id >= RAW_SYSCALL_BASE) {
      const nr = id - RAW_SYSCALL_BASE;
      return `syscall:${this.layout.rawSyscallNames?.[nr] ?? `#${nr}`}`;
    }
    return this.layout.probeNames[id] ?? `(probe #${id})`;
  }

  private event(data: unknown[]): Row {
    const row: Record<string, Value> = {};
    let joins = 0;
    this.layout.ship!.values.forEach((v, i) => {
      const raw = data[i];
      if (v.decoding === 'joined') row[v.name] = this.joined[joins++] ?? '';
      else row[v.name] = typeof raw === 'number' || typeof raw === 'string' ? this.decodeValue(raw, v.decoding) : '';
    });
    return row;
  }
}

/** bpftrace 0.17's escape of a byte above 0x7f in a string: the byte sign-extended, `\uffffffc3` for 0xc3. */
const BYTE_ESCAPE = /\\uffffff([0-9a-f]{2})/g;

/**
 * A line of bpftrace's JSON output, with its strings as the traced program had them. bpftrace
 * writes each byte above 0x7f as `\uffffffXX`, which JSON reads as U+FFFF and the text "ffXX"
 * (a file named héllo came out as h\uffffffc3\uffffffa9llo): those bytes are put back, and the
 * strings holding them read as UTF-8 (what no longer is, a U+FFFD).
 */
export function parseBpftraceJson(line: string): unknown {
  if (!line.includes('\\uffffff')) return JSON.parse(line);
  const bytes = (value: unknown): unknown => {
    if (typeof value === 'string') return /[\x80-\xff]/.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value;
    if (Array.isArray(value)) return value.map(bytes);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [bytes(k), bytes(v)]));
    return value;
  };
  // Every other character of bpftrace's output is ASCII, so each one in 0x80–0xff is such a byte.
  return bytes(JSON.parse(line.replace(BYTE_ESCAPE, '\\u00$1')));
}

/** How many events a map's entries count: their counts, or their histograms' buckets. */
function eventsIn(entries: MapEntries): number {
  let n = 0;
  for (const value of entries.values()) {
    if (typeof value === 'number') n += value;
    else for (const count of value.values()) n += count;
  }
  return n;
}

function bucketMapping(maps: AggregateMaps): BucketOfEntry {
  return maps.function === 'lhist' ? (entry) => linearBucketOfEntry(entry, maps.buckets) : log2BucketOfEntry;
}

/** Integers beyond 2^53 keep their exact decimal text rather than rounding into another group. */
function parseInteger(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) || !Number.isFinite(n) ? n : text;
}

/**
 * Splits a key printed by bpftrace (parts joined by commas). Every part but
 * `freePart` is comma-free (numbers, or ids the program interned), so the free
 * part is what lies between the known parts on its left and right.
 */
export function splitKey(printed: string, parts: number, freePart: number): string[] {
  if (parts <= 1) return [printed];
  const pieces = printed.split(',');
  if (freePart < 0) return pieces;
  const left = pieces.slice(0, freePart);
  const rightCount = parts - 1 - freePart;
  const right = rightCount === 0 ? [] : pieces.slice(pieces.length - rightCount);
  const middle = pieces.slice(freePart, pieces.length - rightCount).join(',');
  return [...left, middle, ...right];
}

/** Which histogram bucket a bpftrace hist()/lhist() entry ({min, max, count}) describes. */
export type BucketOfEntry = (entry: { min?: number; max?: number }) => number;

/** bpftrace's hist(): open below (no min) is the negative bucket, else by its min. */
export const log2BucketOfEntry: BucketOfEntry = (entry) => log2BucketFromLow(entry.min);

/** Parses one printed map (keyed or not; counts or histogram buckets) into entries. */
export function parseEntries(raw: unknown, keyed: boolean, bucketOf: BucketOfEntry = log2BucketOfEntry): MapEntries {
  const out: MapEntries = new Map();
  if (raw === undefined || raw === null) return out;
  if (!keyed) {
    out.set('', parseValue(raw, bucketOf));
    return out;
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) out.set(key, parseValue(value, bucketOf));
  return out;
}

function parseValue(value: unknown, bucketOf: BucketOfEntry): number | Map<number, number> {
  if (Array.isArray(value)) {
    const buckets = new Map<number, number>();
    for (const entry of value as HistEntry[]) {
      if (entry.count === 0) continue;
      const bucket = bucketOf(entry);
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + entry.count);
    }
    return buckets;
  }
  return typeof value === 'number' ? value : Number(value);
}
