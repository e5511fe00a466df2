/**
 * A process that persists windows into a trace store as fast as it can, for a test to kill with
 * SIGKILL: `node --import tsx store-writer.ts <dir> <agent>`; after each window is written it
 * prints how many it has written, so that the test knows what was on disk before the kill.
 */
import { GroupTable } from '../agg/group-table.js';
import { createAggregate } from '../agg/registry.js';
import { TraceStore } from '../store/trace-store.js';

const [dir, agent] = process.argv.slice(2) as [string, string];
const kinds = [createAggregate({ function: 'count', params: [] })];
const store = await TraceStore.open(dir, agent);
await store.create({ name: 'ticks', query: 'interval:1s | count() by comm', kind: 'windows', retainMs: undefined });
for (let w = 0; ; w++) {
  const table = new GroupTable(kinds);
  for (let g = 0; g < 10; g++) table.add([`proc-${g}`], [undefined], 0);
  await store.appendWindow('ticks', { host: 'h', startNs: w * 1e9, endNs: (w + 1) * 1e9, table });
  process.stdout.write(`${w + 1}\n`);
}
