/**
 * Exports (issue 23), side by side in one run:
 *
 * 1. A scrape of a 10,000-series endpoint: `fay query --prometheus`'s endpoint holding a
 *    `count() by key` answer of SERIES groups, scraped over HTTP (render and transfer), against
 *    prom-client's own Counter holding the same SERIES label sets in a registry served the same
 *    way. Medians of ROUNDS scrapes; bytes of each.
 * 2. What exporting costs a window: the endpoint taking a window of SERIES groups (its series
 *    updated), against merging that window from HOSTS hosts' partials (decoded from their wire
 *    form), as the cluster stage does; and, on a machine (`fay agent --prometheus`), a standing
 *    query's machine-stage window of SERIES groups made rows and taken, against the same merge.
 *    Medians of ROUNDS windows.
 */
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Counter, Registry } from 'prom-client';
import { GroupTable } from '../src/agg/group-table.js';
import { count } from '../src/agg/basic.js';
import type { ResultMessage } from '../src/cluster/cluster-stage.js';
import { MetricsEndpoint, PrometheusSink, standingMetrics } from '../src/output/prometheus.js';
import { planStages } from '../src/plan/planner.js';
import { compileQuery } from '../src/query/compile.js';
import { fixtureRegistry } from '../src/testing/catalog-fixture.js';
import { countByComm } from '../src/testing/query.js';

const SERIES = Number(process.env.FAY_BENCH_SERIES ?? 10_000);
const HOSTS = 10;
const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 21);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const key = (i: number) => `process-${String(i).padStart(5, '0')}`;

function scrape(url: string): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) =>
    get(url, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ ms: performance.now() - started, bytes }));
    }).on('error', reject),
  );
}

function windowOf(n: number, round: number): ResultMessage {
  return countByComm(Array.from({ length: n }, (_, i) => [key(i), 1 + ((i * 7 + round) % 100)] as const), round * 1e9, (round + 1) * 1e9);
}

const quiet = new Writable({ write: (_c, _e, cb) => cb() });
const sink = await PrometheusSink.start({ host: '127.0.0.1', port: 0 }, { err: quiet });

// prom-client's own: one Counter with the same label sets, served the same way.
const registry = new Registry();
const counter = new Counter({ name: 'fay_count', help: 'count', labelNames: ['comm'], registers: [registry] });
const own = createServer((_req, res) => void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text)));
await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
const ownUrl = `http://127.0.0.1:${(own.address() as AddressInfo).port}/metrics`;

const kinds = [count];
// A standing query's windows on an agent's endpoint, as fay agent --prometheus serves them.
const agentEndpoint = await MetricsEndpoint.start({ host: '127.0.0.1', port: 0 });
const standing = standingMetrics(agentEndpoint, 'fay', 'bench', () => undefined)('bench', planStages(compileQuery('syscall:* | count() by comm every 1s', fixtureRegistry())))!;
const machineMs: number[] = [];
const exportMs: number[] = [];
const mergeMs: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const window = windowOf(SERIES, round);
  for (const row of window.rows) counter.inc({ comm: row[0] as string }, row[1] as number);
  // The hosts' partials of the same window, each with its share of the groups, as they come off the wire.
  const wires = Array.from({ length: HOSTS }, (_, h) => {
    const table = new GroupTable(kinds);
    for (let i = h; i < SERIES; i += HOSTS) table.mergeGroup([key(i)], [kinds[0]!.decode(1 + ((i * 7 + round) % 100))]);
    return JSON.stringify(table.encode());
  });
  let started = performance.now();
  const merged = new GroupTable(kinds, { maxGroups: SERIES });
  for (const wire of wires) merged.merge(GroupTable.decode(kinds, JSON.parse(wire)));
  mergeMs.push(performance.now() - started);
  started = performance.now();
  await sink.export(window);
  exportMs.push(performance.now() - started);
  started = performance.now();
  standing.window({ host: 'bench', table: merged, startNs: window.startNs, endNs: window.endNs, droppedEvents: 0, uncountedEvents: 0 });
  machineMs.push(performance.now() - started);
}
await agentEndpoint.close();

const fay: { ms: number; bytes: number }[] = [];
const theirs: { ms: number; bytes: number }[] = [];
for (let round = 0; round < ROUNDS; round++) {
  fay.push(await scrape(sink.url));
  theirs.push(await scrape(ownUrl));
}
await sink.shutdown();
own.close();

const ms = (xs: { ms: number }[]) => median(xs.map((x) => x.ms));
console.log(`== a scrape of ${SERIES.toLocaleString('en')} series over HTTP, medians of ${ROUNDS}`);
console.log(`prom-client's own Counter with the same label sets   ${ms(theirs).toFixed(1)} ms  ${theirs[0]!.bytes.toLocaleString('en')} B  baseline`);
console.log(`fay query --prometheus's endpoint                     ${ms(fay).toFixed(1)} ms  ${fay[0]!.bytes.toLocaleString('en')} B  ${(ms(fay) / ms(theirs)).toFixed(2)}×`);
console.log(`== what exporting costs a window of ${SERIES.toLocaleString('en')} groups, medians of ${ROUNDS}`);
console.log(`merging the window from ${HOSTS} hosts' partials              ${median(mergeMs).toFixed(1)} ms  baseline`);
console.log(`the endpoint taking the window                        ${median(exportMs).toFixed(1)} ms  ${(median(exportMs) / median(mergeMs)).toFixed(2)}×`);
console.log(`an agent's endpoint taking a machine-stage window      ${median(machineMs).toFixed(1)} ms  ${(median(machineMs) / median(mergeMs)).toFixed(2)}× (its rows made, then taken)`);
console.log(JSON.stringify({ bench: 'export', series: SERIES, scrape_ms: ms(fay), scrape_bytes: fay[0]!.bytes, prom_client_ms: ms(theirs), prom_client_bytes: theirs[0]!.bytes, export_ms: median(exportMs), machine_export_ms: median(machineMs), merge_ms: median(mergeMs) }));
