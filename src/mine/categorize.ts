import { kmeans, lloyd, simplifiedSilhouette, squaredDistance, type Clustering } from './kmeans.js';

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

/** Entities' counts by feature: one row per entity, one column per feature. */
export interface CountMatrix {
  readonly features: readonly string[];
  readonly rows: readonly Float64Array[];
}

/** A CountMatrix from each entity's counts by feature (features in name order). */
export function countMatrix(entities: readonly ReadonlyMap<string, number>[]): CountMatrix {
  const features = [...new Set(entities.flatMap((e) => [...e.keys()]))].sort();
  return { features, rows: entities.map((e) => Float64Array.from(features, (f) => e.get(f) ?? 0)) };
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
  /** For the next window (CategorizeOptions.previous). */
  readonly state: ClusteringState;
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
  /** The last window's clustering (Categories.state): a start for this one's, when it clustered the same features. */
  readonly previous?: ClusteringState;
}

/**
 * What the next window starts from: the features clustered on, k and the centres. From the same
 * start, k is looked for only at k-1, k and k+1, and k's clustering starts at the last centres (a
 * window like the last converges in an iteration or two); a window whose most varying features
 * changed is searched afresh.
 */
export interface ClusteringState {
  readonly features: readonly string[];
  readonly k: number;
  readonly centres: readonly Float64Array[];
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

/** The median of numbers, found by selection (it runs once per feature of a window; sorting each took 15 ms of 500 hosts × 300 calls). Reorders `values`. */
export function median(values: Float64Array): number {
  const mid = values.length >> 1;
  const upper = select(values, mid);
  if (values.length % 2 === 1) return upper;
  // Below `mid` are the smaller half: the lower middle is their largest.
  let lower = -Infinity;
  for (let i = 0; i < mid; i++) lower = Math.max(lower, values[i]!);
  return (lower + upper) / 2;
}

/** Hoare's selection: reorders `a` so that a[k] is what it would be sorted, smaller ones before it, larger after; returns a[k]. */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k]!;
}

export function categorize(matrix: CountMatrix, options: CategorizeOptions = {}): Categories {
  const input = matrix.rows;
  if (input.length < 2) throw new RangeError('categorising takes at least two entities');
  const features = matrix.features;
  const shares = input.map((counts) => {
    let total = 0;
    for (const n of counts) total += n;
    return counts.map((n) => (total > 0 ? n / total : 0));
  });
  const vectors = shares.map((s) => s.map(Math.sqrt));
  const column = new Float64Array(input.length);
  const middle = Float64Array.from(features, (_, j) => {
    vectors.forEach((v, i) => (column[i] = v[j]!));
    return median(column);
  });
  const fromMiddle = Float64Array.from(vectors, (v) => Math.sqrt(squaredDistance(v, middle)));
  const typical = median(Float64Array.from(fromMiddle));
  const spread = 1.4826 * median(fromMiddle.map((d) => Math.abs(d - typical)));
  const outlier = Array.from(fromMiddle, (d) => Math.max(0, Math.round(((d - typical) / Math.max(spread, 0.02)) * 100) / 100));

  const few = input.length < FEW_ENTITIES;
  const { points, kept } = mostVarying(vectors, CLUSTERED_FEATURES);
  const clustered = kept.map((j) => features[j]!);
  const seed = options.seed ?? 42;
  const previous = options.previous;
  const resumed = previous !== undefined && previous.k <= input.length && previous.features.length === clustered.length && previous.features.every((f, i) => f === clustered[i]);
  /** A clustering for k: from the last window's centres when it had this k, else k-means++ with `restarts`. */
  const cluster = (k: number, restarts: number): Clustering =>
    resumed && k === previous.k ? lloyd(points, previous.centres.map((c) => Float64Array.from(c)), 100) : kmeans(points, k, { seed, restarts, maxIterations: 100 });
  let k: number;
  let chosen: Clustering | undefined;
  if (options.k !== undefined) k = Math.min(options.k, input.length);
  else {
    k = 1;
    let best = few ? MIN_SILHOUETTE_FEW : MIN_SILHOUETTE;
    const most = Math.min(few ? MAX_K_FEW : MAX_K, few ? input.length : input.length - 1);
    const candidates = resumed ? [previous.k - 1, previous.k, previous.k + 1] : Array.from({ length: most }, (_, i) => i + 1);
    for (const candidate of candidates) {
      if (candidate < 2 || candidate > most) continue;
      const clustering = cluster(candidate, 1);
      // Categories whose centres are this close are one behaviour measured twice (a few percent of wobble), not two.
      if (closestCentres(clustering.centres) < MIN_CENTRE_DISTANCE) continue;
      const s = simplifiedSilhouette(points, clustering);
      if (s > best + 1e-9) {
        best = s;
        k = candidate;
        chosen = resumed && candidate === previous.k ? clustering : undefined;
      }
    }
  }
  const clustering = chosen ?? cluster(k, 3);
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
    state: { features: clustered, k, centres: clustering.centres },
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

/** The vectors cut to the `count` features that vary most across them (all, if there are no more), and which those are (in order). */
function mostVarying(vectors: readonly Float64Array[], count: number): { points: Float64Array[]; kept: number[] } {
  const dims = vectors[0]!.length;
  if (dims <= count) return { points: [...vectors], kept: Array.from({ length: dims }, (_, j) => j) };
  const mean = meanOf(vectors, vectors.map((_, i) => i));
  const variance = new Float64Array(dims);
  for (const v of vectors) for (let j = 0; j < dims; j++) variance[j]! += (v[j]! - mean[j]!) ** 2;
  const kept = [...variance.keys()].sort((a, b) => variance[b]! - variance[a]! || a - b).slice(0, count).sort((a, b) => a - b);
  return { points: vectors.map((v) => Float64Array.from(kept, (j) => v[j]!)), kept };
}
