/**
 * Merge throughput of the machine and cluster stages: partial groups merged per second, beside a
 * plain Map of numbers doing the same sums in the same run. Target: count-by-key (10k keys) within
 * 3× of the plain Map. Also the wire size of one host's 10k-key partial.
 */
import { gzipSync } from 'node:zlib';
import type { AggregateKind } from '../src/agg/aggregate.js';
import { GroupTable } from '../src/agg/group-table.js';
import { createAggregate } from '../src/agg/registry.js';

const KEYS = 10_000;
const HOSTS = 50;
const ROUNDS = 7;

function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs `merge` over every host's partial ROUNDS times; the median groups merged per second. */
function rate(groupsPerRound: number, merge: () => void): number {
  merge(); // warm-up
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    merge();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return groupsPerRound / median(times);
}

function fmt(perSecond: number): string {
  return `${(perSecond / 1e6).toFixed(2)} M groups/s`;
}

// count() by comm, pid: each host sees most keys (services run everywhere).
const count = createAggregate({ function: 'count', params: [] });
const random = seeded(1);
const keys = Array.from({ length: KEYS }, (_, i) => [`svc-${i % 500}`, 1000 + i] as const);
const hostTables: GroupTable[] = [];
const hostMaps: Map<string, number>[] = [];
for (let h = 0; h < HOSTS; h++) {
  const table = new GroupTable([count]);
  const map = new Map<string, number>();
  for (const key of keys) {
    const n = 1 + Math.floor(random() * 1000);
    table.mergeGroup(key, [{ count: n }]);
    map.set(JSON.stringify(key), n);
  }
  hostTables.push(table);
  hostMaps.push(map);
}
const wires = hostTables.map((t) => JSON.stringify(t.encode()));

const plain = rate(KEYS * HOSTS, () => {
  const total = new Map<string, number>();
  for (const map of hostMaps) for (const [k, v] of map) total.set(k, (total.get(k) ?? 0) + v);
});
const fay = rate(KEYS * HOSTS, () => {
  const total = new GroupTable([count]);
  for (const table of hostTables) total.merge(table);
});
const fayWire = rate(KEYS * HOSTS, () => {
  const total = new GroupTable([count]);
  for (const wire of wires) total.merge(GroupTable.decode([count], JSON.parse(wire)));
});

// quantiles(duration, 0.5, 0.99) by comm: sketches of ~100 bins per group.
const QKEYS = 1_000;
const quantiles = createAggregate({ function: 'quantiles', params: [0.5, 0.99] }) as AggregateKind<{ positive: Map<number, number> }>;
const sketchTables: GroupTable[] = [];
const binMaps: Map<string, Map<number, number>>[] = [];
for (let h = 0; h < 10; h++) {
  const table = new GroupTable([quantiles]);
  for (let k = 0; k < QKEYS; k++) for (let e = 0; e < 200; e++) table.add([`svc-${k}`], [Math.floor(1e3 + random() * 1e7)], 0);
  sketchTables.push(table);
  binMaps.push(new Map([...table.entries()].map((g) => [JSON.stringify(g.key), new Map((g.states[0] as { positive: Map<number, number> }).positive)])));
}
const plainBins = rate(QKEYS * 10, () => {
  const total = new Map<string, Map<number, number>>();
  for (const map of binMaps) {
    for (const [k, bins] of map) {
      let into = total.get(k);
      if (!into) total.set(k, (into = new Map<number, number>()));
      for (const [b, n] of bins) into.set(b, (into.get(b) ?? 0) + n);
    }
  }
});
const faySketch = rate(QKEYS * 10, () => {
  const total = new GroupTable([quantiles]);
  for (const table of sketchTables) total.merge(table);
});

const wireBytes = Buffer.byteLength(wires[0]!);
const gzipBytes = gzipSync(wires[0]!).length;
console.log(`merge throughput, median of ${ROUNDS} rounds (${HOSTS} hosts × ${KEYS.toLocaleString('en')} keys for count)`);
console.log(`count() by key   plain Map ${fmt(plain)}   GroupTable ${fmt(fay)}   ratio ${(plain / fay).toFixed(2)}× slower (target ≤ 3×)`);
console.log(`count() by key   decode from the wire + merge ${fmt(fayWire)}   ratio ${(plain / fayWire).toFixed(2)}× slower than the plain Map`);
console.log(`quantiles by key plain Map of bins ${fmt(plainBins)}   GroupTable (DDSketch) ${fmt(faySketch)}   ratio ${(plainBins / faySketch).toFixed(2)}×`);
console.log(`wire size of one host's ${KEYS.toLocaleString('en')}-key count partial: ${wireBytes.toLocaleString('en')} bytes JSON, ${gzipBytes.toLocaleString('en')} bytes gzipped`);
console.log(
  JSON.stringify({
    bench: 'merge',
    groups_per_second: { plain_count: plain, fay_count: fay, fay_count_from_wire: fayWire, plain_bins: plainBins, fay_quantiles: faySketch },
    wire_bytes: wireBytes,
    wire_gzip_bytes: gzipBytes,
  }),
);
