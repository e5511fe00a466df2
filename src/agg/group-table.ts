import type { AggregateResult, AnyAggregateKind } from './aggregates.js';

/** One part of a group key: a number, a string (also a printed stack) or a boolean. */
export type KeyPart = number | string | boolean;

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

/**
 * Grouped aggregate states: a map from group key to one state per aggregate.
 * Merging two tables merges the states of equal keys; merge order does not matter.
 */
export class GroupTable {
  private readonly groups = new Map<string, Group>();

  constructor(readonly kinds: readonly AnyAggregateKind[]) {}

  get size(): number {
    return this.groups.size;
  }

  /** The group for a key, created empty when new. */
  group(key: readonly KeyPart[]): Group {
    const id = JSON.stringify(key);
    let group = this.groups.get(id);
    if (group === undefined) {
      group = { key, states: this.kinds.map((k) => k.empty() as unknown) };
      this.groups.set(id, group);
    }
    return group;
  }

  /** Adds one event's aggregate arguments (one per aggregate; ignored for count) to its group. */
  add(key: readonly KeyPart[], args: readonly number[]): void {
    const group = this.group(key);
    for (let i = 0; i < this.kinds.length; i++) this.kinds[i]!.add(group.states[i], args[i] ?? 0);
  }

  /** Merges the states of one group into this table. */
  mergeGroup(key: readonly KeyPart[], states: readonly unknown[]): void {
    const group = this.group(key);
    for (let i = 0; i < this.kinds.length; i++) this.kinds[i]!.merge(group.states[i], states[i]);
  }

  merge(other: GroupTable): void {
    for (const group of other.groups.values()) this.mergeGroup(group.key, group.states);
  }

  *entries(): IterableIterator<Group> {
    yield* this.groups.values();
  }

  finalize(): GroupResult[] {
    return [...this.groups.values()].map((g) => ({
      key: g.key,
      values: g.states.map((s, i) => this.kinds[i]!.finalize(s)),
    }));
  }

  /** JSON-safe form: [[key, [state…]], …]. */
  encode(): unknown {
    return [...this.groups.values()].map((g) => [g.key, g.states.map((s, i) => this.kinds[i]!.encode(s))]);
  }

  static decode(kinds: readonly AnyAggregateKind[], wire: unknown): GroupTable {
    const table = new GroupTable(kinds);
    if (!Array.isArray(wire)) throw new TypeError('a group table is an array of [key, states]');
    for (const entry of wire) {
      if (!Array.isArray(entry) || entry.length !== 2 || !Array.isArray(entry[0]) || !Array.isArray(entry[1])) {
        throw new TypeError('a group is [key, states]');
      }
      const key = entry[0] as KeyPart[];
      const states = (entry[1] as unknown[]).map((s, i) => {
        const kind = kinds[i];
        if (kind === undefined) throw new TypeError('more states than aggregates');
        return kind.decode(s) as unknown;
      });
      table.mergeGroup(key, states);
    }
    return table;
  }
}
