import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NatsBus } from '../bus/nats.js';
import { ClusterClient } from '../cluster/cluster-client.js';
import { localRegistry } from '../probes/default-registry.js';
import { fayCommand } from './fay-command.js';
import { NatsServer } from './nats-server.js';
import { cgroup2Mount } from '../probes/cgroup.js';
import { waitingWorkload, type WorkloadResult } from './workload.js';

/** A cgroup (v2) of its own for a simulated host: its agent sees only the processes put in it. */
export class TestCgroup {
  readonly path: string;

  constructor(name: string) {
    const mount = cgroup2Mount();
    if (mount === undefined) throw new Error('no cgroup v2 hierarchy is mounted');
    this.path = join(mount, `fay-test-${name}-${randomBytes(3).toString('hex')}`);
    mkdirSync(this.path);
  }

  /** Runs the test workload inside this cgroup, to completion. */
  async run(comm: string, ...args: (string | number)[]): Promise<WorkloadResult> {
    const workload = waitingWorkload(comm, ...args);
    writeFileSync(join(this.path, 'cgroup.procs'), String(workload.pid));
    return workload.go();
  }

  remove(): void {
    try {
      rmdirSync(this.path);
    } catch {
      // Still has processes (a failed test): left for the next boot.
    }
  }
}

/** A `fay agent` process, started from the sources, that dies with the test. */
export class TestAgent {
  private lines: string[] = [];
  private readonly waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of [...this.waiters]) {
        if (w.pattern.test(line)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /** Starts an agent (inside a network namespace, with its `exec` as prefix) and resolves once it is on the bus. */
  static start(
    name: string,
    url: string,
    options: { cgroup?: string; heartbeat?: string; prefix?: readonly string[]; args?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
  ): Promise<TestAgent> {
    const args = ['agent', '--nats', url, '--name', name, ...(options.cgroup ? ['--cgroup', options.cgroup] : []), '--heartbeat', options.heartbeat ?? '200ms', ...(options.args ?? [])];
    return TestAgent.launch(name, args, options);
  }

  /** Starts `fay aggregator` (a merge tree's) and resolves once it has taken its shards. */
  static startAggregator(name: string, url: string, options: { heartbeat?: string; level?: number } = {}): Promise<TestAgent> {
    return TestAgent.launch(name, ['aggregator', '--nats', url, '--name', name, '--heartbeat', options.heartbeat ?? '200ms', '--level', String(options.level ?? 1)], {});
  }

  /** A `fay` process that logs "ready (incarnation …" once it is on the bus, ended with the test's process. */
  private static async launch(name: string, args: readonly string[], options: { prefix?: readonly string[]; env?: NodeJS.ProcessEnv }): Promise<TestAgent> {
    const command = [...(options.prefix ?? []), 'setpriv', '--pdeathsig', 'SIGTERM', ...fayCommand(), ...args];
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], ...(options.env && { env: options.env }) });
    const agent = new TestAgent(name, child);
    await Promise.race([
      agent.logged(/ready \(incarnation/),
      agent.exited.then((code) => Promise.reject(new Error(`${args[0]} ${name} exited with ${code}:\n${agent.log}`))),
    ]);
    return agent;
  }

  get log(): string {
    return this.lines.join('\n');
  }

  /** How many lines it has logged so far: a mark to pass to logged(). */
  mark(): number {
    return this.lines.length;
  }

  /** What it has logged from line `from` on. */
  logSince(from: number): string {
    return this.lines.slice(from).join('\n');
  }

  /** Resolves with the first line of the agent's log from line `from` on (already logged, or to come) matching a pattern. */
  logged(pattern: RegExp, from = 0, timeoutMs = 60_000): Promise<string> {
    const seen = this.lines.slice(from).find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      // Not a synchronisation: a bound, so that a line that never comes fails with the log to read.
      const timer = setTimeout(() => reject(new Error(`${this.name} did not log ${pattern} within ${timeoutMs / 1000} s; its log:\n${this.lines.slice(-80).join('\n')}`)), timeoutMs);
      this.waiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** Stops it as an operator would (SIGTERM: it removes its probes first). */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  /** Kills it outright, as a crash would. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * The set-up of a cluster suite: a real nats-server on loopback, a cgroup and a `fay agent` per
 * host (each sees only its own cgroup's processes), and a client on the bus. `cgroups` and
 * `agents` are filled by start(); stop() takes it all down.
 */
export class TestCluster {
  readonly cgroups = new Map<string, TestCgroup>();
  readonly agents = new Map<string, TestAgent>();
  nats!: NatsServer;
  client!: ClusterClient;

  constructor(
    private readonly hosts: readonly string[],
    private readonly options: { readonly hostUsers?: readonly string[]; readonly env?: NodeJS.ProcessEnv } = {},
  ) {}

  async start(): Promise<this> {
    this.nats = await NatsServer.start('127.0.0.1', this.options.hostUsers ? { hostUsers: this.options.hostUsers } : {});
    for (const host of this.hosts) this.cgroups.set(host, new TestCgroup(host));
    await Promise.all(this.hosts.map((host) => this.startAgent(host)));
    this.client = new ClusterClient(await NatsBus.connect({ url: this.nats.url('client'), name: 'test client' }), localRegistry());
    return this;
  }

  /** Starts a host's agent in its cgroup (again, after it was stopped or killed): it replaces the one in `agents`. */
  async startAgent(host: string): Promise<TestAgent> {
    const agent = await TestAgent.start(host, this.nats.url('agent'), { cgroup: this.cgroups.get(host)!.path, ...(this.options.env && { env: this.options.env }) });
    this.agents.set(host, agent);
    return agent;
  }

  async stop(): Promise<void> {
    await this.client?.close();
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    await this.nats?.stop();
    for (const c of this.cgroups.values()) c.remove();
  }
}
