import { kmeans, lloyd, simplifiedSilhouette, squaredDistance, type Clustering } from './kmeans.js';
import { FRESH, type Scratch } from './scratch.js';

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
  /** Memory kept from window to window for the vectors (valid until the next window's); fresh arrays when not given. */
  readonly scratch?: Pick<Scratch, 'take'>;
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
/** The last window's clustered features stay while each is still among this many that vary most (no reshuffle for noise at the 24th place). */
const STILL_VARYING = 2 * CLUSTERED_FEATURES;
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
  const n = input.length;
  if (n < 2) throw new RangeError('categorising takes at least two entities');
  const features = matrix.features;
  const dims = features.length;
  const scratch = options.scratch ?? FRESH;
  const vectors = hellinger(input, dims, scratch);
  const outlier = robustOutliers(vectors, featureMedians(vectors, scratch));

  const few = n < FEW_ENTITIES;
  // A vector's squares are the entity's shares: their means are the mean shares, overall and by category.
  const { mean, squares: overall } = meansOf(vectors, null);
  const previous = options.previous;
  const { points, kept } = mostVarying(vectors, mean, overall, CLUSTERED_FEATURES, previous && features.length > CLUSTERED_FEATURES ? keptBefore(features, previous.features) : undefined);
  const clustered = kept.map((j) => features[j]!);
  const seed = options.seed ?? 42;
  const resumed = previous !== undefined && previous.k <= n && previous.features.length === clustered.length && previous.features.every((f, i) => f === clustered[i]);
  /** A clustering for k: from the last window's centres when it had this k, else k-means++ with `restarts`. */
  const cluster = (k: number, restarts: number): Clustering =>
    resumed && k === previous.k ? lloyd(points, previous.centres.map((c) => Float64Array.from(c)), 100) : kmeans(points, k, { seed, restarts, maxIterations: 100 });
  let k: number;
  let chosen: Clustering | undefined;
  if (options.k !== undefined) k = Math.min(options.k, n);
  else {
    k = 1;
    let best = few ? MIN_SILHOUETTE_FEW : MIN_SILHOUETTE;
    const most = Math.min(few ? MAX_K_FEW : MAX_K, few ? n : n - 1);
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
  for (let i = 0; i < n; i++) members[assignment[i]!]!.push(i);
  const clusters = members
    .filter((m) => m.length > 0)
    .map((m) => {
      const { mean: centre, squares: share } = meansOf(vectors, m);
      return { members: m, centre, features: apart(features, share, overall) };
    });
  const clusterOf = new Int32Array(n);
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

// The passes below are small functions with index loops over typed arrays: categorising runs once
// a window, and V8 optimises a small function's loop soon, a large one's (and closures per
// element) late; in one function with map and forEach they took 3–4 times as long.

/** Each entity's shares of its counts, square-rooted: its Hellinger vector (views of one buffer). */
function hellinger(input: readonly Float64Array[], dims: number, scratch: Pick<Scratch, 'take'>): Float64Array[] {
  const n = input.length;
  const buffer = scratch.take('vectors', n * dims);
  const vectors: Float64Array[] = new Array<Float64Array>(n);
  for (let i = 0; i < n; i++) {
    const counts = input[i]!;
    let total = 0;
    for (let j = 0; j < dims; j++) total += counts[j]!;
    const base = i * dims;
    if (total > 0) for (let j = 0; j < dims; j++) buffer[base + j] = Math.sqrt(counts[j]! / total);
    vectors[i] = buffer.subarray(base, base + dims);
  }
  return vectors;
}

/** Features whose values featureMedians gathers at once: a block of them is one or two cache lines of each vector. */
const MEDIAN_BLOCK = 8;

/** The median of each feature across the vectors: the middle mix. Each block of features is gathered from the vectors in one pass. */
function featureMedians(vectors: readonly Float64Array[], scratch: Pick<Scratch, 'take'>): Float64Array {
  const n = vectors.length;
  const dims = vectors[0]!.length;
  const middle = new Float64Array(dims);
  const block = scratch.take('median block', MEDIAN_BLOCK * n);
  for (let first = 0; first < dims; first += MEDIAN_BLOCK) {
    const width = Math.min(MEDIAN_BLOCK, dims - first);
    gather(vectors, first, width, block);
    for (let b = 0; b < width; b++) middle[first + b] = median(block.subarray(b * n, (b + 1) * n));
  }
  return middle;
}

/** Features first … first+width-1 of every vector into `into`, by feature (feature first+b's values at b × n). */
function gather(vectors: readonly Float64Array[], first: number, width: number, into: Float64Array): void {
  const n = vectors.length;
  for (let i = 0; i < n; i++) {
    const v = vectors[i]!;
    for (let b = 0; b < width; b++) into[b * n + i] = v[first + b]!;
  }
}

/** Each vector's outlier score: its distance from the middle mix beyond the median one's, in robust standard deviations (1.4826 × MAD), two decimals. */
function robustOutliers(vectors: readonly Float64Array[], middle: Float64Array): number[] {
  const n = vectors.length;
  const fromMiddle = new Float64Array(n);
  for (let i = 0; i < n; i++) fromMiddle[i] = Math.sqrt(squaredDistance(vectors[i]!, middle));
  const typical = median(Float64Array.from(fromMiddle));
  const deviations = new Float64Array(n);
  for (let i = 0; i < n; i++) deviations[i] = Math.abs(fromMiddle[i]! - typical);
  const spread = Math.max(1.4826 * median(deviations), 0.02);
  const outlier = new Array<number>(n);
  for (let i = 0; i < n; i++) outlier[i] = Math.max(0, Math.round(((fromMiddle[i]! - typical) / spread) * 100) / 100);
  return outlier;
}

/**
 * The TOP_FEATURES features whose share in a category differs most from their share overall (by at
 * least MIN_DIFFERENCE), the largest difference first, then by name: kept in a short sorted list
 * as the features go by, not by sorting them all.
 */
function apart(features: readonly string[], share: Float64Array, overall: Float64Array): FeatureDifference[] {
  const top: { feature: string; share: number; overall: number; difference: number }[] = [];
  const before = (a: { feature: string; difference: number }, b: { feature: string; difference: number }) =>
    a.difference > b.difference || (a.difference === b.difference && a.feature.localeCompare(b.feature) < 0);
  for (let j = 0; j < features.length; j++) {
    const difference = Math.abs(share[j]! - overall[j]!);
    if (difference < MIN_DIFFERENCE) continue;
    const last = top[top.length - 1];
    if (top.length === TOP_FEATURES && last !== undefined && !before({ feature: features[j]!, difference }, last)) continue;
    const entry = { feature: features[j]!, share: share[j]!, overall: overall[j]!, difference };
    let at = top.length;
    while (at > 0 && before(entry, top[at - 1]!)) at--;
    top.splice(at, 0, entry);
    if (top.length > TOP_FEATURES) top.pop();
  }
  return top.map(({ feature, share: s, overall: o }) => ({ feature, share: s, overall: o }));
}

function closestCentres(centres: readonly Float64Array[]): number {
  let closest = Infinity;
  for (let a = 0; a < centres.length; a++) for (let b = a + 1; b < centres.length; b++) closest = Math.min(closest, Math.sqrt(squaredDistance(centres[a]!, centres[b]!)));
  return closest;
}

/** The mean of the vectors `which` names (all of them when null), and the mean of their squares, in one pass. */
function meansOf(vectors: readonly Float64Array[], which: readonly number[] | null): { mean: Float64Array; squares: Float64Array } {
  const dims = vectors[0]!.length;
  const mean = new Float64Array(dims);
  const squares = new Float64Array(dims);
  const count = which === null ? vectors.length : which.length;
  for (let w = 0; w < count; w++) {
    const v = vectors[which === null ? w : which[w]!]!;
    for (let j = 0; j < dims; j++) {
      const x = v[j]!;
      mean[j]! += x;
      squares[j]! += x * x;
    }
  }
  for (let j = 0; j < dims; j++) {
    mean[j]! /= count;
    squares[j]! /= count;
  }
  return { mean, squares };
}

/** The indexes (ascending) of the last window's clustered features among this window's (in name order, as they were), or undefined when one is gone. */
function keptBefore(features: readonly string[], before: readonly string[]): number[] | undefined {
  const kept: number[] = [];
  let j = 0;
  for (const name of before) {
    while (j < features.length && features[j]! < name) j++;
    if (features[j] !== name) return undefined;
    kept.push(j);
  }
  return kept;
}

/**
 * The vectors (the means of their values and of their squares given) cut to the `count` features
 * that vary most across them (all, if there are no more), and which those are (in order). The
 * last window's (`before`) are kept while each is still among the STILL_VARYING that vary most:
 * features that vary about as much as the count-th swap places from window to window with noise,
 * and each swap would make the clustering start afresh.
 */
function mostVarying(
  vectors: readonly Float64Array[],
  mean: Float64Array,
  squares: Float64Array,
  count: number,
  before: readonly number[] | undefined,
): { points: Float64Array[]; kept: number[] } {
  const dims = vectors[0]!.length;
  if (dims <= count) return { points: [...vectors], kept: Array.from({ length: dims }, (_, j) => j) };
  // Each feature's variance from the means already taken (of the values and of their squares): no pass of its own.
  const variance = new Float64Array(dims);
  for (let j = 0; j < dims; j++) variance[j] = Math.max(0, squares[j]! - mean[j]! * mean[j]!);
  const ranked = [...variance.keys()].sort((a, b) => variance[b]! - variance[a]! || a - b);
  let kept = ranked.slice(0, count).sort((a, b) => a - b);
  if (before !== undefined && before.length === count) {
    const still = new Set(ranked.slice(0, STILL_VARYING));
    if (before.every((j) => still.has(j))) kept = [...before];
  }
  // One buffer for the points, a view each.
  const width = kept.length;
  const buffer = new Float64Array(vectors.length * width);
  const points = new Array<Float64Array>(vectors.length);
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i]!;
    const base = i * width;
    for (let j = 0; j < width; j++) buffer[base + j] = v[kept[j]!]!;
    points[i] = buffer.subarray(base, base + width);
  }
  return { points, kept };
}
