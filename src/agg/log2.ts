/**
 * Power-of-two histogram buckets, numbered as bpftrace's `hist()` numbers them so
 * that kernel partials and partials built outside the kernel merge bucket for bucket:
 * -1 holds negative values, 0 holds 0, 1 holds 1, and k ≥ 2 holds [2^(k-1), 2^k).
 */
export function log2Bucket(value: number): number {
  if (value < 0) return -1;
  if (value < 1) return 0;
  // floor(log2) + 1: from the bit count below 2^32, by doubling above (exact for integers).
  if (value < 4294967296) return 32 - Math.clz32(value);
  let k = 33;
  let bound = 8589934592;
  while (value >= bound) {
    bound *= 2;
    k++;
  }
  return k;
}

/** Smallest value in a bucket (undefined: no lower bound). */
export function log2BucketLow(bucket: number): number | undefined {
  if (bucket < 0) return undefined;
  if (bucket === 0) return 0;
  return 2 ** (bucket - 1);
}

/** Largest value in a bucket, for integer values. */
export function log2BucketHigh(bucket: number): number {
  if (bucket < 0) return -1;
  if (bucket === 0) return 0;
  return 2 ** bucket - 1;
}

/** The bucket a bpftrace hist() entry describes, from its `min` (absent for the negative bucket). */
export function log2BucketFromLow(min: number | undefined): number {
  if (min === undefined) return -1;
  return log2Bucket(min);
}
