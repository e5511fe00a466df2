#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { localCluster } from '../frontend/local-cluster.js';
import { FayError, UsageError } from '../errors.js';
import { NODE_DEFAULTS } from '../probes/node/options.js';
import { nameProcessFay } from '../probes/node/processes.js';
import { parseQuery } from '../query/parser.js';
import { parseDurationFlag } from '../frontend/flags.js';
import { clusterFlags, type ClusterFlags } from '../frontend/cluster-config.js';
import { clusterClient, follow, limitFlags, runOptions, type QueryFlags } from '../frontend/query-run.js';
import { terminalSink } from '../output/choose.js';
import { fanOut, type OutputSink } from '../output/sink.js';
import { foldedShapeProblem } from '../output/folded-stacks.js';
import { NdjsonSink } from '../output/ndjson.js';
import { printable, printableLine } from '../output/printable.js';
import { exitFlushed, watchStdio } from '../output/stdio.js';
import type { AggregatorFlags } from './aggregator-command.js';
import type { AgentFlags } from './agent-command.js';
import type { StoreFlags } from './store-command.js';
import type { WebFlags } from './web-command.js';
import type { StandingFlags } from './standing.js';
import { localAgentClient } from '../frontend/local-agent.js';
import { TopSink, TOP_QUERY } from './top.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

type QueryCommandFlags = StandingFlags & { folded?: boolean; pprof?: string; prometheus?: string; otlp?: string; metricPrefix?: string };

async function query(text: string, flags: QueryCommandFlags): Promise<void> {
  if (flags.until !== undefined && flags.persist === undefined) throw new UsageError('--until ends a standing query: give --persist <log> too');
  if (flags.persist !== undefined) {
    const heard = flags.pprof !== undefined ? '--pprof' : flags.prometheus !== undefined ? '--prometheus' : flags.otlp !== undefined ? '--otlp' : undefined;
    if (heard) throw new UsageError(`${heard} exports what this command hears, and a standing query is heard by no command`, { hint: `ask its log afterwards: fay query ${heard} … 'stored:<log> | …'` });
    return (await import('./standing.js')).startStanding(text, flags);
  }
  if (flags.metricPrefix !== undefined && flags.prometheus === undefined && flags.otlp === undefined) throw new UsageError('--metric-prefix names the metrics --prometheus serves and --otlp sends: give one of them too');
  if (flags.folded) checkFolded(text, flags);
  if (flags.pprof !== undefined) checkStacks(text, '--pprof');
  // Served before the query runs: a port in use is said before any probe goes in.
  const prometheus = flags.prometheus === undefined ? undefined : await startPrometheus(text, flags.prometheus, flags.metricPrefix);
  const otlp = flags.otlp === undefined ? undefined : await otlpSink(text, flags.otlp, flags.metricPrefix);
  let client = await clusterClient(flags);
  if (client === undefined && flags.hosts !== undefined) throw new UsageError('--hosts selects hosts of a cluster', { hint: 'add --cluster nats://… (or set "cluster" in the config file)' });
  // A history query on this machine asks its agent, which holds the store, when one runs.
  if (client === undefined && /\bstored:/.test(text)) client = await localAgentClient();
  try {
    const run = client ? await client.start(text, { ...runOptions(flags), ...hostsFlag(flags), ...(flags.tree === false && { tree: false }) }) : await localCluster().start(text, runOptions(flags));
    const live = Boolean(process.stdout.isTTY) && !flags.json && !flags.folded;
    const shown = terminalSink({ json: Boolean(flags.json), folded: Boolean(flags.folded), live, title: `fay: ${text.trim()}` });
    const pprof = flags.pprof === undefined ? undefined : new (await import('../output/pprof.js')).PprofSink(flags.pprof, samplingPeriodNs(text));
    const sink = fanOut([shown, ...[pprof, prometheus, otlp].filter((x): x is OutputSink => x !== undefined)]);
    process.exitCode = await follow(run, sink, live ? { attaching: 'Attaching probes…' } : {});
  } finally {
    await client?.close();
    await prometheus?.shutdown();
  }
}

/** Whether the query's answer can be exported as metrics (one that does not parse is left to the run, which says where). */
async function checkExport(text: string, flag: '--prometheus' | '--otlp'): Promise<void> {
  const { exportProblem } = await import('../output/answer-metrics.js');
  let parsed;
  try {
    parsed = parseQuery(text);
  } catch {
    return;
  }
  const aggregate = parsed.stages.findLast((s) => s.kind === 'Aggregate');
  const problem = exportProblem(flag, aggregate?.kind === 'Aggregate' ? aggregate.aggregates.map((a) => a.function.name) : undefined);
  if (problem !== undefined) throw new UsageError(problem);
}

/** The Prometheus endpoint for a query's answer, once the query is known to aggregate. */
async function startPrometheus(text: string, address: string, prefix: string | undefined): Promise<OutputSink> {
  const { listenAddress, PrometheusSink } = await import('../output/prometheus.js');
  const where = listenAddress(address);
  await checkExport(text, '--prometheus');
  const sink = await PrometheusSink.start(where, prefix === undefined ? {} : { prefix });
  process.stderr.write(`fay: Prometheus can scrape ${sink.url} while the query runs\n`);
  return sink;
}

/** The OTLP exporter of a query's answer, once the query is known to aggregate. */
async function otlpSink(text: string, url: string, prefix: string | undefined): Promise<OutputSink> {
  const { otlpUrl, OtlpSink } = await import('../output/otlp.js');
  const where = otlpUrl(url);
  await checkExport(text, '--otlp');
  return new OtlpSink(where, text.trim(), prefix === undefined ? {} : { prefix });
}

/** Whether --folded can print this query: a query that does not parse is left to the run, which says where. */
function checkFolded(text: string, flags: QueryFlags): void {
  if (flags.json) throw new UsageError('--folded and --json are two ways to print the rows: give one');
  checkStacks(text, '--folded');
}

/** Whether the query's rows are one stack and one number each, as --folded and --pprof take them (one that does not parse is left to the run). */
function checkStacks(text: string, flag: '--folded' | '--pprof'): void {
  let parsed;
  try {
    parsed = parseQuery(text);
  } catch {
    return;
  }
  const problem = foldedShapeProblem(parsed, flag);
  if (problem !== undefined) throw new UsageError(problem);
}

/** The time one sample stands for, when the query samples at a rate it names (`profile:99hz`, `profile:js:…:199hz`). */
function samplingPeriodNs(text: string): number | undefined {
  const hz = /\bprofile:[^|\s]*?(\d+)hz\b/.exec(text)?.[1];
  return hz === undefined || Number(hz) === 0 ? undefined : Math.round(1e9 / Number(hz));
}

async function top(flags: QueryFlags & { rows?: string }): Promise<void> {
  const rows = flags.rows === undefined ? undefined : Number(flags.rows);
  if (rows !== undefined && !(Number.isInteger(rows) && rows > 0)) throw new UsageError('--rows takes a whole number');
  const run = localCluster().run(TOP_QUERY, { ...runOptions(flags), everyMs: parseDurationFlag(flags.every ?? '1s', '--every') });
  const live = Boolean(process.stdout.isTTY) && !flags.json;
  const sink = flags.json ? new NdjsonSink() : new TopSink(live, rows);
  process.exitCode = await follow(run, sink, live ? { attaching: 'Attaching to every system call…' } : {});
}

async function explain(text: string, flags: QueryFlags): Promise<void> {
  const cluster = localCluster();
  await cluster.prepare(text);
  process.stdout.write(`${printable(cluster.explain(text, runOptions(flags)))}\n`);
  // With a cluster: the merge tree the query would go through.
  const client = await clusterClient(flags);
  if (client === undefined) return;
  try {
    process.stdout.write(`${printable(await client.explainTree(text, { ...hostsFlag(flags), ...(flags.tree === false && { tree: false }) }))}\n`);
  } finally {
    await client.close();
  }
}

/** --hosts as globs. */
function hostsFlag(flags: QueryFlags): { hosts?: string[] } {
  const hosts = flags.hosts?.split(',').map((h) => h.trim()).filter(Boolean);
  return hosts === undefined ? {} : { hosts };
}

async function probes(glob: string | undefined, flags: { json?: boolean }): Promise<void> {
  const listings = await localCluster().agent.registry.list(glob ?? '*');
  if (listings.length === 0) {
    throw new UsageError(`no probe point matches "${glob}"`, {
      hint: glob?.startsWith('js:')
        ? 'fay probes "js:*" lists the Node.js processes, fay probes "js:pid=N:*" what can be probed in one'
        : 'try fay probes "syscall:*" or fay probes "tracepoint:sched:*"',
    });
  }
  if (flags.json) {
    for (const l of listings) process.stdout.write(`${JSON.stringify(l)}\n`);
    return;
  }
  const width = Math.min(48, Math.max(...listings.map((l) => l.point.length)));
  for (const l of listings) process.stdout.write(`${printableLine(l.point).padEnd(width)}  ${l.available ? '' : '[unavailable] '}${printableLine(l.description)}\n`);
}

/**
 * Takes the live edits that ended queries left in Node.js processes (--keep-edits) out now: one line
 * per process; exit code 3 if none could be reached.
 */
async function release(point: string, flags: { maxPause?: string }): Promise<void> {
  const maxPauseMs = flags.maxPause === undefined ? NODE_DEFAULTS.maxEditPauseMs : parseDurationFlag(flags.maxPause, '--max-pause', { zero: true });
  const { parseSelector, selectProcesses, selectorText } = await import('../probes/node/processes.js');
  const selector = parseSelector(point.replace(/^js:/, ''));
  if (typeof selector === 'string') throw new UsageError(selector, { hint: 'e.g. fay release "js:pid=4242", "js:comm=api-*" or "js:*"' });
  const targets = selectProcesses(selector);
  if (targets.length === 0) {
    throw new UsageError(`no Node.js process matches ${selectorText(selector)}`, { hint: 'fay probes "js:*" lists the Node.js processes here' });
  }
  const { releaseKept } = await import('../probes/node/install.js');
  let reached = 0;
  let stuck = false;
  for (const target of targets) {
    try {
      const released = await releaseKept(target, maxPauseMs);
      reached++;
      const functions = released?.functions ?? 0;
      const what =
        released === null
          ? 'no Fay runtime in it'
          : functions === 0 && released.left.length === 0
            ? 'no kept edits'
            : `took out the kept edits of ${functions} function${functions === 1 ? '' : 's'}`;
      process.stdout.write(`process ${target.pid} (${printableLine(target.comm)}): ${what}\n`);
      for (const l of released?.left ?? []) {
        process.stdout.write(
          `process ${target.pid} (${printableLine(target.comm)}): the edit of ${printableLine(l.url)} stays: taking it out would stop the process for ~${l.ms} ms (${l.figures}), over --max-pause ${maxPauseMs} ms\n`,
        );
        stuck = true;
      }
    } catch (error) {
      process.stderr.write(`fay: process ${target.pid} (${printableLine(target.comm)}): ${printable((error as Error).message)}\n`);
    }
  }
  if (reached === 0 || stuck) process.exitCode = 3;
}

async function shell(flags: QueryFlags): Promise<void> {
  // Loaded on demand, as every command's heavier parts are: `fay query` starts faster without them.
  const { Shell } = await import('../shell/shell.js');
  const session = await Shell.open(flags);
  const code = process.stdin.isTTY ? await session.runInteractive(process.stdin, process.stdout) : await session.runScript(process.stdin);
  if (code !== 0) await exitFlushed(code);
}

function build(): Command {
  const program = new Command('fay')
    .description('Ask the kernel and the programs of this machine anything: FayQL in, live answers out.')
    .version(version)
    .exitOverride()
    // Usage errors look like every other error of Fay's: "fay: …", no stack; a query that starts with
    // a dash reads as an option, so the way round that is said.
    .configureOutput({ outputError: (text, write) => write(`fay: ${text.replace(/^error: /, '')}`) })
    .showHelpAfterError('(fay --help lists the commands; a query that starts with "-" goes after "--": fay query -- \'-1 …\')');
  const durationFlags = (c: Command) =>
    c
      .option('-d, --duration <time>', 'stop after this long, e.g. 10s')
      .option('-e, --every <period>', 'emit a result every period, each covering its own period')
      .addOption(new Option('--refresh <period>', 'how often a running result refreshes').default(undefined));
  durationFlags(
    clusterFlags(limitFlags(program.command('query')))
      .description('run a FayQL query and show its live answer (on this machine, or with --cluster on every agent)')
      .argument('<query>', 'e.g. \'syscall:openat | count() by comm\'')
      .option('--hosts <globs>', 'with --cluster: only hosts whose names match one of these comma-separated globs')
      .option('--no-tree', "with --cluster: merge every host's windows here, even when aggregators (fay aggregator) are connected")
      .option('--json', 'print results as NDJSON')
      .option('--folded', "print the answer as folded stacks, a flame graph's input (flamegraph.pl, inferno, speedscope): 'stack;frames count' per row")
      .option('--pprof <file>', "also write the stacks counted (count() by ustack, kstack, jsstack…) as a gzipped pprof profile when the query ends, for go tool pprof, Parca, Pyroscope")
      .option('--prometheus <[host]:port>', 'also serve the answer on http://host:port/metrics for Prometheus to scrape while the query runs: each aggregate a metric, the by keys its labels')
      .option('--otlp <url>', 'also send the answer as OTLP metrics over HTTP (protobuf) to a collector, e.g. http://collector:4318, as each result comes')
      .option('--metric-prefix <prefix>', "with --prometheus or --otlp: the metrics' names start with it (default fay)")
      .option(
        '--persist <log>',
        "a standing query: the agents keep running it after this command returns (with the query's id), each keeping what it produces (its windows' aggregate states, or its events) in its trace store as <log>; without --cluster, this machine's agent (started in the background if none runs)",
      )
      .option('--retain <duration>', 'with --persist: how long each machine keeps the rows, e.g. 7d (default: until the log is removed)')
      .option('--until <time>', 'with --persist: when the standing query ends, a duration from now (2h) or a date and time (default: at fay stop)'),
  ).action((text: string, flags: QueryCommandFlags) => query(text, flags));
  clusterFlags(program.command('agent'), 'the same as --nats')
    .description("run this machine's agent in the foreground: on a cluster's NATS bus, or without --nats for this machine's standing queries and trace store")
    .option('--nats <url>', 'the NATS server, e.g. nats://fay-agent:secret@10.0.0.5:4222')
    .option('--store-max <size>', 'hold the trace store under this size, e.g. 10G: the oldest rows of every log go first (default: no bound)')
    .option('--name <host>', 'the host name to announce (default: this machine\'s)')
    .option('--cgroup <path>', 'only see the processes of this cgroup (v2): an agent per container')
    .option('--heartbeat <period>', 'how often to say it is alive', '1s')
    .option('--prometheus <[host]:port>', "serve the standing queries' windows on http://host:port/metrics for Prometheus to scrape, each query's metrics named after its log")
    .option('--metric-prefix <prefix>', "with --prometheus: the metrics' names start with it (default fay)")
    .action(async (flags: AgentFlags) => (await import('./agent-command.js')).runAgent(flags, version));
  clusterFlags(program.command('aggregator'), 'the same as --nats')
    .description("run an aggregator of the cluster's merge tree in the foreground: it merges a share of the hosts' windows per period, so that a client merges a few partials instead of every host's (docs/cluster.md)")
    .option('--nats <url>', 'the NATS server, e.g. nats://fay-aggregator:secret@10.0.0.5:4222')
    .option('--name <name>', "its name in the tree, unique among the aggregators (default: this machine's name and the process id)")
    .option('--heartbeat <period>', 'how often to say it is alive, with its load: its hosts move to the others three of them after it dies', '500ms')
    .option('--level <n>', "its level in the tree: 1 merges the hosts' windows, 2 the partials of level 1 (a deeper tree for the largest clusters)", '1')
    .action(async (flags: AggregatorFlags) => (await import('./aggregator-command.js')).runAggregator(flags, version));
  clusterFlags(program.command('ps'))
    .description("list the queries running and standing on a cluster, or on this machine's agent: hosts, age, what their logs hold")
    .option('--json', 'one JSON object per line')
    .action(async (flags: ClusterFlags & { json?: boolean }) => (await import('./standing.js')).listQueries(flags));
  clusterFlags(program.command('stop'))
    .description('stop a running or standing query (its id from fay ps)')
    .argument('<id>')
    .action(async (id: string, flags: ClusterFlags) => (await import('./standing.js')).stopQuery(id, flags));
  const store = program.command('store').description("this machine's trace store: what queries run with --persist keep (docs/store.md)");
  const storeFlags = (c: Command) =>
    c
      .option('--dir <path>', 'the store directory (default FAY_STORE_DIR, else /var/lib/fay/store)')
      .option('--name <host>', "the agent's host name the store file is named after (default: this machine's)");
  storeFlags(store.command('ls'))
    .description('list the stored logs: their rows, the time they span, their retention and query')
    .option('--json', 'one JSON object per line')
    .action(async (flags: StoreFlags) => (await import('./store-command.js')).listStore(flags));
  storeFlags(store.command('rm'))
    .description('remove a stored log and everything it holds')
    .argument('<log>')
    .action(async (log: string, flags: StoreFlags) => (await import('./store-command.js')).removeLog(log, flags));
  storeFlags(store.command('export'))
    .description('write a stored log as Parquet (zstd), partitioned by host and day, for DuckDB, pandas or Spark')
    .argument('<log>')
    .requiredOption('--parquet <dir>', 'the directory to write')
    .action(async (log: string, flags: StoreFlags & { parquet: string }) => (await import('./store-command.js')).exportLog(log, flags));
  clusterFlags(program.command('explain'), 'also show the merge tree the query would use on the cluster whose NATS server is at <url>')
    .description('show the stages of a query, where each part runs, and the generated probe program')
    .argument('<query>')
    .option('--hosts <globs>', 'with --cluster: only hosts whose names match one of these comma-separated globs')
    .option('--no-tree', 'with --cluster: as if run with --no-tree')
    .option('-e, --every <period>', 'explain as if run with --every')
    .option('--backend <backend>', "explain as if run with --backend: bpftrace, native or auto (default auto)")
    .action((text: string, flags: QueryFlags) => explain(text, flags));
  program
    .command('release')
    .description("take the live edits that ended queries keep in Node.js processes (--keep-edits) out now")
    .argument('<processes>', 'js:pid=N, js:comm=NAME (a glob) or js:*')
    .option('--max-pause <duration>', `how long taking an edit out may stop a process, estimated first: longer ones stay, said (default ${NODE_DEFAULTS.maxEditPauseMs}ms)`)
    .action((point: string, flags: { maxPause?: string }) => release(point, flags));
  program
    .command('probes')
    .description('list the probe points available on this machine')
    .argument('[glob]', 'e.g. "syscall:open*", "tracepoint:kmem:*", "uprobe:/usr/bin/node:uv_fs_*"')
    .option('--json', 'one JSON object per line')
    .action((glob: string | undefined, flags: { json?: boolean }) => probes(glob, flags));
  durationFlags(
    clusterFlags(limitFlags(program.command('shell')))
      .description('an interactive session (what fay with no arguments opens); over a pipe, runs the statements it reads')
      .option('--hosts <globs>', 'with --cluster: only hosts whose names match one of these comma-separated globs')
      .option('--json', 'print results as NDJSON'),
  ).action((flags: QueryFlags) => shell(flags));
  clusterFlags(limitFlags(program.command('web')))
    .description('a live page in the browser: the query editor, live tables and charts, the cluster; prints its URL with a token')
    .option('--port <port>', 'the port (0: any free one)', '7070')
    .option('--listen <address>', 'the address to listen on; anything but loopback is reachable by others, who still need the token', '127.0.0.1')
    .action(async (flags: WebFlags) => (await import('./web-command.js')).runWeb(flags, version));
  limitFlags(program.command('top'))
    .description('system calls per second by process and by call, refreshing in the terminal')
    .option('-d, --duration <time>', 'stop after this long')
    .option('-e, --every <period>', 'refresh period', '1s')
    .option('-n, --rows <n>', 'rows per table')
    .option('--json', 'print each period as NDJSON')
    .action((flags: QueryFlags & { rows?: string }) => top(flags));
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  const program = build();
  await program.parseAsync(argv.length === 0 ? ['shell'] : argv, { from: 'user' });
}

nameProcessFay();
watchStdio();
main(process.argv.slice(2)).then(
  () => exitFlushed(typeof process.exitCode === 'number' ? process.exitCode : 0),
  (error: unknown) => {
    if (error instanceof CommanderError) return exitFlushed(error.exitCode === 0 ? 0 : 2);
    if (error instanceof FayError) {
      process.stderr.write(`fay: ${printable(error.describe())}\n`);
      return exitFlushed(error.exitCode);
    }
    process.stderr.write(`fay: internal error (a bug in Fay; please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
    return exitFlushed(1);
  },
);
