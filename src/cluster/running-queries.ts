import type { RunningQueries } from '../bus/protocol.js';

/** A query as fay ps shows it: gathered from every agent's answer, with the hosts that run it. */
export interface ListedQuery {
  text: string;
  client: string;
  startedNs: number;
  hosts: string[];
  standing?: { log?: string; rows: number; bytes: number; untilNs?: number };
  state: string;
}

/** The agents' answers to `list`, one entry per query id: its hosts, and a standing one's log and size summed over them. */
export function gatherQueries(answers: readonly RunningQueries[]): Map<string, ListedQuery> {
  const byId = new Map<string, ListedQuery>();
  for (const a of answers) {
    for (const q of a.queries) {
      const entry = byId.get(q.id) ?? { text: q.text, client: q.client, startedNs: q.startedNs, hosts: [], state: q.standing ? 'standing' : 'running' };
      entry.hosts.push(a.host);
      if (q.standing) {
        const s = (entry.standing ??= { ...(q.standing.log !== undefined && { log: q.standing.log }), rows: 0, bytes: 0, ...(q.standing.untilNs !== undefined && { untilNs: q.standing.untilNs }) });
        s.rows += q.standing.rows;
        s.bytes += q.standing.bytes;
      }
      byId.set(q.id, entry);
    }
  }
  return byId;
}
