import type { GroupTable } from '../agg/group-table.js';
import type { Cell, ResultColumn, ResultRows } from '../cluster/rows.js';
import type { AggregateOutput } from '../plan/logical.js';
import { categorize, FEW_ENTITIES, type ClusteringState, type FeatureDifference } from './categorize.js';
import { keyText, WindowCounts, type EntityCounts } from './counts.js';
import { Scratch } from './scratch.js';

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

export class Categorizer {
  /** Each entity's label in the last complete window. */
  private labels = new Map<string, number>();
  private nextLabel = 1;
  private saidFew = false;
  /** The last complete window's clustering, for the next to start from. */
  private state: ClusteringState | undefined;
  private saidTooFew = false;
  /** Memory for each window's matrices, kept from window to window. */
  private readonly scratch = new Scratch();
  private readonly counts = new WindowCounts(this.scratch);

  constructor(private readonly spec: CategorizeSpec) {}

  /**
   * One window's rows, categorised; `complete` windows move the labels on (a running snapshot
   * is labelled against the last complete window and leaves it as it was). Notices: what the
   * user should know of this window (too few entities, a weak method).
   */
  categorize(result: ResultRows, complete: boolean): { rows: ResultRows; notices: string[] } {
    const at = (name: string) => result.columns.findIndex((c) => c.name === name);
    return this.categorized(this.counts.ofRows(result.rows, at(this.spec.entity), this.spec.features.map(at), at(this.spec.count)), complete);
  }

  /**
   * A merged window's groups, categorised, as categorize() its finalised rows (when categorize is
   * the query's only row stage, so every group is a row). `sampleRate` scales counts as rows are.
   */
  categorizeTable(table: GroupTable, output: AggregateOutput, complete: boolean, sampleRate = 1): { rows: ResultRows; notices: string[] } {
    const keyAt = (name: string) => output.keys.findIndex((k) => k.name === name);
    const slot = output.aggregates.findIndex((a) => a.name === this.spec.count);
    const scale = output.aggregates[slot]?.scaled ? 1 / sampleRate : 1;
    return this.categorized(this.counts.ofGroups(table, keyAt(this.spec.entity), this.spec.features.map(keyAt), slot, scale), complete);
  }

  private categorized(counts: EntityCounts, complete: boolean): { rows: ResultRows; notices: string[] } {
    const columns = categorizeColumns(this.spec);
    const { entities, cells, matrix } = counts;
    const notices: string[] = [];
    if (entities.length < 2) {
      if (!this.saidTooFew) notices.push(`categorize needs at least two ${this.spec.entity} values with counts in a window; this one has ${entities.length}: nothing to categorise`);
      this.saidTooFew = true;
      return { rows: { columns, rows: [] }, notices };
    }
    const found = categorize(
      matrix,
      { ...(this.spec.k !== undefined && { k: this.spec.k }), ...(this.state !== undefined && { previous: this.state }), scratch: this.scratch },
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
    const categorized: Cell[][] = entities.map((entity, i) => {
      const e = found.entities[i]!;
      const cluster = found.clusters[e.cluster]!;
      const label = labelOf[e.cluster]!;
      const before = this.labels.get(entity);
      const features: FeaturesCell = { kind: 'features', items: cluster.features };
      return [cells[i]!, label, cluster.members.length, e.distance, e.outlier, features, before !== undefined && before !== label];
    });
    if (complete) this.labels = new Map(entities.map((entity, i) => [entity, labelOf[found.entities[i]!.cluster]!]));
    // The largest categories first, then by label; within one, the most outlying first.
    categorized.sort((a, b) => (b[2] as number) - (a[2] as number) || (a[1] as number) - (b[1] as number) || (b[4] as number) - (a[4] as number) || keyText(a[0]).localeCompare(keyText(b[0])));
    return { rows: { columns, rows: categorized }, notices };
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
