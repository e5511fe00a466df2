import { hostname } from 'node:os';

/** Where a machine's trace store is (docs/store.md), without loading the store itself (DuckDB). */

/** The directory of this machine's trace stores: FAY_STORE_DIR, or /var/lib/fay/store. */
export function defaultStoreDir(): string {
  return process.env.FAY_STORE_DIR ?? '/var/lib/fay/store';
}

/** The store an agent of this host name keeps (its file's name: what a file name may hold). */
export function storeName(host: string = hostname()): string {
  return host.replace(/[^A-Za-z0-9_.-]/g, '_');
}
