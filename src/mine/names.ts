/**
 * Names numbered in the order first met (0, 1, 2…): a window's features, each met once per
 * entity (150,000 times for 500 hosts × 300 system calls).
 *
 * An open-addressing table on a hash of a few of the name's characters, not a Map: every name
 * that comes off the bus is a string of its own (JSON.parse makes one per occurrence), so a Map
 * hashes each one whole and compares it with the stored one, about 35 ns a lookup here, where a
 * few characters and one comparison take about half (measured: 11–13 ms against 5–7 ms a window
 * of 150,000, in groups that come in any order). Names alike in every character sampled share a
 * hash and are told apart by comparison; should they make the probes long, the table stops
 * hashing its own way and uses a Map for the rest of the window.
 */
export class Names {
  /** Each slot: a name's number, or -1. */
  private slots = new Int32Array(1024).fill(-1);
  private readonly names: string[] = [];
  private probes = 0;
  private lookups = 0;
  /** Set when the sampled hash proved poor for this window's names. */
  private map: Map<string, number> | undefined;

  get size(): number {
    return this.names.length;
  }

  /** False once this window's names proved alike in the characters sampled (a Map numbers them since). */
  get hashing(): boolean {
    return this.map === undefined;
  }

  /** Forgets every name (the table's memory is kept for the next window). */
  clear(): void {
    this.slots.fill(-1);
    this.names.length = 0;
    this.probes = 0;
    this.lookups = 0;
    this.map = undefined;
  }

  /** The names, by number. */
  list(): string[] {
    return [...this.names];
  }

  /** The name's number: its own when met before, else the next. */
  number(name: string): number {
    if (this.map !== undefined) return this.numberInMap(this.map, name);
    const mask = this.slots.length - 1;
    let at = sampledHash(name) & mask;
    this.lookups++;
    for (;;) {
      const i = this.slots[at]!;
      if (i < 0) return this.add(name, at);
      if (this.names[i] === name) return i;
      // Long runs of probes: the sample does not tell these names apart.
      if (++this.probes > 4 * this.lookups + 4096) return this.numberInMap((this.map = new Map(this.names.map((n, j) => [n, j]))), name);
      at = (at + 1) & mask;
    }
  }

  private add(name: string, at: number): number {
    const i = this.names.length;
    this.names.push(name);
    this.slots[at] = i;
    // At most half full.
    if (this.names.length * 2 > this.slots.length) this.grow();
    return i;
  }

  private grow(): void {
    this.slots = new Int32Array(this.slots.length * 2).fill(-1);
    const mask = this.slots.length - 1;
    this.names.forEach((name, i) => {
      let at = sampledHash(name) & mask;
      while (this.slots[at]! >= 0) at = (at + 1) & mask;
      this.slots[at] = i;
    });
  }

  private numberInMap(map: Map<string, number>, name: string): number {
    let i = map.get(name);
    if (i === undefined) {
      map.set(name, (i = this.names.length));
      this.names.push(name);
    }
    return i;
  }
}

/**
 * A hash of a name's length and of the characters where names of one kind differ most: the last
 * four (system call names, numbered processes) and the first and middle ones. Characters past the
 * end read as NaN, which the bit operations take as 0.
 */
function sampledHash(name: string): number {
  const n = name.length;
  let h = Math.imul(n, 0x9e3779b1);
  h = Math.imul(h ^ name.charCodeAt(n - 1), 0x85ebca6b);
  h = Math.imul(h ^ name.charCodeAt(n - 2), 0xc2b2ae35);
  h = Math.imul(h ^ name.charCodeAt(n - 3), 0x27d4eb2f);
  h = Math.imul(h ^ name.charCodeAt(n - 4), 0x165667b1);
  h = Math.imul(h ^ name.charCodeAt(n >> 1), 0x85ebca6b);
  h = Math.imul(h ^ name.charCodeAt(0), 0xc2b2ae35);
  return (h ^ (h >>> 15)) >>> 0;
}
