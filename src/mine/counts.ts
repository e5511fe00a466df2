import type { GroupTable, KeyPart } from '../agg/group-table.js';
import type { Cell } from '../cluster/rows.js';
import type { CountMatrix } from './categorize.js';
import { Names } from './names.js';
import type { Scratch } from './scratch.js';

/**
 * A window's counts by entity and feature, gathered for categorize: from its merged groups, or
 * from its finalised rows when a row stage came first. Then one dense matrix, entities and
 * features in name order.
 *
 * The loops are small functions of their own: they run once a window, and V8 optimises a small
 * function's loop soon, a large one's late (measured: 25–35 ms inside one large method, 8–15 ms
 * on their own, for 150,000 rows).
 */

/** A window's counts: entities (their key cells and names) and the matrix, in name order. */
export interface EntityCounts {
  readonly cells: readonly Cell[];
  readonly entities: readonly string[];
  readonly matrix: CountMatrix;
}

/** A key cell as text (keys are numbers, strings or booleans). */
export function keyText(cell: Cell | undefined): string {
  return typeof cell === 'object' && cell !== null ? JSON.stringify(cell) : String(cell);
}

/** A feature's name: its key cell, or several joined with a space. */
function featureOf(key: readonly (Cell | KeyPart)[], featureAt: readonly number[]): string {
  const first = key[featureAt[0]!];
  if (featureAt.length === 1) return typeof first === 'string' ? first : keyText(first);
  return featureAt.map((i) => keyText(key[i])).join(' ');
}

/**
 * Entities and features met, an index for each, the (entity, feature) of each count added, in
 * order, and the counts. Used again window after window (start()): see WindowCounts.
 */
class KeyIndex {
  readonly entityCells: Cell[] = [];
  private readonly entityIndex = new Map<Cell, number>();
  private readonly featureIndex = new Names();
  entityOf = new Int32Array(0);
  featureOf = new Int32Array(0);
  countOf = new Float64Array(0);
  size = 0;
  private lastEntity: Cell | undefined;
  private lastIndex = 0;

  /** Empties it for a window of at most `capacity` counts. */
  start(capacity: number): this {
    this.entityCells.length = 0;
    this.entityIndex.clear();
    this.featureIndex.clear();
    this.size = 0;
    this.lastEntity = undefined;
    if (this.entityOf.length < capacity) {
      this.entityOf = new Int32Array(capacity);
      this.featureOf = new Int32Array(capacity);
      this.countOf = new Float64Array(capacity);
    }
    return this;
  }

  add(entityCell: Cell, feature: string, n: number): void {
    // A host's groups mostly come together (its partial was merged at once): the last one's index first.
    let e = entityCell === this.lastEntity ? this.lastIndex : this.entityIndex.get(entityCell);
    if (e === undefined) {
      this.entityIndex.set(entityCell, (e = this.entityCells.length));
      this.entityCells.push(entityCell);
    }
    this.lastEntity = entityCell;
    this.lastIndex = e;
    this.entityOf[this.size] = e;
    this.featureOf[this.size] = this.featureIndex.number(feature);
    this.countOf[this.size++] = n;
  }

  featureNames(): string[] {
    return this.featureIndex.list();
  }
}

/** Name order, for entities and features: the same counts give the same categories however they came. */
function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The indexed counts as a dense matrix, in name order. */
function dense(keys: KeyIndex, scratch: Scratch): EntityCounts {
  const { entityCells, entityOf, featureOf, countOf, size } = keys;
  const entityOrder = entityCells.map((cell, i) => ({ name: keyText(cell), i })).sort(byName);
  const entityAt = new Int32Array(entityCells.length);
  for (let at = 0; at < entityOrder.length; at++) entityAt[entityOrder[at]!.i] = at;
  const featureOrder = keys.featureNames().map((name, i) => ({ name, i })).sort(byName);
  const featureAt = new Int32Array(featureOrder.length);
  for (let at = 0; at < featureOrder.length; at++) featureAt[featureOrder[at]!.i] = at;
  const dims = featureOrder.length;
  // One buffer for the whole matrix, a view per entity.
  const counts = scratch.take('counts', entityOrder.length * dims);
  for (let c = 0; c < size; c++) counts[entityAt[entityOf[c]!]! * dims + featureAt[featureOf[c]!]!]! += countOf[c]!;
  return {
    cells: entityOrder.map((o) => entityCells[o.i]!),
    entities: entityOrder.map((o) => o.name),
    matrix: { features: featureOrder.map((o) => o.name), rows: entityOrder.map((_, at) => counts.subarray(at * dims, (at + 1) * dims)) },
  };
}

/**
 * Gathers each window's counts into one dense matrix. One for a query, used window after window:
 * V8 holds the shapes of short-lived objects weakly, and its compiled loops here were thrown away
 * at each full garbage collection once a window's index had died (seen with --trace-deopt; a
 * window took ~1.4 times as long).
 */
export class WindowCounts {
  private readonly keys = new KeyIndex();

  /** The window's matrix is in `scratch`'s memory, valid until the next window's. */
  constructor(private readonly scratch: Scratch) {}

  /** Finalised rows' counts (a row stage came before categorize, so the rows are what it reads). */
  ofRows(rows: readonly (readonly Cell[])[], entityAt: number, featureAt: readonly number[], countAt: number): EntityCounts {
    indexRows(rows, entityAt, featureAt, countAt, this.keys.start(rows.length));
    return dense(this.keys, this.scratch);
  }

  /** A merged window's counts, read from its groups' states (no rows made for them: for 150,000 groups, making the rows took three times as long as categorising). */
  ofGroups(table: GroupTable, entityAt: number, featureAt: readonly number[], slot: number, scale: number): EntityCounts {
    indexGroups(table, entityAt, featureAt, slot, scale, this.keys.start(table.size));
    return dense(this.keys, this.scratch);
  }
}

// The loops, alone in their functions: V8 compiles each while it runs (on-stack replacement), and
// code after a loop in the same function had no type feedback yet, which threw the compiled code
// away every window (seen with --trace-deopt).

function indexRows(rows: readonly (readonly Cell[])[], entityAt: number, featureAt: readonly number[], countAt: number, keys: KeyIndex): void {
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const n = row[countAt];
    if (typeof n === 'number' && n > 0) keys.add(row[entityAt]!, featureOf(row, featureAt), n);
  }
}

function indexGroups(table: GroupTable, entityAt: number, featureAt: readonly number[], slot: number, scale: number, keys: KeyIndex): void {
  const kind = table.kinds[slot]!;
  for (const group of table.entries()) {
    const counted = kind.finalize(group.states[slot]);
    if (typeof counted !== 'number') continue;
    const n = scale === 1 ? counted : Math.round(counted * scale);
    if (n > 0) keys.add(group.key[entityAt]!, featureOf(group.key, featureAt), n);
  }
}
