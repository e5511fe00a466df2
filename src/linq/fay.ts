import { NatsBus } from '../bus/nats.js';
import { ClusterClient } from '../cluster/cluster-client.js';
import type { EmbeddedCluster } from '../cluster/embedded.js';
import type { RunOptions } from '../cluster/query-handle.js';
import { localAgentClient } from '../frontend/local-agent.js';
import { localCluster } from '../frontend/local-cluster.js';
import { localRegistry } from '../probes/default-registry.js';
import type { ArgsOfSyscall, ArgsOfTracepoint, DcEvent, JsEvent, JsProfileEvent, ProfileEvent, StoredEvent, SyscallEvent, TracepointEvent, UprobeEvent } from './events.js';
import { Query, type QueryRunner } from './query.js';

export interface ConnectOptions {
  /** A cluster's NATS server (nats://user:password@host:port); without it, this machine alone. */
  readonly cluster?: string;
  /** NATS credentials: a file with user:password, an nkey seed, or a .creds file. */
  readonly creds?: string;
  /** A CA bundle for TLS to NATS. */
  readonly tlsCa?: string;
  /** How many agents to wait for before a query starts (default: whoever answers in the discovery time). */
  readonly expectAgents?: number;
}

/**
 * A connection to Fay: this machine (embedded: the agent runs in this
 * process, no server needed) or a cluster. Sources start typed queries.
 */
export class Fay {
  private constructor(
    private readonly runner: QueryRunner,
    private readonly closer: () => Promise<void>,
  ) {}

  static async connect(options: ConnectOptions = {}): Promise<Fay> {
    if (options.cluster === undefined) {
      const embedded = localCluster();
      return new Fay({ run: (text, o) => embedded.run(text, o), start: startHistory(embedded), explain: (text) => embedded.explain(text) }, () => Promise.resolve());
    }
    const bus = await NatsBus.connect({
      url: options.cluster,
      name: 'fay library',
      ...(options.creds !== undefined && { credsFile: options.creds }),
      ...(options.tlsCa !== undefined && { tlsCaFile: options.tlsCa }),
    });
    const client = new ClusterClient(bus, localRegistry());
    const explainer = localCluster();
    return new Fay(
      {
        run: (text, o) => client.run(text, { ...o, ...(options.expectAgents !== undefined && { expectAgents: options.expectAgents }) }),
        start: (text, o) => client.start(text, { ...o, ...(options.expectAgents !== undefined && { expectAgents: options.expectAgents }) }),
        explain: (text) => explainer.explain(text),
      },
      () => client.close(),
    );
  }

  private source<E>(...points: string[]): Query<E> {
    return new Query<E>({ runner: this.runner, sources: points, stages: [], durationMs: undefined });
  }

  /** System calls by name or glob: syscalls('openat'), syscalls('open*'), syscalls('openat', 'openat2'). */
  syscalls<N extends string>(...names: [N, ...N[]]): Query<SyscallEvent<ArgsOfSyscall<N>>> {
    return this.source(...names.map((n) => `syscall:${n}`));
  }

  /** A kernel tracepoint: tracepoint('kmem:kmalloc'), tracepoint('sched:*'). */
  tracepoint<N extends string>(name: N): Query<TracepointEvent<ArgsOfTracepoint<N>>> {
    return this.source(`tracepoint:${name}`);
  }

  /** A native function's calls: uprobe('/usr/bin/node', 'uv_fs_*'), uprobe('libc', 'malloc'). */
  uprobe(binary: string, symbol: string): Query<UprobeEvent> {
    return this.source(`uprobe:${/[\s:|,]/.test(binary) ? JSON.stringify(binary) : binary}:${symbol}`);
  }

  /** CPU samples at this rate on every CPU. */
  profile(hz: number): Query<ProfileEvent> {
    return this.source(`profile:${hz}hz`);
  }

  /** JavaScript functions in live Node.js processes: js('comm=api', './lib/db.js#query*'), js('pid=4242', 'fs.readFile*'), js('*', 'JSON.parse'). */
  js(selector: string, pattern: string): Query<JsEvent> {
    // Quoted where a space, | or , would end the probe point (a path with spaces).
    return this.source(`js:${selector}:${/[\s|,]/.test(pattern) ? JSON.stringify(pattern) : pattern}`);
  }

  /** Messages on a diagnostics_channel channel, in every Node.js process or those a selector picks. */
  dc(channel: string, selector?: string): Query<DcEvent> {
    return this.source(`dc:${selector === undefined ? '' : `${selector}:`}${channel}`);
  }

  /**
   * A stored log (fay query --persist) as a source: a history query over what the agents kept,
   * planned like a live one. `R` names the fields its rows hold, e.g.
   * `fay.stored<{ comm: string; ret: number }>('opens').where((e) => e.ret < 0).groupBy((e) => ({ comm: e.comm })).count()`.
   */
  stored<R extends object = Readonly<Record<string, number | string | boolean>>>(name: string): Query<StoredEvent<R>> {
    return this.source(`stored:${name}`);
  }

  /** CPU samples of Node.js processes' JavaScript threads. */
  jsProfile(selector: string, hz: number): Query<JsProfileEvent> {
    return this.source(`profile:js:${selector}:${hz}hz`);
  }

  /** Lets go of the cluster connection (nothing to do on this machine alone). */
  close(): Promise<void> {
    return this.closer();
  }
}

/**
 * A history query on this machine: its agent holds the store when one runs (fay agent, which
 * standing queries start), so it is asked; otherwise this process reads the store itself.
 */
function startHistory(embedded: EmbeddedCluster): QueryRunner['start'] {
  return async (text: string, options: RunOptions) => {
    const agent = await localAgentClient();
    if (agent === undefined) return embedded.start(text, options);
    try {
      const run = await agent.start(text, { ...options, expectAgents: 1 });
      run.ended.then(
        () => agent.close(),
        () => agent.close(),
      ).catch(() => undefined);
      return run;
    } catch (error) {
      await agent.close();
      throw error;
    }
  };
}

/** Fay on this machine (no options) or on a cluster ({ cluster: 'nats://…' }). */
export function connect(options: ConnectOptions = {}): Promise<Fay> {
  return Fay.connect(options);
}
