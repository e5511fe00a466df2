import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The heavy test service (node-targets/heavy.cjs) with its heartbeat watched from outside (gap-monitor.cjs). */
export interface HeavyTarget {
  readonly pid: number;
  /** The folder of its generated scripts: big.cjs, small.cjs. */
  readonly dir: string;
  /** Runs a command of heavy.cjs and resolves with its result. */
  run(command: 'big' | 'small' | 'grow' | 'source', n: number): Promise<string>;
  /** The longest stop of its JavaScript (ms) while `during` ran: the longest gap of its heartbeat, measured by another process. */
  longestStop(during: () => Promise<unknown>): Promise<{ longest: number; at: number }>;
  stop(): Promise<void>;
}

export interface HeavyOptions {
  readonly bigMb: number;
  readonly functions: number;
  readonly heapMb: number;
  readonly warm: number;
}

const target = (name: string) => fileURLToPath(new URL(`./node-targets/${name}`, import.meta.url));

/** Starts the heavy service and its heartbeat's monitor, and resolves once both are ready. */
export async function startHeavyTarget(options: HeavyOptions): Promise<HeavyTarget> {
  const monitor: ChildProcess = fork(target('gap-monitor.cjs'), [], { stdio: ['pipe', 'inherit', 'inherit', 'ipc'] });
  const env = {
    ...process.env,
    NODE_OPTIONS: '',
    BIG_MB: String(options.bigMb),
    BIG_FUNCTIONS: String(options.functions),
    HEAP_MB: String(options.heapMb),
    WARM: String(options.warm),
  };
  // Its fd 3 is the monitor's stdin: the heartbeat goes straight there. HEAVY_NODE_FLAGS (e.g.
  // --trace-gc), and TRACE_GC=1 (heavy.cjs), are for looking into a stop by hand.
  const child = spawn(process.execPath, [...(process.env.HEAVY_NODE_FLAGS ?? '').split(' ').filter(Boolean), target('heavy.cjs')], { stdio: ['pipe', 'pipe', 'inherit', monitor.stdin!], env });
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const ready = /^ready (\S+)/.exec(await next());
  if (!ready) throw new Error('the heavy target did not start');
  const ask = <T>(message: object, key: string) =>
    new Promise<T>((resolve) => {
      const onMessage = (answer: Record<string, unknown>) => {
        if (!(key in answer)) return;
        monitor.off('message', onMessage);
        resolve(answer as T);
      };
      monitor.on('message', onMessage);
      monitor.send(message);
    });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    pid: child.pid!,
    dir: ready[1]!,
    async run(command, n) {
      const answer = next();
      child.stdin!.write(`${command} ${n}\n`);
      const line = await answer;
      const match = /^done (\S+) (.*)$/.exec(line);
      if (!match || match[1] !== command) throw new Error(`unexpected answer from the heavy target: ${line}`);
      return match[2]!;
    },
    async longestStop(during) {
      await ask({ mark: true }, 'marked');
      await during();
      return ask<{ longest: number; at: number }>({ since: true }, 'longest');
    },
    async stop() {
      child.kill();
      await exited;
      monitor.kill();
    },
  };
}
