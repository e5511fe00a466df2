import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { EnvironmentError } from '../../errors.js';
import { MARK_END, MARK_FLUSH, MARK_READY, MARK_ROTATED } from './layout.js';
import { StoppedBeforeAttaching } from '../provider.js';

export interface BpftraceProcessOptions {
  readonly bpftrace: string;
  readonly program: string;
  /** Entries of each kernel map (BPFTRACE_MAP_KEYS_MAX). */
  readonly mapKeysMax: number;
  /** Each line bpftrace prints on standard output, in order. */
  readonly onLine: (line: string) => void;
  /** Called once, when the program's BEGIN probe says every probe is attached, before any later line. */
  readonly onAttached: () => void;
  /** Warnings bpftrace prints after attaching. */
  readonly onWarning: (message: string) => void;
  /**
   * Asks the running program to stop flushing and shipping and to mark the CPU
   * the request ran on (see codegen's stop protocol): from this process when
   * `cpu` is undefined, else from a process pinned to that CPU.
   */
  readonly requestStop: (cpu: number | undefined) => void;
  /**
   * CPUs whose every emitted event must be read before stopping: all of them
   * when the program ships events; none when it only aggregates (its maps are
   * read at exit, so it is enough that it stopped flushing).
   */
  readonly drainCpus: readonly number[];
  /**
   * While bpftrace removes its probes after the stop: how many are left of how many. The kernel
   * takes ~70 ms for each (a query on 360 tracepoints takes 25 s to end), and bpftrace prints its
   * final maps only once they are all out.
   */
  readonly onDetaching?: (left: number, total: number) => void;
}

/** How long to wait for the program to confirm the stop before stopping anyway. */
const DRAIN_TIMEOUT_MS = 3000;

/** How long each stop signal gets before the next, harder one, while bpftrace makes no progress. */
const STOP_STEP_MS = 2000;

/** How often the probes still attached are counted while bpftrace removes them. */
const DETACH_POLL_MS = 250;

/** The longest bpftrace is waited for while it removes its probes: 512 probes take ~40 s. */
const DETACH_MAX_MS = 10 * 60_000;

/** The probes a process holds: its perf events (each tracepoint, uprobe or sampler is one). */
export function perfEventsOf(pid: number): number | undefined {
  try {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]') n++;
      } catch {
        // Closed meanwhile.
      }
    }
    return n;
  } catch {
    return undefined;
  }
}

/** A bigger ring per CPU for shipped events than bpftrace's default 64 pages. */
const PERF_RING_PAGES = '256';

/** stderr lines that are noise on kernels that account BPF memory to cgroups. */
const NOISE = [/couldn't set RLIMIT_MEMLOCK/, /^Attaching \d+ probes?\.\.\./];

/**
 * One bpftrace child process running a generated program. It dies with its
 * parent (parent-death signal), so a killed Fay leaves no probe behind;
 * stop() asks nicely first so that the final maps are printed.
 */
export class BpftraceProcess {
  readonly attached: Promise<void>;
  /** Resolves when bpftrace has exited and all its output was read; rejects if it failed. */
  readonly finished: Promise<void>;
  private readonly child: ChildProcess;
  private stderr = '';
  private exited = false;
  private isAttached = false;
  private stopping: Promise<void> | undefined;
  private readonly drained = new Set<number>();
  /** Inside a flush's output (between its start marker and fay:end). */
  private flushing = false;
  private onStopProgress: (() => void) | undefined;

  constructor(private readonly options: BpftraceProcessOptions) {
    const args = ['-f', 'json', '-B', 'line', '-e', options.program];
    const [command, argv] = existsSync('/usr/bin/setpriv')
      ? ['/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', options.bpftrace, ...args]]
      : [options.bpftrace, args];
    // Its own process group: a Ctrl-C in the terminal reaches Fay, which stops bpftrace in order.
    this.child = spawn(command, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, BPFTRACE_MAP_KEYS_MAX: String(options.mapKeysMax), BPFTRACE_PERF_RB_PAGES: PERF_RING_PAGES },
    });

    let markAttached!: () => void;
    let failAttach!: (error: Error) => void;
    this.attached = new Promise((resolve, reject) => {
      markAttached = resolve;
      failAttach = reject;
    });
    // A failure to attach is reported through `attached`; `finished` then rejects the same way.
    this.attached.catch(() => undefined);

    const stdoutClosed = new Promise<void>((resolve) => {
      const lines = createInterface({ input: this.child.stdout!, crlfDelay: Infinity });
      const debug = process.env.FAY_DEBUG_BPFTRACE === '1';
      lines.on('line', (line) => {
        if (debug) process.stderr.write(`bpftrace[${this.child.pid}]: ${line}\n`);
        if (line.startsWith('{"type": "printf"')) {
          if (!this.isAttached && line.includes(MARK_READY)) {
            this.isAttached = true;
            options.onAttached();
            markAttached();
            return;
          }
          const drained = /"fay:drained (\d+)/.exec(line);
          if (drained) {
            this.drained.add(Number(drained[1]));
            this.onStopProgress?.();
            return;
          }
          if (line.includes(`"${MARK_FLUSH}`) || line.includes(`"${MARK_ROTATED}`)) this.flushing = true;
          else if (line.includes(`"${MARK_END}`)) {
            this.flushing = false;
            this.onStopProgress?.();
          }
        }
        options.onLine(line);
      });
      lines.on('close', resolve);
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (line.trim() === '' || NOISE.some((n) => n.test(line))) continue;
        if (this.stderr.length < 65536) this.stderr += `${line}\n`;
        if (this.isAttached) options.onWarning(line.replace(/^(WARNING|ERROR): /, ''));
      }
    });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('exit', (code, signal) => {
        this.exited = true;
        resolve({ code, signal });
      });
    });

    this.finished = (async () => {
      let status: { code: number | null; signal: NodeJS.Signals | null };
      try {
        status = await exit;
      } catch (error) {
        const failure = new EnvironmentError(`could not start bpftrace: ${(error as Error).message}`);
        failAttach(failure);
        throw failure;
      }
      await stdoutClosed;
      // Stopped while bpftrace was still loading its probes: not a failure of the program.
      if (!this.isAttached && this.stopping !== undefined) return failAttach(new StoppedBeforeAttaching());
      if (!this.isAttached) {
        const failure = startupFailure(this.stderr, options.program);
        failAttach(failure);
        throw failure;
      }
      const stoppedByUs = this.stopping !== undefined;
      if (!stoppedByUs && status.code !== 0) {
        const said = this.stderr.trim();
        const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
        throw new Error(`bpftrace ${how} while the query ran${said ? `: ${said}` : ''}`);
      }
    })();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Stops bpftrace: once attached, first asks the program to stop and waits
   * until it is idle with everything needed read (see the stop protocol); then
   * SIGINT (it prints its final maps), again, then SIGTERM, then SIGKILL.
   * Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.isAttached && !this.exited && !(await this.drain())) {
        this.options.onWarning(`the probe program did not confirm within ${DRAIN_TIMEOUT_MS} ms that all its events were read; the last ones may be missing`);
      }
      // SIGINT: bpftrace removes its probes, then prints its final maps (END) and exits. A harder
      // signal while it is still removing them would cost those maps: it is waited for while the
      // number of probes it holds goes down.
      const total = this.pid === undefined ? undefined : perfEventsOf(this.pid);
      if (!this.exited) this.child.kill('SIGINT');
      if (!(await this.detachesWithin(total))) {
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
          if (this.exited) break;
          this.child.kill(signal);
          if (await this.exitsWithin(STOP_STEP_MS)) break;
        }
      }
      await this.finished.catch(() => undefined);
    })();
    return this.stopping;
  }

  /**
   * Waits for bpftrace to exit after the SIGINT, for as long as it keeps removing probes (at most
   * DETACH_MAX_MS), saying how far it got; false if it stalled for STOP_STEP_MS.
   */
  private async detachesWithin(total: number | undefined): Promise<boolean> {
    const startedMs = Date.now();
    let lastProgressMs = startedMs;
    let lastLeft = total;
    while (!this.exited) {
      if (await this.exitsWithin(DETACH_POLL_MS)) return true;
      const left = this.pid === undefined ? undefined : perfEventsOf(this.pid);
      const now = Date.now();
      if (left !== undefined && lastLeft !== undefined && left < lastLeft) {
        lastProgressMs = now;
        if (total !== undefined) this.options.onDetaching?.(left, total);
      }
      lastLeft = left ?? lastLeft;
      if (now - lastProgressMs > STOP_STEP_MS || now - startedMs > DETACH_MAX_MS) return this.exited;
    }
    return true;
  }

  private drain(): Promise<boolean> {
    const { drainCpus } = this.options;
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.onStopProgress = undefined;
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), DRAIN_TIMEOUT_MS);
      this.onStopProgress = () => {
        const seen = this.drained.size > 0 && drainCpus.every((c) => this.drained.has(c));
        if (seen && !this.flushing) finish(true);
      };
      this.child.once('exit', () => finish(true));
      // From here first: the stop flag is set before any helper process starts, so theirs are not shipped.
      this.options.requestStop(undefined);
      for (const cpu of drainCpus) this.options.requestStop(cpu);
    });
  }

  private exitsWithin(ms: number): Promise<boolean> {
    if (this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.exited), ms);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/** Turns bpftrace's complaint about a program it could not start into an error for the user, or a bug report. */
function startupFailure(stderr: string, program: string): Error {
  const text = stderr.trim();
  const firstError = /ERROR: (.*)/.exec(text)?.[1] ?? text.split('\n')[0] ?? 'no output';
  if (/only supports running as the root user|Permission denied|Operation not permitted/i.test(text)) {
    return new EnvironmentError(`the kernel refused to load the probes: ${firstError}`, {
      hint: 'run Fay as root (loading eBPF programs needs CAP_BPF and CAP_PERFMON)',
    });
  }
  if (/Error attaching probe|Failed to attach|Error loading program|verifier|Could not resolve symbol|not traceable|Unknown error/i.test(text)) {
    return new EnvironmentError(`the kernel refused a probe: ${firstError}`, {
      hint: 'fay explain shows the generated program; fay probes lists what can be probed here',
    });
  }
  // Anything else means Fay generated a program bpftrace does not accept: a bug in Fay.
  return new Error(`bpftrace rejected the generated program:\n${text}\n--- program ---\n${program}`);
}
