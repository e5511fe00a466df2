import { hostname } from 'node:os';
import { Agent } from '../agent/agent.js';
import { AgentService } from '../agent/service.js';
import type { Bus } from '../bus/bus.js';
import { InProcessBus } from '../bus/in-process.js';
import { LocalBusServer, localAgentSocket } from '../bus/local-socket.js';
import { NatsBus } from '../bus/nats.js';
import { localRegistry } from '../probes/default-registry.js';
import { queryServer } from './served-query.js';
import { UsageError } from '../errors.js';
import { resolveCgroup } from '../probes/cgroup.js';
import { clusterSettings, type ClusterFlags } from '../frontend/cluster-config.js';
import { parseDurationFlag, parseSizeFlag } from '../frontend/flags.js';

export interface AgentFlags extends ClusterFlags {
  nats?: string;
  name?: string;
  cgroup?: string;
  heartbeat?: string;
  storeMax?: string;
  prometheus?: string;
  metricPrefix?: string;
}

/**
 * `fay agent`: this machine's agent, in the foreground, until SIGTERM or Ctrl-C. On the cluster's
 * NATS bus with --nats (or "cluster" in the config file); else on this machine alone, for its
 * standing queries and its trace store, reached through a Unix socket (bus/local-socket.ts). Either
 * way it re-installs the standing queries its store kept.
 */
export async function runAgent(flags: AgentFlags, version: string): Promise<void> {
  const host = flags.name ?? hostname();
  const settings = clusterSettings({ ...flags, cluster: flags.nats ?? flags.cluster }, `fay-agent ${host}`);
  const cgroup = flags.cgroup === undefined ? undefined : resolveCgroup(flags.cgroup);
  const heartbeatMs = flags.heartbeat === undefined ? 1000 : parseDurationFlag(flags.heartbeat, '--heartbeat');
  const storeMaxBytes = flags.storeMax === undefined ? undefined : parseSizeFlag(flags.storeMax, '--store-max');
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} fay agent ${host}: ${line}\n`);
  const registry = localRegistry();
  let bus: Bus;
  let local: LocalBusServer | undefined;
  if (settings !== undefined) {
    const nats = await NatsBus.connect(settings);
    nats.onStatus((status) => log(status === 'disconnected' ? 'lost the bus; reconnecting' : status === 'reconnected' ? 'back on the bus' : 'bus closed'));
    bus = nats;
  } else {
    const inProcess = new InProcessBus({ served: true });
    try {
      // The queries commands on this machine hand over (fay query --json) run here too, when the
      // agent sees what the command would: all of this machine, under its own name.
      const serves = cgroup === undefined && flags.name === undefined;
      local = await LocalBusServer.listen(inProcess, localAgentSocket(), serves ? queryServer(inProcess, registry, version, log) : undefined);
    } catch (error) {
      throw new UsageError(`cannot run this machine's agent: ${(error as Error).message}`, { hint: 'fay ps lists what it runs; fay agent --nats nats://… joins a cluster instead' });
    }
    bus = inProcess;
  }
  if (flags.metricPrefix !== undefined && flags.prometheus === undefined) throw new UsageError('--metric-prefix names the metrics --prometheus serves: give --prometheus [host]:port too');
  // The standing queries' windows served for scraping: the port is taken before the agent starts.
  const metrics = flags.prometheus === undefined ? undefined : await import('../output/prometheus.js').then(async (m) => ({ m, endpoint: await m.MetricsEndpoint.start(m.listenAddress(flags.prometheus!)) }));
  const standingWindows = metrics && metrics.m.standingMetrics(metrics.endpoint, flags.metricPrefix, host, log);
  if (metrics) log(`Prometheus can scrape the standing queries' windows at ${metrics.endpoint.url}`);
  const service = new AgentService(bus, new Agent(registry, host, cgroup), { version, heartbeatMs, log, resumeStanding: true, ...(storeMaxBytes !== undefined && { storeMaxBytes }), ...(standingWindows && { standingWindows }) });
  service.start();
  log(`ready (incarnation ${service.incarnation}${cgroup === undefined ? '' : `, scoped to ${cgroup}`}${local ? `, this machine alone: ${local.path}` : ''})`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, stop);
      log('stopping: removing every probe');
      void service
        .close()
        .then(() => local?.close())
        .then(() => bus.close())
        .then(() => metrics?.endpoint.close())
        .finally(resolve);
    };
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, stop);
  });
}
