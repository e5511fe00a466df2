import { MAX_MESSAGE_BYTES } from './protocol.js';

/** The size a message carrying a table is kept under: half the limit, so that gzip's worst case and the envelope fit. */
export const TARGET_MESSAGE_BYTES = MAX_MESSAGE_BYTES / 2;

/** A table that travels in parts (a GroupTable: the bus imports nothing of the aggregates). */
export interface SplittableTable {
  encode(): unknown;
  split(parts: number): SplittableTable[];
}

/** A window's span and its counts of lost events, as part `part` of `parts` carries them: the counts go with the first part only. */
export function windowPart(
  part: number,
  parts: number,
  w: { readonly startNs: number; readonly endNs: number; readonly droppedEvents: number; readonly uncountedEvents: number },
): { part: number; parts: number; startNs: number; endNs: number; droppedEvents: number; uncountedEvents: number } {
  return { part, parts, startNs: w.startNs, endNs: w.endNs, droppedEvents: part === 0 ? w.droppedEvents : 0, uncountedEvents: part === 0 ? w.uncountedEvents : 0 };
}

/**
 * A message carrying a table, in as many parts as keep each under TARGET_MESSAGE_BYTES, each with
 * its bytes. A table that fits is encoded once and goes out as the bytes that were measured.
 */
export function inParts<M>(table: SplittableTable, message: (part: number, parts: number, wire: unknown) => M, encode: (message: M) => Uint8Array): { message: M; bytes: Uint8Array }[] {
  const single = message(0, 1, table.encode());
  const bytes = encode(single);
  if (bytes.length <= TARGET_MESSAGE_BYTES) return [{ message: single, bytes }];
  const tables = table.split(Math.ceil(bytes.length / TARGET_MESSAGE_BYTES) * 2);
  return tables.map((t, part) => {
    const m = message(part, tables.length, t.encode());
    return { message: m, bytes: encode(m) };
  });
}
