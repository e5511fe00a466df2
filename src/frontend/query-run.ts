import type { Command } from 'commander';
import { ClusterClient } from '../cluster/cluster-client.js';
import type { QueryHandle, RunOptions } from '../cluster/embedded.js';
import { localRegistry } from '../probes/default-registry.js';
import { EXIT_INCOMPLETE, UsageError } from '../errors.js';
import { DEFAULT_LIMITS } from '../plan/limits.js';
import { NODE_BOUNDS, NODE_DEFAULTS } from '../probes/node/options.js';
import { BACKENDS } from '../probes/bpf/backend.js';
import { clusterSettings, type ClusterFlags } from './cluster-config.js';
import { parseCountFlag, parseDurationFlag, parseSizeFlag } from './flags.js';
import type { OutputSink } from '../output/sink.js';
import { onStdoutClosed, stdoutClosed } from '../output/stdio.js';

/** What the query commands (fay query, fay shell) share: their flags, and following a run to its end. */

export interface QueryFlags extends ClusterFlags {
  hosts?: string;
  /** False with --no-tree: the client merges every host's windows itself, aggregators or not. */
  tree?: boolean;
  json?: boolean;
  duration?: string;
  every?: string;
  refresh?: string;
  maxGroups?: string;
  maxEvents?: string;
  maxMemory?: string;
  maxCalls?: string;
  maxPause?: string;
  keepEdits?: string;
  backend?: string;
  persist?: string;
  retain?: string;
}

export function runOptions(flags: QueryFlags): RunOptions {
  const node = {
    ...(flags.maxCalls !== undefined && { maxCallsPerSecond: parseCountFlag(flags.maxCalls, '--max-calls') }),
    ...(flags.maxPause !== undefined && { maxEditPauseMs: parseDurationFlag(flags.maxPause, '--max-pause', { zero: true }) }),
    ...(flags.keepEdits !== undefined && { keepEditsMs: parseDurationFlag(flags.keepEdits, '--keep-edits', { zero: true, maxMs: NODE_BOUNDS.maxKeepEditsMs }) }),
  };
  return {
    ...(flags.duration !== undefined && { durationMs: parseDurationFlag(flags.duration, '--duration') }),
    ...(flags.every !== undefined && { everyMs: parseDurationFlag(flags.every, '--every') }),
    ...(flags.refresh !== undefined && { refreshMs: parseDurationFlag(flags.refresh, '--refresh') }),
    limits: {
      ...(flags.maxGroups !== undefined && { maxGroups: parseCountFlag(flags.maxGroups, '--max-groups') }),
      ...(flags.maxEvents !== undefined && { maxEventsPerSecond: parseCountFlag(flags.maxEvents, '--max-events') }),
      ...(flags.maxMemory !== undefined && { maxMemoryBytes: parseSizeFlag(flags.maxMemory, '--max-memory') }),
    },
    ...providerOptions(node, flags.backend),
    ...persistOptions(flags),
  };
}

/** The providers' own options: the Node.js provider's caps, the kernel probes' backend. */
function providerOptions(node: object, backend: string | undefined): Pick<RunOptions, 'providerOptions'> {
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend takes ${BACKENDS.join(', ')}, not "${backend}"`);
  const options = { ...(Object.keys(node).length > 0 && { node }), ...(backend !== undefined && { bpf: { backend } }) };
  return Object.keys(options).length > 0 ? { providerOptions: options } : {};
}

/** --persist <name> [--retain <duration>]: what each machine keeps of the query, and for how long. */
function persistOptions(flags: QueryFlags): Pick<RunOptions, 'persist'> {
  if (flags.persist === undefined) {
    if (flags.retain !== undefined) throw new UsageError('--retain says how long --persist keeps a log: give --persist <name> too');
    return {};
  }
  if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(flags.persist)) {
    throw new UsageError(`--persist takes a log name: a letter, then letters, digits, . _ - (64 at most), not "${flags.persist}"`);
  }
  const retainMs = flags.retain === undefined ? undefined : parseDurationFlag(flags.retain, '--retain', { maxMs: 10 * 366 * 86_400_000 });
  return { persist: { name: flags.persist, ...(retainMs !== undefined && { retainMs: Math.round(retainMs) }) } };
}

/** The caps every query command takes. */
export function limitFlags(command: Command): Command {
  return command
    .option('--max-groups <n>', `groups kept per result before the rest fold into (other) (default ${DEFAULT_LIMITS.maxGroups})`)
    .option('--max-events <n>', `events shipped per second per machine; the rest are dropped and counted (default ${DEFAULT_LIMITS.maxEventsPerSecond})`)
    .option('--max-calls <n>', `calls a second one JavaScript probe handles in full per process; above it, one in N, said in a notice (default ${NODE_DEFAULTS.maxCallsPerSecond})`)
    .option('--max-pause <duration>', `how long live-editing a script may stop a Node.js process, estimated from its heap; longer, or 0: its functions are not edited, and a wrapper on their CommonJS export counts the calls through it (default ${NODE_DEFAULTS.maxEditPauseMs}ms)`)
    .option(
      '--keep-edits <duration>',
      `how long a Node.js process keeps the query's live edits after it, inert, for the next query on the same functions to take over without stopping the process again; 0: out when the query ends (default ${NODE_DEFAULTS.keepEditsMs / 1000}s)`,
    )
    .option('--max-memory <size>', 'memory for aggregate states per result, e.g. 256M; lowers --max-groups to fit (default 256M)')
    .option('--backend <backend>', "the kernel probes' backend: bpftrace, native (Fay's own eBPF code, for the queries it covers) or auto (native for the queries it covers, a few named system calls each on its own tracepoint; bpftrace for the rest, or when the kernel refuses the native program) (default auto)");
}

/** Ctrl-C (or SIGTERM) stops the query cleanly and prints the final answer; a second one leaves at once. */
export function stopOnSignals(run: QueryHandle): () => void {
  let signals = 0;
  const handler = () => {
    signals++;
    if (signals === 1) void run.stop();
    else process.exit(130);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, handler);
  return () => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, handler);
  };
}

/** Whether the reader of a query's answer went away, and how to hear of it: standard output's, unless served elsewhere. */
export interface OutputEnd {
  closed(): boolean;
  /** Calls the listener once the reader goes away; returns how to stop listening. */
  onClosed(listener: () => void): () => void;
}

const STDOUT_END: OutputEnd = { closed: stdoutClosed, onClosed: onStdoutClosed };

/**
 * Hands a run's messages to `sink` until it ends; `stopWhen` arranges for Ctrl-C to stop it (default:
 * process signals); `output` says when the answer's reader is gone, which stops it too (default:
 * standard output's); `attaching`, when given, is said on standard error until the probes are in.
 * Resolves with the exit code the answer calls for: EXIT_INCOMPLETE when part of it is missing (a
 * host failed or was lost), else 0.
 */
export async function follow(
  run: QueryHandle,
  sink: OutputSink,
  options: { attaching?: string; stopWhen?: (run: QueryHandle) => () => void; output?: OutputEnd } = {},
): Promise<number> {
  let code = 0;
  const release = (options.stopWhen ?? stopOnSignals)(run);
  // A reader that went away (| head) stops the query: its probes come out, and the command ends quietly.
  const output = options.output ?? STDOUT_END;
  const unwatch = output.onClosed(() => void run.stop());
  try {
    if (options.attaching !== undefined) {
      process.stderr.write(`${options.attaching}\n`);
      await run.attached;
      process.stderr.write('Tracing. Ctrl-C to stop.\n');
    }
    for await (const message of run) {
      if (message.kind === 'end' && !message.complete) code = EXIT_INCOMPLETE;
      if (output.closed()) continue;
      // The sink waits for a slow reader: nothing piles up here, and nothing is lost.
      await sink.export(message);
    }
    await sink.shutdown();
  } finally {
    unwatch();
    release();
  }
  return code;
}

/** The cluster's client, if the flags or the config file name a cluster; undefined: this machine alone. */
export async function clusterClient(flags: ClusterFlags): Promise<ClusterClient | undefined> {
  const settings = clusterSettings(flags, 'fay client');
  if (settings === undefined) return undefined;
  // The NATS client is loaded only for a cluster: a query on this machine starts without it.
  const { NatsBus } = await import('../bus/nats.js');
  return new ClusterClient(await NatsBus.connect(settings), localRegistry());
}

