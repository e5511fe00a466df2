import { wireArray, wireNumber, type AggregateKind, type AggregateResult } from './aggregate.js';
import { distinct, type DistinctState } from './hyperloglog.js';

/** One part of a group key: a number, a string (also a printed stack) or a boolean. */
export type KeyPart = number | string | boolean;

/** The key part of the row that holds the groups beyond a table's cap. */
export const OTHER = '(other)';

/** One group: its key and one state per aggregate of the query, in order. */
export interface Group {
  readonly key: readonly KeyPart[];
  readonly states: unknown[];
}

/** A finalized group: key parts and one result per aggregate. */
export interface GroupResult {
  readonly key: readonly KeyPart[];
  readonly values: readonly AggregateResult[];
}

export interface GroupTableOptions {
  /** Beyond this many groups, new groups fold into one `(other)` row. */
  readonly maxGroups?: number;
}

/** The version of the wire form below; decode refuses others. */
export const WIRE_VERSION = 1;

/**
 * Grouped aggregate states: group key → one state per aggregate. Merging two
 * tables merges the states of equal keys, in any order. Past `maxGroups`, new
 * groups fold into an `(other)` row, and the table keeps (approximately, in a
 * distinct sketch) how many groups it folded, so a capped answer says so.
 */
export class GroupTable {
  private readonly groups = new Map<string, Group>();
  private readonly maxGroups: number;
  /** Keys of the groups folded into (other); a mergeable distinct sketch. */
  private readonly folded: DistinctState = distinct.empty();

  constructor(
    readonly kinds: readonly AggregateKind[],
    options: GroupTableOptions = {},
  ) {
    this.maxGroups = options.maxGroups ?? Infinity;
  }

  /** Groups held, the (other) row included. */
  get size(): number {
    return this.groups.size;
  }

  /** How many distinct groups went to (other) (exact up to 256, then within ~1.6%). */
  get foldedGroups(): number {
    return distinct.finalize(this.folded);
  }

  /** The group for a key: created empty when new, or the (other) row when the table is full. */
  group(key: readonly KeyPart[]): Group {
    return this.groupById(JSON.stringify(key), key);
  }

  /** As group(), with the key's identity already computed (merging reuses the other table's). */
  private groupById(id: string, key: readonly KeyPart[]): Group {
    let group = this.groups.get(id);
    if (group !== undefined) return group;
    if (this.groups.size >= this.maxGroups && !key.every((p) => p === OTHER)) {
      distinct.add(this.folded, id, 0);
      return this.group(key.map(() => OTHER));
    }
    group = { key, states: this.kinds.map((k) => k.empty()) };
    this.groups.set(id, group);
    return group;
  }

  /** Adds one event to its group: one value per aggregate (ignored by count). */
  add(key: readonly KeyPart[], values: readonly unknown[], timeNs: number): void {
    const group = this.group(key);
    for (let i = 0; i < this.kinds.length; i++) this.kinds[i]!.add(group.states[i], values[i], timeNs);
  }

  /** Merges one group's states into this table. */
  mergeGroup(key: readonly KeyPart[], states: readonly unknown[]): void {
    const group = this.group(key);
    for (let i = 0; i < this.kinds.length; i++) this.kinds[i]!.merge(group.states[i], states[i]);
  }

  merge(other: GroupTable): void {
    const kinds = this.kinds;
    for (const [id, from] of other.groups) {
      const group = this.groupById(id, from.key);
      for (let i = 0; i < kinds.length; i++) kinds[i]!.merge(group.states[i], from.states[i]);
    }
    distinct.merge(this.folded, other.folded);
  }

  /**
   * Merges a table that holds some of this table's aggregates: its i-th state
   * goes to this table's aggregate `slots[i]`.
   */
  mergeSlots(other: GroupTable, slots: readonly number[]): void {
    for (const [id, from] of other.groups) {
      const group = this.groupById(id, from.key);
      slots.forEach((slot, i) => this.kinds[slot]!.merge(group.states[slot], from.states[i]));
    }
    distinct.merge(this.folded, other.folded);
  }

  /**
   * The table cut into `parts` tables of about equal group counts (sharing this one's states),
   * which merge back into it; the folded-groups sketch goes with the first. For messages that
   * must stay under a size limit.
   */
  split(parts: number): GroupTable[] {
    const groups = [...this.groups.entries()];
    const n = Math.max(1, Math.min(parts, groups.length));
    const tables = Array.from({ length: n }, () => new GroupTable(this.kinds));
    groups.forEach(([id, group], i) => tables[Math.floor((i * n) / groups.length)]!.groups.set(id, group));
    distinct.merge(tables[0]!.folded, this.folded);
    return tables;
  }

  entries(): IterableIterator<Group> {
    return this.groups.values();
  }

  finalize(): GroupResult[] {
    return [...this.groups.values()].map((g) => ({
      key: g.key,
      values: g.states.map((s, i) => this.kinds[i]!.finalize(s)),
    }));
  }

  /**
   * Compact, versioned, JSON-safe form, by column: the key parts of every group
   * one after another, then each aggregate's states in group order.
   * `{ v, arity, keys: [k0a, k0b, k1a, k1b, …], states: [[agg0 states…], [agg1 states…]], folded? }`
   */
  encode(): unknown {
    const groups = [...this.groups.values()];
    const arity = groups[0]?.key.length ?? 0;
    return {
      v: WIRE_VERSION,
      arity,
      keys: groups.flatMap((g) => g.key),
      states: this.kinds.map((kind, i) => groups.map((g) => kind.encode(g.states[i]))),
      ...(this.folded.hashes || this.folded.registers ? { folded: distinct.encode(this.folded) } : {}),
    };
  }

  /** Reads the wire form back; throws a TypeError (never anything worse) on malformed input. */
  static decode(kinds: readonly AggregateKind[], wire: unknown, options: GroupTableOptions = {}): GroupTable {
    if (!wire || typeof wire !== 'object') throw new TypeError('a group table is an object');
    const { v, arity, keys, states, folded } = wire as Record<string, unknown>;
    if (v !== WIRE_VERSION) throw new TypeError(`unsupported group table version ${String(v)} (this Fay reads ${WIRE_VERSION})`);
    const width = wireNumber(arity);
    const parts = wireArray(keys);
    const columns = wireArray(states, kinds.length);
    const count = width === 0 ? (wireArray(columns[0] ?? []).length) : parts.length / width;
    if (!Number.isInteger(count) || (kinds.length === 0 && width === 0 && parts.length > 0)) throw new TypeError('key parts do not fill whole keys');
    const table = new GroupTable(kinds, options);
    const decodedColumns = columns.map((column, i) => {
      const list = wireArray(column, count);
      return list.map((s) => kinds[i]!.decode(s));
    });
    for (let g = 0; g < count; g++) {
      const key = parts.slice(g * width, (g + 1) * width) as KeyPart[];
      for (const part of key) {
        const type = typeof part;
        if (type !== 'number' && type !== 'string' && type !== 'boolean') throw new TypeError('a key part is a scalar');
      }
      const states = decodedColumns.map((c) => c[g]);
      const id = JSON.stringify(key);
      // A new group takes its decoded states as they are; a repeated one (malformed, but possible) merges.
      if (!table.groups.has(id) && table.groups.size < table.maxGroups) table.groups.set(id, { key, states });
      else table.mergeGroup(key, states);
    }
    if (folded !== undefined) distinct.merge(table.folded, distinct.decode(folded));
    return table;
  }
}
