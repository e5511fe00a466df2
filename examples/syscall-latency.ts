/**
 * System call latency by process, as a log2 histogram per process, printed
 * every second: the aggregation runs in the kernel (bpftrace maps), only the
 * histograms' buckets come up.
 *
 *   npx tsx examples/syscall-latency.ts [syscall glob] [seconds]
 */
import { fileURLToPath } from 'node:url';
import { connect, type Fay } from 'fay';

/** A latency histogram (ns) of the matching system calls, by process name. */
export function latencyByProcess(fay: Fay, syscalls: string, comm?: string) {
  const calls = fay.syscalls(syscalls);
  return (comm === undefined ? calls : calls.where((e, p) => e.comm === p.comm, { comm }))
    .groupBy((e) => ({ comm: e.comm }))
    .hist((e) => e.duration);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [syscalls = 'read', seconds = '5'] = process.argv.slice(2);
  const fay = await connect();
  const query = latencyByProcess(fay, syscalls).top(5).every('1s');
  console.log(query.toFayQL());
  let left = Number(seconds);
  for await (const window of query) {
    console.log(`— ${window.start.toISOString()} – ${window.end.toISOString()}`);
    for (const row of window.rows) {
      const buckets = row.hist.buckets.map((b) => `${b.low ?? ''}…${b.high ?? ''}: ${b.count}`).join('  ');
      console.log(`${row.comm.padEnd(16)} ${String(row.hist.total).padStart(8)} calls  ${buckets}`);
    }
    if (--left <= 0) break; // Leaving the loop stops the query and removes its probes.
  }
  await fay.close();
}
