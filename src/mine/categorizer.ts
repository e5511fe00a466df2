import type { Cell, ResultColumn, ResultRows } from '../cluster/rows.js';
import { categorize, FEW_ENTITIES, type ClusteringState, type FeatureDifference } from './categorize.js';

/**
 * The `categorize <entity> by <feature>` stage at the cluster stage: each window's merged counts
 * by entity and feature become one row per entity with its category. A category keeps its label
 * from window to window where its members stay (each new category takes the label of the last
 * window's category it shares most members with), and an entity whose category changed says so.
 */

/** The features that set a category apart, as a result cell. */
export interface FeaturesCell {
  readonly kind: 'features';
  readonly items: readonly FeatureDifference[];
}

export interface CategorizeSpec {
  /** The key column whose values are the entities (host, comm, pid…). */
  readonly entity: string;
  /** The key columns whose values are the features (probe…), joined with a space when several. */
  readonly features: readonly string[];
  /** The count column. */
  readonly count: string;
  readonly k?: number;
}

/** The columns categorize gives. */
export function categorizeColumns(spec: CategorizeSpec): ResultColumn[] {
  return [
    { name: spec.entity, role: 'key' },
    ...['category', 'size', 'distance', 'outlier', 'features', 'changed'].map((name) => ({ name, role: 'computed' as const })),
  ];
}

/** A key cell as text (keys are numbers, strings or booleans). */
function keyText(cell: Cell | undefined): string {
  return typeof cell === 'object' && cell !== null ? JSON.stringify(cell) : String(cell);
}

export class Categorizer {
  /** Each entity's label in the last complete window. */
  private labels = new Map<string, number>();
  private nextLabel = 1;
  private saidFew = false;
  /** The last complete window's clustering, for the next to start from. */
  private state: ClusteringState | undefined;
  private saidTooFew = false;

  constructor(private readonly spec: CategorizeSpec) {}

  /**
   * One window's rows, categorised; `complete` windows move the labels on (a running snapshot
   * is labelled against the last complete window and leaves it as it was). Notices: what the
   * user should know of this window (too few entities, a weak method).
   */
  categorize(result: ResultRows, complete: boolean): { rows: ResultRows; notices: string[] } {
    const columns = categorizeColumns(this.spec);
    const at = (name: string) => result.columns.findIndex((c) => c.name === name);
    const entityAt = at(this.spec.entity);
    const featureAt = this.spec.features.map(at);
    const countAt = at(this.spec.count);
    // Dense counts: an index per entity and per feature, found once per distinct key.
    const entityIndex = new Map<Cell, number>();
    const entityCells: Cell[] = [];
    const featureIndex = new Map<string, number>();
    /** Entity index, feature index, count: three numbers a row, in one array (no array per row). */
    const cells: number[] = [];
    let lastEntity: Cell | undefined;
    let lastIndex = 0;
    for (const row of result.rows) {
      const n = row[countAt];
      if (typeof n !== 'number' || n <= 0) continue;
      const entityCell = row[entityAt]!;
      // A host's rows mostly come together (its partial was merged at once): the last one's index first.
      let e = entityCell === lastEntity ? lastIndex : entityIndex.get(entityCell);
      if (e === undefined) {
        entityIndex.set(entityCell, (e = entityCells.length));
        entityCells.push(entityCell);
      }
      lastEntity = entityCell;
      lastIndex = e;
      const feature = featureAt.length === 1 ? keyText(row[featureAt[0]!]) : featureAt.map((i) => keyText(row[i])).join(' ');
      let f = featureIndex.get(feature);
      if (f === undefined) featureIndex.set(feature, (f = featureIndex.size));
      cells.push(e, f, n);
    }
    const notices: string[] = [];
    if (entityCells.length < 2) {
      if (!this.saidTooFew) notices.push(`categorize needs at least two ${this.spec.entity} values with counts in a window; this one has ${entityCells.length}: nothing to categorise`);
      this.saidTooFew = true;
      return { rows: { columns, rows: [] }, notices };
    }
    // Entities and features in name order, so that the same counts give the same categories however the rows came.
    const entityOrder = entityCells.map((cell, i) => ({ name: keyText(cell), i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const entities = entityOrder.map((o) => o.name);
    const entityAtIndex = new Int32Array(entityCells.length);
    entityOrder.forEach((o, at) => (entityAtIndex[o.i] = at));
    const featureNames = [...featureIndex.keys()];
    const featureOrder = featureNames.map((name, i) => ({ name, i })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const featureAtIndex = new Int32Array(featureNames.length);
    featureOrder.forEach((o, at) => (featureAtIndex[o.i] = at));
    const matrix = entities.map(() => new Float64Array(featureNames.length));
    for (let c = 0; c < cells.length; c += 3) matrix[entityAtIndex[cells[c]!]!]![featureAtIndex[cells[c + 1]!]!]! += cells[c + 2]!;
    const found = categorize(
      { features: featureOrder.map((o) => o.name), rows: matrix },
      { ...(this.spec.k !== undefined && { k: this.spec.k }), ...(this.state !== undefined && { previous: this.state }) },
    );
    if (complete) this.state = found.state;
    if (found.few && !this.saidFew) {
      notices.push(
        `categorize: with fewer than ${FEW_ENTITIES} ${this.spec.entity} values (${entities.length} in this window) the categories are weak: at most 3, and only a clear split (docs/mining.md)`,
      );
      this.saidFew = true;
    }
    const nextLabel = this.nextLabel;
    const labelOf = this.label(found.clusters.map((c) => c.members.map((i) => entities[i]!)));
    if (!complete) this.nextLabel = nextLabel;
    const rows: Cell[][] = entities.map((entity, i) => {
      const e = found.entities[i]!;
      const cluster = found.clusters[e.cluster]!;
      const label = labelOf[e.cluster]!;
      const before = this.labels.get(entity);
      const features: FeaturesCell = { kind: 'features', items: cluster.features };
      return [entityCells[entityOrder[i]!.i]!, label, cluster.members.length, e.distance, e.outlier, features, before !== undefined && before !== label];
    });
    if (complete) this.labels = new Map(entities.map((entity, i) => [entity, labelOf[found.entities[i]!.cluster]!]));
    // The largest categories first, then by label; within one, the most outlying first.
    rows.sort((a, b) => (b[2] as number) - (a[2] as number) || (a[1] as number) - (b[1] as number) || (b[4] as number) - (a[4] as number) || keyText(a[0]).localeCompare(keyText(b[0])));
    return { rows: { columns, rows }, notices };
  }

  /**
   * Labels for this window's clusters: each takes the label that most of its members had in the
   * last complete window (the pairs with the most members in common first), and a cluster with
   * none to take gets a new one, the largest first.
   */
  private label(clusters: readonly (readonly string[])[]): number[] {
    const pairs: { cluster: number; label: number; shared: number }[] = [];
    clusters.forEach((members, cluster) => {
      const shared = new Map<number, number>();
      for (const m of members) {
        const label = this.labels.get(m);
        if (label !== undefined) shared.set(label, (shared.get(label) ?? 0) + 1);
      }
      for (const [label, n] of shared) pairs.push({ cluster, label, shared: n });
    });
    pairs.sort((a, b) => b.shared - a.shared || a.label - b.label || a.cluster - b.cluster);
    const labels: (number | undefined)[] = clusters.map(() => undefined);
    const taken = new Set<number>();
    for (const p of pairs) {
      if (labels[p.cluster] !== undefined || taken.has(p.label)) continue;
      labels[p.cluster] = p.label;
      taken.add(p.label);
    }
    const unlabelled = clusters
      .map((members, cluster) => ({ cluster, size: members.length, first: [...members].sort()[0] ?? '' }))
      .filter((c) => labels[c.cluster] === undefined)
      .sort((a, b) => b.size - a.size || a.first.localeCompare(b.first));
    for (const c of unlabelled) {
      while (taken.has(this.nextLabel)) this.nextLabel++;
      labels[c.cluster] = this.nextLabel;
      taken.add(this.nextLabel++);
    }
    return labels as number[];
  }
}
