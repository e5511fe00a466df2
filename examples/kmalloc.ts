/**
 * The seed's query (Fay, SOSP 2011), in FayLINQ: how many times is kmalloc
 * called, counting the last five minutes? The lambda in `where` becomes a
 * filter inside the kernel probe; nothing of it runs in this process.
 *
 *   npx tsx examples/kmalloc.ts [duration] [pid]
 */
import { fileURLToPath } from 'node:url';
import { connect, minutes, now, type Fay } from 'fay';

/** kmalloc calls in the last five minutes; of one process if a pid is given. */
export function kmallocs(fay: Fay, pid?: number) {
  const recent = fay.tracepoint('kmem:kmalloc*').where((e) => e.time > now() - minutes(5));
  return (pid === undefined ? recent : recent.where((e, p) => e.pid === p.pid, { pid })).count();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [duration = '4s', pid] = process.argv.slice(2);
  const fay = await connect();
  const query = kmallocs(fay, pid === undefined ? undefined : Number(pid)).duration(duration);
  console.log(query.toFayQL());
  console.log(`${await query} kmalloc calls in ${duration}`);
  await fay.close();
}
