import { Agent } from '../agent/agent.js';
import type { AgentServiceOptions } from '../agent/service.js';
import { EmbeddedCluster } from '../cluster/embedded.js';
import { localRegistry } from '../probes/default-registry.js';

/** This machine as a cluster of one: its agent with the default providers, on an in-process bus (no server to start). */
export function localCluster(host?: string, options: Pick<AgentServiceOptions, 'store'> = {}): EmbeddedCluster {
  return new EmbeddedCluster(new Agent(localRegistry(), host), options);
}
