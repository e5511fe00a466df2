import { kmeans, simplifiedSilhouette, squaredDistance } from './kmeans.js';

/**
 * Categorising entities (hosts, processes) by the mix of what they do: each entity's counts (e.g.
 * of system calls) become a vector of shares, square-rooted (the Hellinger transform: the mix, not
 * the load, and a call that is 1% of one host's and 0.1% of another's counts for more than one that
 * is 61% and 60%), and the vectors are clustered. docs/mining.md says why each choice.
 *
 *  - k-means++ with a fixed seed (the same input, the same categories), k chosen by the simplified
 *    silhouette among the k whose centres are all MIN_CENTRE_DISTANCE apart (categories closer
 *    than that are one behaviour measured twice), 1 when none reaches MIN_SILHOUETTE (no
 *    structure worth naming), or k as given.
 *  - Fewer than FEW_ENTITIES entities: k-means finds structure in noise among a handful of points,
 *    so k is at most 3 and a split must be clear (silhouette ≥ MIN_SILHOUETTE_FEW); the result is
 *    said to be weak (`few`).
 *  - Each entity's outlier score is robust: how far its distance from the median mix of all
 *    entities lies beyond the median entity's, in robust standard deviations (1.4826 × MAD).
 */

/** One entity's counts by feature. */
export interface EntityCounts {
  readonly entity: string;
  readonly counts: ReadonlyMap<string, number>;
}

/** A feature that sets a category apart: its share of the category's counts against all entities'. */
export interface FeatureDifference {
  readonly feature: string;
  /** The mean share of this feature among the category's members (0–1). */
  readonly share: number;
  /** The mean share among all entities. */
  readonly overall: number;
}

export interface Categories {
  /** Fewer than FEW_ENTITIES entities: the categories are weak. */
  readonly few: boolean;
  readonly k: number;
  /** The simplified silhouette of the chosen k (k-means with k ≥ 2). */
  readonly silhouette: number | undefined;
  /** Per entity, in input order. */
  readonly entities: readonly {
    readonly cluster: number;
    /** Hellinger distance (0–√2) to its category's centre. */
    readonly distance: number;
    /** How far it is from the median mix of all entities, in robust standard deviations beyond the median entity's (0: no farther). */
    readonly outlier: number;
  }[];
  readonly clusters: readonly { readonly members: readonly number[]; readonly features: readonly FeatureDifference[] }[];
}

export interface CategorizeOptions {
  /** The number of categories; undefined: chosen. */
  readonly k?: number;
  readonly seed?: number;
}

/** Fewer entities than this make weak categories (k at most 3, a clear split only). */
export const FEW_ENTITIES = 8;
const MAX_K = 8;
const MAX_K_FEW = 3;
const MIN_SILHOUETTE = 0.25;
const MIN_SILHOUETTE_FEW = 0.5;
/** k-means runs on at most this many features, those that vary most across entities (distances and features use all). */
const CLUSTERED_FEATURES = 24;
/** Two categories' centres at least this far apart (Hellinger), or k is too large. */
const MIN_CENTRE_DISTANCE = 0.05;
const TOP_FEATURES = 3;
/** A feature whose share differs by less than this (half a percentage point) sets nothing apart. */
const MIN_DIFFERENCE = 0.005;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function categorize(input: readonly EntityCounts[], options: CategorizeOptions = {}): Categories {
  if (input.length < 2) throw new RangeError('categorising takes at least two entities');
  const features = [...new Set(input.flatMap((e) => [...e.counts.keys()]))].sort();
  const shares = input.map((e) => {
    let total = 0;
    for (const n of e.counts.values()) total += n;
    return Float64Array.from(features, (f) => (total > 0 ? (e.counts.get(f) ?? 0) / total : 0));
  });
  const vectors = shares.map((s) => s.map(Math.sqrt));
  const middle = Float64Array.from(features, (_, j) => median(vectors.map((v) => v[j]!)));
  const fromMiddle = vectors.map((v) => Math.sqrt(squaredDistance(v, middle)));
  const typical = median(fromMiddle);
  const spread = 1.4826 * median(fromMiddle.map((d) => Math.abs(d - typical)));
  const outlier = fromMiddle.map((d) => Math.max(0, Math.round(((d - typical) / Math.max(spread, 0.02)) * 100) / 100));

  const few = input.length < FEW_ENTITIES;
  const points = mostVarying(vectors, CLUSTERED_FEATURES);
  const seed = options.seed ?? 42;
  let k: number;
  if (options.k !== undefined) k = Math.min(options.k, input.length);
  else {
    k = 1;
    let best = few ? MIN_SILHOUETTE_FEW : MIN_SILHOUETTE;
    for (let candidate = 2; candidate <= Math.min(few ? MAX_K_FEW : MAX_K, few ? input.length : input.length - 1); candidate++) {
      const clustering = kmeans(points, candidate, { seed, restarts: 1, maxIterations: 50 });
      // Categories whose centres are this close are one behaviour measured twice (a few percent of wobble), not two.
      if (closestCentres(clustering.centres) < MIN_CENTRE_DISTANCE) continue;
      const s = simplifiedSilhouette(points, clustering);
      if (s > best + 1e-9) {
        best = s;
        k = candidate;
      }
    }
  }
  const clustering = kmeans(points, k, { seed, restarts: 3, maxIterations: 100 });
  const assignment = clustering.assignment;
  const silhouette = k >= 2 ? simplifiedSilhouette(points, clustering) : undefined;

  const members = Array.from({ length: k }, () => [] as number[]);
  assignment.forEach((c, i) => members[c]!.push(i));
  const overall = meanOf(shares, shares.map((_, i) => i));
  const clusters = members
    .filter((m) => m.length > 0)
    .map((m) => {
      const centre = meanOf(vectors, m);
      const share = meanOf(shares, m);
      const apart = features
        .map((feature, j) => ({ feature, share: share[j]!, overall: overall[j]! }))
        .filter((f) => Math.abs(f.share - f.overall) >= MIN_DIFFERENCE)
        .sort((a, b) => Math.abs(b.share - b.overall) - Math.abs(a.share - a.overall) || a.feature.localeCompare(b.feature))
        .slice(0, TOP_FEATURES);
      return { members: m, centre, features: apart };
    });
  const clusterOf = new Int32Array(input.length);
  clusters.forEach((c, index) => c.members.forEach((i) => (clusterOf[i] = index)));
  return {
    few,
    k: clusters.length,
    silhouette,
    entities: input.map((_, i) => ({
      cluster: clusterOf[i]!,
      distance: Math.round(Math.sqrt(squaredDistance(vectors[i]!, clusters[clusterOf[i]!]!.centre)) * 1e4) / 1e4,
      outlier: outlier[i]!,
    })),
    clusters: clusters.map(({ members: m, features: f }) => ({ members: m, features: f })),
  };
}

function closestCentres(centres: readonly Float64Array[]): number {
  let closest = Infinity;
  for (let a = 0; a < centres.length; a++) for (let b = a + 1; b < centres.length; b++) closest = Math.min(closest, Math.sqrt(squaredDistance(centres[a]!, centres[b]!)));
  return closest;
}

function meanOf(vectors: readonly Float64Array[], which: readonly number[]): Float64Array {
  const out = new Float64Array(vectors[0]!.length);
  for (const i of which) for (let j = 0; j < out.length; j++) out[j]! += vectors[i]![j]! / which.length;
  return out;
}

/** The vectors cut to the `count` features that vary most across them (all, if there are no more). */
function mostVarying(vectors: readonly Float64Array[], count: number): Float64Array[] {
  const dims = vectors[0]!.length;
  if (dims <= count) return [...vectors];
  const mean = meanOf(vectors, vectors.map((_, i) => i));
  const variance = new Float64Array(dims);
  for (const v of vectors) for (let j = 0; j < dims; j++) variance[j]! += (v[j]! - mean[j]!) ** 2;
  const keep = [...variance.keys()].sort((a, b) => variance[b]! - variance[a]! || a - b).slice(0, count);
  return vectors.map((v) => Float64Array.from(keep, (j) => v[j]!));
}
