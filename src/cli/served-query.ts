import type { InProcessBus } from '../bus/in-process.js';
import type { ServedQuery } from '../bus/local-socket.js';
import { ClusterClient } from '../cluster/cluster-client.js';
import { FayError } from '../errors.js';
import { follow, runOptions } from '../frontend/query-run.js';
import { NdjsonSink } from '../output/ndjson.js';
import { printable } from '../output/printable.js';
import type { ProbeRegistry } from '../probes/registry.js';
import { SERVED_FLAGS } from './thin-query.js';

/**
 * This machine's agent running the queries commands hand it (`fay query --json …` while `fay agent`
 * runs; cli/thin-query.ts is the command's side): the same run and the same NDJSON as the command
 * would make itself, with the command's Ctrl-C and its going away stopping the query. What it
 * saves is the command's start: it loads no planner, no probe backend, no bus code of its own.
 */
export function queryServer(bus: InProcessBus, registry: ProbeRegistry, version: string, log: (line: string) => void): (query: ServedQuery) => void {
  // One client for every served query, made now: it knows the agent by the time a query comes.
  const client = new ClusterClient(bus, registry);
  return (query) => {
    const { request } = query;
    if (request.version !== version) return query.refuse(`this agent is Fay ${version}, the command Fay ${request.version}`);
    const unserved = Object.keys(request.flags).filter((name) => !SERVED_FLAGS.has(name));
    if (unserved.length > 0 || request.flags.json !== true) return query.refuse(`a query with ${unserved.length > 0 ? unserved.join(', ') : 'no --json'} is run by the command`);
    // Every flag but --json has a value.
    if (Object.entries(request.flags).some(([name, value]) => name !== 'json' && typeof value !== 'string')) return query.refuse('a flag without its value');
    void serve(client, query, log);
  };
}

async function serve(client: ClusterClient, query: ServedQuery, log: (line: string) => void): Promise<void> {
  const { text, flags } = query.request;
  log(`runs a query for a command on this machine: ${printable(text)}`);
  try {
    // This machine's agent is the only one on its bus.
    const run = await client.start(text, { ...runOptions(flags), expectAgents: 1 });
    const code = await follow(run, new NdjsonSink(query.out, query.err), {
      stopWhen: (r) => {
        const stop = () => void r.stop();
        const unstop = query.onStop(stop);
        const ungone = query.onGone(stop);
        return () => {
          unstop();
          ungone();
        };
      },
      output: { closed: () => query.gone, onClosed: (listener) => query.onGone(listener) },
    });
    if (query.gone) log(`stopped the query of a command that went away: ${printable(text)}`);
    query.exit(code);
  } catch (error) {
    if (error instanceof FayError) {
      query.err.write(`fay: ${printable(error.describe())}\n`);
      query.exit(error.exitCode);
      return;
    }
    log(`internal error serving a query: ${(error as Error)?.stack ?? String(error)}`);
    query.err.write(`fay: internal error (a bug in Fay; please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
    query.exit(1);
  }
}
