import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { localAgentSocket } from '../bus/local-socket.js';
import { EXIT_INCOMPLETE } from '../errors.js';

/**
 * `fay query --json …` handed to this machine's agent when one runs (`fay agent`): the command
 * sends the query over the agent's socket and prints what comes back, and loads nothing else (no
 * planner, no probe backend, no bus code: those are most of a command's start). The agent runs it
 * as the command would (cli/served-query.ts), so the answer is the same, line for line.
 *
 * Only what the agent can run as the command would is handed over: --json and the flags below,
 * no config file (which may name a cluster), no path relative to the command's directory. Anything
 * else, no agent, or an agent that declines (another Fay version), and the command runs the query
 * itself, as before. FAY_NO_AGENT=1 makes it always do so.
 *
 * Imports only Node.js's own modules, the socket's path and an exit code: it is loaded on every start.
 */

/** The flags a command may hand over, by their names as the command's flags have them, and whether each takes a value. */
const HANDED: Readonly<Record<string, boolean>> = {
  json: false,
  duration: true,
  every: true,
  backend: true,
  maxGroups: true,
  maxEvents: true,
  maxMemory: true,
  maxCalls: true,
  maxPause: true,
  keepEdits: true,
};

/** The short spellings; the long one of each flag is --kebab-case of its name. */
const SHORT: Readonly<Record<string, string>> = { '-d': 'duration', '-e': 'every' };

/** How each is spelled on the command line. */
const SPELLINGS = new Map<string, { readonly name: string; readonly value: boolean }>([
  ...Object.entries(HANDED).map(([name, value]) => [`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, { name, value }] as const),
  ...Object.entries(SHORT).map(([short, name]) => [short, { name, value: HANDED[name]! }] as const),
]);

/** The flags (by name) the agent runs a command's query with. */
export const SERVED_FLAGS: ReadonlySet<string> = new Set(Object.keys(HANDED));

export interface ThinRequest {
  readonly text: string;
  readonly flags: Readonly<Record<string, string | boolean>>;
}

/** A query in `./x` or `../x`: a path the agent, in another directory, would read otherwise. */
const RELATIVE_PATH = /(^|[^\w.~-])\.\.?\//;

/** The config files the command would read (frontend/cluster-config.ts), any of which may send it to a cluster. */
function configFiles(env: NodeJS.ProcessEnv): string[] {
  return env.FAY_CONFIG ? [env.FAY_CONFIG] : [join(homedir(), '.config/fay/config.json'), '/etc/fay/config.json'];
}

/** The query and flags of a command line the agent may run; undefined when the command runs it itself. */
export function thinRequest(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ThinRequest | undefined {
  if (argv[0] !== 'query' || env.FAY_NO_AGENT === '1') return undefined;
  let text: string | undefined;
  const flags: Record<string, string | boolean> = {};
  const positional = (arg: string): boolean => {
    if (text !== undefined) return false;
    text = arg;
    return true;
  };
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      if (!argv.slice(i + 1).every(positional)) return undefined;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (!positional(arg)) return undefined;
      continue;
    }
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const spec = SPELLINGS.get(equals > 0 ? arg.slice(0, equals) : arg);
    // A flag it does not know, one given twice, or one spelled unlike the above: the command decides.
    if (spec === undefined || spec.name in flags || (!spec.value && equals > 0)) return undefined;
    if (!spec.value) {
      flags[spec.name] = true;
      continue;
    }
    const value = equals > 0 ? arg.slice(equals + 1) : argv[++i];
    if (value === undefined) return undefined;
    flags[spec.name] = value;
  }
  if (text === undefined || flags.json !== true || RELATIVE_PATH.test(text)) return undefined;
  if (configFiles(env).some((file) => existsSync(file))) return undefined;
  return { text, flags };
}

/** A frame the agent sends. */
interface Reply {
  op?: unknown;
  data?: unknown;
  code?: unknown;
}

/**
 * Hands the query to this machine's agent and prints what it sends back, Ctrl-C asking it to stop
 * (a second one leaving at once). Resolves with the command's exit code; undefined when no agent
 * took the query (none runs, or it declined), with nothing printed.
 */
export function runByAgent(request: ThinRequest, version: string, path: string = localAgentSocket()): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    let printed = false;
    let code: number | undefined;
    let signals = 0;
    const onSignal = () => {
      if (++signals > 1) process.exit(130);
      if (!socket.destroyed) socket.write(`${JSON.stringify({ op: 'stop' })}\n`);
    };
    const signalNames = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    let finished = false;
    const finish = (result: number | undefined) => {
      if (finished) return;
      finished = true;
      for (const s of signalNames) process.off(s, onSignal);
      socket.destroy();
      resolve(result);
    };
    // The reader went away (| head): the agent stops the query when the connection goes. Kept to
    // the end, for the writes still pending then.
    const readerGone = () => finish(0);
    const take = (line: string) => {
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        return;
      }
      if (reply.op === 'out' && typeof reply.data === 'string') {
        printed = true;
        // A slow reader holds the agent back, not this process's memory.
        if (!process.stdout.write(reply.data)) {
          socket.pause();
          process.stdout.once('drain', () => socket.resume());
        }
      } else if (reply.op === 'err' && typeof reply.data === 'string') {
        printed = true;
        process.stderr.write(reply.data);
      } else if (reply.op === 'exit' && typeof reply.code === 'number') {
        code = reply.code;
      } else if (reply.op === 'refused' && !printed) {
        finish(undefined);
      }
    };
    // No agent (no socket, or none listening), or the connection cut: 'close' says what follows.
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      for (const s of signalNames) process.on(s, onSignal);
      process.stdout.on('error', readerGone);
      socket.write(`${JSON.stringify({ op: 'query', version, text: request.text, flags: request.flags })}\n`);
      createInterface({ input: socket, crlfDelay: Infinity }).on('line', take).on('error', () => undefined);
    });
    socket.once('close', () => {
      if (finished || code !== undefined || !printed) return finish(code);
      process.stderr.write("fay: this machine's agent went away before the query ended; its answer is incomplete\n");
      finish(EXIT_INCOMPLETE);
    });
  });
}
