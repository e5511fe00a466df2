/** MurmurHash3 (x86, 32-bit) of a string's UTF-16 code units: a fast, well-mixed hash for sketches. */
export function murmur3(text: string, seed = 0): number {
  let h = seed >>> 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    let k = text.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A scalar's identity as text: 1 and "1" differ. */
export function scalarKey(value: unknown): string {
  return `${typeof value}:${String(value)}`;
}
