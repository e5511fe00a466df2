import { hostname } from 'node:os';
import { Agent } from '../agent/agent.js';
import { AgentService } from '../agent/service.js';
import { NatsBus } from '../bus/nats.js';
import { localRegistry } from '../probes/default-registry.js';
import { UsageError } from '../errors.js';
import { resolveCgroup } from '../probes/cgroup.js';
import { clusterSettings, type ClusterFlags } from '../frontend/cluster-config.js';
import { parseDurationFlag } from '../frontend/flags.js';

export interface AgentFlags extends ClusterFlags {
  nats?: string;
  name?: string;
  cgroup?: string;
  heartbeat?: string;
}

/** `fay agent`: this machine's agent on the cluster's bus, in the foreground, until SIGTERM or Ctrl-C. */
export async function runAgent(flags: AgentFlags, version: string): Promise<void> {
  const host = flags.name ?? hostname();
  const settings = clusterSettings({ ...flags, cluster: flags.nats ?? flags.cluster }, `fay-agent ${host}`);
  if (settings === undefined) {
    throw new UsageError('fay agent needs the cluster\'s NATS server', { hint: 'fay agent --nats nats://fay-agent:secret@10.0.0.5:4222 (or "cluster" in the config file)' });
  }
  const cgroup = flags.cgroup === undefined ? undefined : resolveCgroup(flags.cgroup);
  const heartbeatMs = flags.heartbeat === undefined ? 1000 : parseDurationFlag(flags.heartbeat, '--heartbeat');
  const bus = await NatsBus.connect(settings);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} fay agent ${host}: ${line}\n`);
  bus.onStatus((status) => log(status === 'disconnected' ? 'lost the bus; reconnecting' : status === 'reconnected' ? 'back on the bus' : 'bus closed'));
  const service = new AgentService(bus, new Agent(localRegistry(), host, cgroup), { version, heartbeatMs, log });
  service.start();
  log(`ready (incarnation ${service.incarnation}${cgroup === undefined ? '' : `, scoped to ${cgroup}`})`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, stop);
      log('stopping: removing every probe');
      void service
        .close()
        .then(() => bus.close())
        .finally(resolve);
    };
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, stop);
  });
}
