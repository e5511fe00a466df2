import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LocalSocketBus, localAgentSocket } from '../bus/local-socket.js';
import { ClusterClient } from '../cluster/cluster-client.js';
import { EnvironmentError } from '../errors.js';
import { localRegistry } from '../probes/default-registry.js';

/**
 * This machine's own agent (`fay agent` without --nats), which runs its standing queries and holds
 * its trace store: a client of it over its Unix socket, starting it in the background when asked.
 */

/** Where a background agent started by a command writes its log. */
export function localAgentLog(): string {
  return join(dirname(localAgentSocket()), 'agent.log');
}

/** How long a freshly started agent has to open its socket. */
const START_TIMEOUT_MS = 15_000;

/** A client of this machine's agent; undefined when none runs (or, with `start`, one started in the background). */
export async function localAgentClient(options: { start?: boolean; say?: (line: string) => void } = {}): Promise<ClusterClient | undefined> {
  const bus = await LocalSocketBus.connect();
  if (bus !== undefined) return new ClusterClient(bus, localRegistry());
  if (!options.start) return undefined;
  const log = localAgentLog();
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  // The same Fay as this command (built or from the sources), detached: it outlives the command.
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'agent'], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let wait = 20; Date.now() < deadline; wait = Math.min(wait * 2, 200)) {
    const started = await LocalSocketBus.connect();
    if (started !== undefined) {
      options.say?.(`started this machine's agent in the background (pid ${child.pid}; its log: ${log}); it runs the standing queries until stopped (kill ${child.pid}), and resumes them when started again with fay agent`);
      return new ClusterClient(started, localRegistry());
    }
    if (exited !== undefined) break;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  let tail = '';
  try {
    tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    // No log to show.
  }
  throw new EnvironmentError(`this machine's agent did not start${exited !== undefined ? ` (it exited with ${exited})` : ` within ${START_TIMEOUT_MS / 1000} s`}${tail ? `:\n${tail}` : ''}`, {
    hint: `run fay agent in a terminal to see why (its log: ${log})`,
  });
}
