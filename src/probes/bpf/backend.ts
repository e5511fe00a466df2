import { UsageError } from '../../errors.js';

export type Backend = 'bpftrace' | 'native' | 'auto';
export const BACKENDS: readonly Backend[] = ['bpftrace', 'native', 'auto'];
/** Native where it covers the query and the kernel takes it (a few named system calls each on its own tracepoint, as bpftrace attaches them); bpftrace otherwise. */
export const DEFAULT_BACKEND: Backend = 'auto';

/** The kernel provider's options of a query: which backend runs its probes (auto by default). */
export function bpfOptions(options: unknown): { backend: Backend } {
  if (options === undefined) return { backend: DEFAULT_BACKEND };
  const backend: unknown = typeof options === 'object' && options !== null ? (options as Record<string, unknown>).backend : undefined;
  if (typeof options !== 'object' || options === null || !BACKENDS.includes(backend as Backend) || Object.keys(options).some((k) => k !== 'backend')) {
    throw new UsageError(`the kernel probes' options are { backend: ${BACKENDS.join(' | ')} }, not ${JSON.stringify(options)}`);
  }
  return { backend: backend as Backend };
}
