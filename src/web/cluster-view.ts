import type { ClusterClient } from '../cluster/cluster-client.js';
import { gatherQueries } from '../cluster/running-queries.js';
import type { ClusterView } from './protocol.js';

/** The cluster view from a client of the agents: every agent that answers, and what runs and stands on them. */
export async function clusterView(client: ClusterClient): Promise<ClusterView> {
  const answers = await client.list(1000);
  const now = Date.now();
  const running = new Map(answers.map((a) => [a.host, a.queries.length]));
  const agents = client
    .liveAgents()
    .map((a) => ({ host: a.host, version: a.version, kernel: a.kernel, heardMsAgo: now - (client.lastHeard(a.host) ?? now), queries: running.get(a.host) ?? 0 }))
    .sort((a, b) => a.host.localeCompare(b.host));
  const queries = [...gatherQueries(answers)].map(([id, q]) => ({
    id,
    state: q.standing ? ('standing' as const) : ('running' as const),
    hosts: q.hosts.sort(),
    text: q.text,
    client: q.client,
    startedNs: q.startedNs,
    ...(q.standing?.log !== undefined && { log: q.standing.log }),
    ...(q.standing && { rows: q.standing.rows, bytes: q.standing.bytes }),
  }));
  return { agents, queries };
}
