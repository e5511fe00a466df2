/** Socket addresses as bpftrace prints a buffer of their bytes, written out as text. */

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The bytes of a buffer as bpftrace 0.17 prints it in JSON: a printable byte as itself, any
 * other as `\xHH` (the JSON string holds the backslash).
 */
export function bufferBytes(printed: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < printed.length; i++) {
    if (printed[i] === '\\' && printed[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(printed.slice(i + 2, i + 4))) {
      bytes.push(parseInt(printed.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(printed.charCodeAt(i) & 0xff);
  }
  return bytes;
}

/** An IPv6 address's 16 bytes as RFC 5952 writes them: lowercase, the longest run of zero groups (two or more) as `::`. */
function ipv6(bytes: readonly number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = { at: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (best.length < 2) return hex(0, 8);
  return `${hex(0, best.at)}::${hex(best.at + best.length, 8)}`;
}

/**
 * A socket address from its first 24 bytes (a struct sockaddr in the host's order: family
 * little-endian, port big-endian): `127.0.0.1:80`, `[::1]:443`; empty for any other family.
 */
export function socketAddressText(bytes: readonly number[]): string {
  if (bytes.length < 8) return '';
  const family = bytes[0]! | (bytes[1]! << 8);
  const port = (bytes[2]! << 8) | bytes[3]!;
  if (family === AF_INET) return `${bytes.slice(4, 8).join('.')}:${port}`;
  if (family === AF_INET6 && bytes.length >= 24) return `[${ipv6(bytes.slice(8, 24))}]:${port}`;
  return '';
}
