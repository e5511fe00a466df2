import { gunzipSync, gzipSync } from 'node:zlib';

/** Messages bigger than this travel gzipped when that makes them smaller (JSON of partials shrinks 3–10×). */
const COMPRESS_ABOVE = 512;
const GZIP_MAGIC = [0x1f, 0x8b];

/** A message from the bus that could not be read: too big, not JSON, or not a message Fay knows. */
export class BusMessageError extends Error {
  override readonly name = 'BusMessageError';
}

/** A message as bytes on the bus: JSON, gzipped when large (unless `compress` is false: a bus inside one process). */
export function encodeMessage(message: unknown, compress = true): Uint8Array {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  if (!compress || json.length <= COMPRESS_ABOVE) return json;
  const packed = gzipSync(json);
  return packed.length < json.length ? packed : json;
}

/** Bytes from the bus back to a value; throws BusMessageError. `maxBytes` bounds the decompressed size too. */
export function decodeMessage(bytes: Uint8Array, maxBytes: number): unknown {
  if (bytes.length > maxBytes) throw new BusMessageError(`a message of ${bytes.length} bytes, over the limit of ${maxBytes}`);
  let json: Buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    try {
      json = gunzipSync(json, { maxOutputLength: maxBytes });
    } catch (error) {
      throw new BusMessageError(`a compressed message that does not inflate within ${maxBytes} bytes: ${(error as Error).message}`);
    }
  }
  try {
    return JSON.parse(json.toString('utf8')) as unknown;
  } catch {
    throw new BusMessageError('a message that is not JSON');
  }
}
