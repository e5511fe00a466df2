import { hostname } from 'node:os';
import { NatsBus } from '../bus/nats.js';
import { Aggregator } from '../cluster/aggregator.js';
import { MAX_TREE_LEVELS } from '../bus/protocol.js';
import { UsageError } from '../errors.js';
import { clusterSettings, type ClusterFlags } from '../frontend/cluster-config.js';
import { parseDurationFlag } from '../frontend/flags.js';

export interface AggregatorFlags extends ClusterFlags {
  nats?: string;
  name?: string;
  heartbeat?: string;
  level?: string;
}

/**
 * `fay aggregator`: an aggregator of the cluster's merge tree, in the foreground, until SIGTERM or
 * Ctrl-C. It takes its share of the hosts (by shards of their names) and merges their windows per
 * period for the clients; the others take its share when it goes.
 */
export async function runAggregator(flags: AggregatorFlags, version: string): Promise<void> {
  const name = flags.name ?? `${hostname()}-${process.pid}`;
  const settings = clusterSettings({ ...flags, cluster: flags.nats ?? flags.cluster }, `fay-aggregator ${name}`);
  if (settings === undefined) throw new UsageError('an aggregator merges the windows of a cluster: give it the bus with --nats nats://…', { hint: 'e.g. fay aggregator --nats nats://fay-aggregator:secret@10.0.0.5:4222' });
  const heartbeatMs = flags.heartbeat === undefined ? undefined : parseDurationFlag(flags.heartbeat, '--heartbeat');
  const level = flags.level === undefined ? 1 : Number(flags.level);
  if (!Number.isInteger(level) || level < 1 || level > MAX_TREE_LEVELS) throw new UsageError(`--level takes a whole number from 1 to ${MAX_TREE_LEVELS}, not "${flags.level}"`, { hint: '1 merges the hosts\' windows; 2 merges what the aggregators of level 1 pass up, for a deeper tree' });
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} fay aggregator ${name}: ${line}\n`);
  const bus = await NatsBus.connect(settings);
  bus.onStatus((status) => log(status === 'disconnected' ? 'lost the bus; reconnecting' : status === 'reconnected' ? 'back on the bus' : 'bus closed'));
  const aggregator = await Aggregator.start(bus, { name, version, level, ...(heartbeatMs !== undefined && { heartbeatMs }) });
  log(`ready (incarnation ${aggregator.incarnation}; level ${level}, ${aggregator.shards().length} of 256 shards, with ${aggregator.live().length - 1} other aggregators of its level)`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, stop);
      log('leaving the tree');
      aggregator.close();
      void bus.close().finally(resolve);
    };
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, stop);
  });
}
