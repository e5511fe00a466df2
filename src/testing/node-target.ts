import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A traced Node.js process started by a test: commands on stdin, answers on stdout. */
export interface NodeTarget {
  readonly pid: number;
  readonly child: ChildProcess;
  /** The HTTP port of app.cjs. */
  readonly port: number | undefined;
  /** Everything it printed on stderr (the inspector announces itself there). */
  readonly stderr: () => string;
  /** Runs a command n times in the target and resolves with its result. */
  run(command: string, n: number, arg?: string | number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The packaged target laid out as an installed application: its app.cjs and serve-commands.cjs in a
 * temporary directory, with node-targets/packaged/tinyrouter as its node_modules/tinyrouter.
 */
function packagedApp(): string {
  const targets = fileURLToPath(new URL('./node-targets/', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'fay-packaged-'));
  cpSync(join(targets, 'packaged/app.cjs'), join(dir, 'app.cjs'));
  cpSync(join(targets, 'serve-commands.cjs'), join(dir, 'serve-commands.cjs'));
  cpSync(join(targets, 'packaged/tinyrouter'), join(dir, 'node_modules/tinyrouter'), { recursive: true });
  return join(dir, 'app.cjs');
}

/** Starts one of the test targets in src/testing/node-targets and waits until it is ready. */
export async function startNodeTarget(
  script: 'app.cjs' | 'app.mjs' | 'bench-target.cjs' | 'minified.cjs' | 'packaged/app.cjs' | 'frameworks.cjs',
  options: { title?: string; trapSigusr1?: boolean; cpu?: number; wrapper?: readonly string[] } = {},
): Promise<NodeTarget> {
  const path = script === 'packaged/app.cjs' ? packagedApp() : fileURLToPath(new URL(`./node-targets/${script}`, import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
  if (options.title) env.TITLE = options.title;
  if (options.trapSigusr1) env.TRAP_SIGUSR1 = '1';
  // Pinned to one CPU on request, or under a wrapper (e.g. nsenter); each execs node: the pid stays the target's.
  const pinned = options.cpu === undefined ? [] : ['taskset', '-c', String(options.cpu)];
  const [command, ...args] = [...(options.wrapper ?? []), ...pinned, process.execPath, path];
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  // The packaged target's layout goes with it.
  if (script === 'packaged/app.cjs') child.on('exit', () => rmSync(dirname(path), { recursive: true, force: true }));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const waiting: ((line: string) => void)[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const first = await next();
  const port = /^listening (\d+)$/.exec(first)?.[1];
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    pid: child.pid!,
    child,
    port: port === undefined ? undefined : Number(port),
    stderr: () => stderr,
    async run(command, n, arg) {
      const answer = next();
      child.stdin.write(`${command} ${n}${arg === undefined ? '' : ` ${arg}`}\n`);
      const line = await answer;
      const match = /^done (\S+) (.*)$/.exec(line);
      if (!match || match[1] !== command) throw new Error(`unexpected answer from the target: ${line}`);
      return match[2]!;
    },
    async stop() {
      child.kill();
      await exited;
    },
  };
}
