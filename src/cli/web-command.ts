import type { ClusterClient } from '../cluster/cluster-client.js';
import { UsageError } from '../errors.js';
import { clusterSettings } from '../frontend/cluster-config.js';
import { clusterClient, runOptions, type QueryFlags } from '../frontend/query-run.js';
import { localAgentClient } from '../frontend/local-agent.js';
import { localCluster } from '../frontend/local-cluster.js';
import { Completer } from '../shell/completion.js';
import { clusterView } from '../web/cluster-view.js';
import { WebServer } from '../web/server.js';
import type { WebRunner } from '../web/session.js';

/** `fay web`: the page on this machine's loopback (or --listen), its queries run here or on --cluster. */

export interface WebFlags extends QueryFlags {
  port?: string;
  listen?: string;
}

/** Uses a client of this machine's agent and lets it go; undefined when no agent runs here. */
async function withLocalAgent<T>(use: (client: ClusterClient) => Promise<T>): Promise<T | undefined> {
  const local = await localAgentClient();
  if (!local) return undefined;
  try {
    return await use(local);
  } finally {
    await local.close();
  }
}

export async function runWeb(flags: WebFlags, version: string): Promise<void> {
  const port = Number(flags.port ?? 7070);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port ${flags.port} is not a port`, { hint: 'a number from 0 (any free port) to 65535' });
  const listen = flags.listen ?? '127.0.0.1';
  const client = await clusterClient(flags);
  const embedded = localCluster();
  const completer = new Completer(embedded.agent.registry, () => []);
  // The limits and Node.js options given to fay web hold for every query of its pages.
  const given = runOptions(flags);
  const runner: WebRunner = {
    start: async (query, options) => {
      const merged = { ...given, ...options };
      if (client) return client.start(query, merged);
      // A history query on this machine asks its agent, which holds the store, when one runs (as fay query does).
      const local = /\bstored:/.test(query) ? await localAgentClient() : undefined;
      if (!local) return embedded.start(query, merged);
      try {
        const run = await local.start(query, merged);
        void run.ended.then(
          () => local.close(),
          () => local.close(),
        );
        return run;
      } catch (error) {
        await local.close();
        throw error;
      }
    },
    explain: (query) => embedded.explain(query),
    complete: async (text) => {
      const lines = text.split('\n');
      const [candidates, replaced] = await completer.complete(lines.slice(0, -1).join('\n'), lines.at(-1) ?? '');
      return { candidates: candidates.slice(0, 200), replace: replaced.length };
    },
    // The cluster's agents, or this machine's agent (standing queries) when one runs.
    cluster: async () =>
      (client ? clusterView(client) : withLocalAgent(clusterView)).then(
        (view) => view ?? { note: "no agent runs on this machine: the page's queries run inside fay web itself (fay query --persist starts one)", agents: [], queries: [] },
      ),
    stopQuery: async (queryId) => {
      if (client) client.stop(queryId);
      else await withLocalAgent((local) => Promise.resolve(local.stop(queryId)));
    },
  };
  const settings = clusterSettings(flags, 'fay web');
  // The cluster as the page shows it: its servers, without credentials.
  const cluster = settings?.url
    .split(',')
    .map((u) => u.trim().replace(/\/\/[^@/]*@/, '//'))
    .join(', ');
  const server = await WebServer.start({ port, listen, runner, version, cluster });
  // The URL alone on standard output (for a script to read), what it is on standard error.
  process.stderr.write('fay web: open this URL (its token lets you in; keep it to yourself):\n');
  process.stdout.write(`${server.url}\n`);
  if (listen !== '127.0.0.1' && listen !== '::1' && listen !== 'localhost') process.stderr.write(`fay web: listening on ${listen}: anyone who can reach it needs the token; keep the URL to yourself\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await client?.close();
}
