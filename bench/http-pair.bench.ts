/**
 * What pairing HTTP requests costs a server: requests a second a Node.js HTTP server (the test
 * target app.cjs, pinned to one CPU) answers to keep-alive clients in this process, with and without
 * `http:pid=N:server | count(), quantiles(duration, 0.5, 0.99) by method, path, status` attached,
 * alternating in random order, ROUNDS rounds of SECONDS each. The figure is the median of the
 * per-round ratios of requests a second, probed against plain. Target: the probe costs under 3%.
 */
import { Agent, request } from 'node:http';
import { availableParallelism } from 'node:os';
import { localCluster } from '../src/frontend/local-cluster.js';
import { startNodeTarget } from '../src/testing/node-target.js';

const ROUNDS = Number(process.env.FAY_BENCH_ROUNDS ?? 7);
const SECONDS = Number(process.env.FAY_BENCH_HTTP_SECONDS ?? 2);
const CONCURRENCY = 8;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const target = await startNodeTarget('app.cjs', { cpu: Math.max(0, availableParallelism() - 1) });
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const cluster = localCluster();

function get(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: target.port, path, agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    })
      .on('error', reject)
      .end();
  });
}

/** Requests a second the server answered over SECONDS, CONCURRENCY at a time. */
async function load(): Promise<number> {
  let done = 0;
  const until = performance.now() + SECONDS * 1000;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < until; i++) {
      await get(`/users/${(w * 7 + i) % 50}`);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  return done / ((performance.now() - started) / 1000);
}

async function probed(): Promise<number> {
  const run = cluster.run(`http:pid=${target.pid}:server | count(), quantiles(duration, 0.5, 0.99) by method, path, status`);
  await run.attached;
  const rps = await load();
  await run.stop();
  let counted = 0;
  for await (const m of run) if (m.kind === 'result' && m.complete) counted = m.rows.reduce((n, r) => n + Number(r[3]), 0);
  if (counted === 0) throw new Error('the probe counted no request');
  return rps;
}

await load(); // warm-up: the server's code and the sockets
const plain: number[] = [];
const withProbe: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const cases = Math.random() < 0.5 ? ['plain', 'probed'] : ['probed', 'plain'];
  for (const c of cases) (c === 'plain' ? plain : withProbe).push(c === 'plain' ? await load() : await probed());
  process.stderr.write(`round ${round + 1}/${ROUNDS}: plain ${plain.at(-1)!.toFixed(0)}/s, probed ${withProbe.at(-1)!.toFixed(0)}/s\n`);
}
agent.destroy();
await target.stop();
const ratio = median(withProbe.map((p, i) => p / plain[i]!));
console.log(`HTTP server, ${CONCURRENCY} keep-alive clients, ${SECONDS} s a case, medians of ${ROUNDS} rounds`);
console.log(`plain                                       ${median(plain).toFixed(0)} requests/s  baseline`);
console.log(`http:server | count(), quantiles(duration) by method, path, status   ${median(withProbe).toFixed(0)} requests/s  ${ratio.toFixed(3)}× plain: the probe costs ${((1 - ratio) * 100).toFixed(1)}% (target < 3%)`);
console.log(JSON.stringify({ bench: 'http-pair', rounds: ROUNDS, seconds: SECONDS, plain_rps: median(plain), probed_rps: median(withProbe), ratio }));
