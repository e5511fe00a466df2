/**
 * A module loaded on first use, then kept: `import()` of a module already loaded still goes
 * through the loader each time (0.1–1 ms under a loader hook such as tsx), a kept promise does not.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}
