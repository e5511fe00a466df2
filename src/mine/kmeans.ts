/**
 * k-means (Lloyd's iterations from a k-means++ start) over dense vectors, seeded so that the same
 * input always gives the same clusters. Written here rather than taken from ml-kmeans 7, measured:
 * on 500 vectors of 300 features, the 21 runs that choosing k among 2–8 with 3 restarts takes cost
 * ml-kmeans 1.37 s (a distance callback per pair, matrix objects) and this 0.25 s on the same
 * machine, ~35 ms on the 24 features categorize keeps (docs/mining.md, docs/benchmarks.md).
 */

import { prng } from '../prng.js';

export interface Clustering {
  /** Each vector's cluster, 0 … k-1. */
  readonly assignment: Int32Array;
  readonly centres: readonly Float64Array[];
  /** The sum of squared distances of the vectors to their centres. */
  readonly inertia: number;
}

export function squaredDistance(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  return sum;
}

/** k-means++: the first centre at random, each next one drawn with probability ∝ its squared distance to the nearest chosen. */
function initialCentres(points: readonly Float64Array[], k: number, random: () => number): Float64Array[] {
  const centres = [Float64Array.from(points[Math.floor(random() * points.length)]!)];
  const nearest = new Float64Array(points.length).fill(Infinity);
  while (centres.length < k) {
    const last = centres[centres.length - 1]!;
    let total = 0;
    for (let i = 0; i < points.length; i++) {
      nearest[i] = Math.min(nearest[i]!, squaredDistance(points[i]!, last));
      total += nearest[i]!;
    }
    // All points sit on chosen centres: any will do (they are duplicates).
    let target = random() * total;
    let pick = 0;
    if (total > 0) {
      for (pick = 0; pick < points.length - 1; pick++) {
        target -= nearest[pick]!;
        if (target < 0) break;
      }
    } else pick = centres.length % points.length;
    centres.push(Float64Array.from(points[pick]!));
  }
  return centres;
}

/** Lloyd's iterations from the given centres (a k-means++ start, or the last window's centres). */
export function lloyd(points: readonly Float64Array[], centres: Float64Array[], maxIterations: number): Clustering {
  const n = points.length;
  const dims = points[0]!.length;
  const assignment = new Int32Array(n).fill(-1);
  let inertia = 0;
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    let moved = 0;
    inertia = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestDistance = Infinity;
      for (let c = 0; c < centres.length; c++) {
        const d = squaredDistance(points[i]!, centres[c]!);
        if (d < bestDistance) {
          bestDistance = d;
          best = c;
        }
      }
      if (assignment[i] !== best) moved++;
      assignment[i] = best;
      inertia += bestDistance;
    }
    if (moved === 0) break;
    const sums = centres.map(() => new Float64Array(dims));
    const sizes = new Int32Array(centres.length);
    for (let i = 0; i < n; i++) {
      const c = assignment[i]!;
      sizes[c]!++;
      const sum = sums[c]!;
      const p = points[i]!;
      for (let j = 0; j < dims; j++) sum[j]! += p[j]!;
    }
    for (let c = 0; c < centres.length; c++) {
      if (sizes[c] === 0) {
        // An empty cluster takes the point farthest from its centre.
        let far = 0;
        let farDistance = -1;
        for (let i = 0; i < n; i++) {
          const d = squaredDistance(points[i]!, centres[assignment[i]!]!);
          if (d > farDistance) {
            farDistance = d;
            far = i;
          }
        }
        centres[c] = Float64Array.from(points[far]!);
        continue;
      }
      const sum = sums[c]!;
      for (let j = 0; j < dims; j++) sum[j]! /= sizes[c]!;
      centres[c] = sum;
    }
  }
  return { assignment, centres, inertia };
}

/** The best (least inertia) of `restarts` runs, each from its own seeded k-means++ start. */
export function kmeans(points: readonly Float64Array[], k: number, options: { readonly seed: number; readonly restarts: number; readonly maxIterations: number }): Clustering {
  if (k < 1 || k > points.length) throw new RangeError(`k-means needs 1 ≤ k ≤ ${points.length}, not ${k}`);
  let best: Clustering | undefined;
  for (let r = 0; r < options.restarts; r++) {
    const random = prng(options.seed + r * 7919);
    const run = lloyd(points, initialCentres(points, k, random), options.maxIterations);
    if (best === undefined || run.inertia < best.inertia - 1e-12) best = run;
  }
  return best!;
}

/**
 * The simplified silhouette of a clustering (each vector's distance to its own centre against the
 * nearest other centre: O(n·k·d), where the full silhouette is O(n²·d)), averaged; in [-1, 1].
 */
export function simplifiedSilhouette(points: readonly Float64Array[], clustering: Clustering): number {
  if (clustering.centres.length < 2) return 0;
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    const own = clustering.assignment[i]!;
    const a = Math.sqrt(squaredDistance(points[i]!, clustering.centres[own]!));
    let b = Infinity;
    for (let c = 0; c < clustering.centres.length; c++) if (c !== own) b = Math.min(b, Math.sqrt(squaredDistance(points[i]!, clustering.centres[c]!)));
    const denominator = Math.max(a, b);
    sum += denominator === 0 ? 0 : (b - a) / denominator;
  }
  return sum / points.length;
}
