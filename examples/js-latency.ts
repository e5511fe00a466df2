/**
 * How long do a live Node.js server's request handlers take? Fay attaches to
 * the running process (no restart, no flag), probes `handle` in
 * demo-server.mjs, times each call to its settling inside the process, and
 * takes everything out again at the end.
 *
 *   node examples/demo-server.mjs &      # prints its port
 *   npx tsx examples/js-latency.ts <pid> [duration]
 *   curl 'http://127.0.0.1:<port>/work?ms=20'    # while it runs
 */
import { fileURLToPath } from 'node:url';
import { connect, type Fay } from 'fay';

/** Calls of the demo server's handler in one process, and their latency quantiles (ns). */
export function handlerLatency(fay: Fay, pid: number) {
  return fay
    .js(`pid=${pid}`, 'demo-server.mjs#handle')
    .where((e) => !e.threw)
    .aggregate((a) => ({ calls: a.count(), latency: a.quantiles((e) => e.duration, 0.5, 0.99), slowest: a.max((e) => e.duration) }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [pid, duration = '10s'] = process.argv.slice(2);
  if (pid === undefined) {
    console.error('usage: npx tsx examples/js-latency.ts <pid of demo-server.mjs> [duration]');
    process.exit(2);
  }
  const fay = await connect();
  const query = handlerLatency(fay, Number(pid)).duration(duration);
  console.log(query.toFayQL());
  const { calls, latency, slowest } = await query;
  const [p50, p99] = latency.quantiles.map((q) => ((q.value ?? 0) / 1e6).toFixed(1));
  console.log(`${calls} calls: p50 ${p50} ms, p99 ${p99} ms, slowest ${(slowest / 1e6).toFixed(1)} ms`);
  await fay.close();
}
