import { hostname } from 'node:os';
import { createInterface, type Interface } from 'node:readline';
import type { ClusterClient } from '../cluster/cluster-client.js';
import { EmbeddedCluster, type QueryHandle, type RunOptions } from '../cluster/embedded.js';
import { FayError, UsageError } from '../errors.js';
import { parseDurationFlag } from '../frontend/flags.js';
import { clusterClient, follow, runOptions, stopOnSignals, type QueryFlags } from '../frontend/query-run.js';
import { terminalSink } from '../output/choose.js';
import { printable } from '../output/printable.js';
import { Completer, DOT_COMMANDS } from './completion.js';
import { History } from './history.js';
import { BRACKETED_PASTE_OFF, BRACKETED_PASTE_ON, KeystrokeInput } from './keystrokes.js';
import { localCluster } from '../frontend/local-cluster.js';
import { HostVariables, isComplete, joinLines } from './statement.js';

const HELP = `FayQL queries run as you type them; a line ending in | , ( or \\ goes on to the next.
  syscall:openat | count() by comm | top 10
  $web = hosts "web-*", "db1"          a host set, used as: … | on $web | …
Ctrl-C stops the running query (its final answer is printed); Ctrl-D leaves.
  .explain [query]     the plan of a query (default: the last one)
  .json on|off         NDJSON instead of tables
  .duration <d>|off    stop each query after d (e.g. 10s)
  .every <p>|off       a result every period p
  .vars                the host sets defined
  .hosts               the hosts that would answer
  .exit                leave (so does Ctrl-D)`;

/** Where a shell writes. */
interface Streams {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

/**
 * The interactive Fay shell, and the same over a pipe for scripts: reads
 * statements (FayQL queries, host-set variables, dot commands), runs each
 * query until it ends or Ctrl-C, and goes on.
 */
export class Shell {
  private readonly variables = new HostVariables();
  private readonly embedded: EmbeddedCluster;
  private json: boolean;
  private durationMs: number | undefined;
  private everyMs: number | undefined;
  private lastQuery: string | undefined;
  private exitCode = 0;
  private leaving = false;

  private constructor(
    private readonly flags: QueryFlags,
    private readonly client: ClusterClient | undefined,
    private readonly streams: Streams,
  ) {
    this.embedded = localCluster();
    this.json = Boolean(flags.json);
    this.durationMs = flags.duration === undefined ? undefined : parseDurationFlag(flags.duration, '--duration');
    this.everyMs = flags.every === undefined ? undefined : parseDurationFlag(flags.every, '--every');
  }

  static async open(flags: QueryFlags, streams: Streams = { out: process.stdout, err: process.stderr }): Promise<Shell> {
    return new Shell(flags, await clusterClient(flags), streams);
  }

  /** Reads statements from a pipe (or file) and runs them in order. Resolves with the exit code: the worst of its statements'. */
  async runScript(input: NodeJS.ReadableStream): Promise<number> {
    // A complete statement waits for the next line: one that starts with | or , goes on with it (a script
    // may put its pipes at the start of lines); anything else runs it first.
    let buffer = '';
    const runBuffer = async () => {
      const statement = buffer;
      buffer = '';
      if (statement.trim() !== '' && !this.leaving) await this.execute(statement, stopOnSignals, false);
    };
    try {
      for await (const line of createInterface({ input, terminal: false })) {
        if (buffer !== '' && isComplete(buffer) && !/^\s*[|,]/.test(line)) await runBuffer();
        if (this.leaving) break;
        if (buffer === '' && line.trim() === '') continue;
        buffer = buffer === '' ? line : `${buffer}\n${line}`;
      }
      await runBuffer();
    } finally {
      await this.close();
    }
    return this.exitCode;
  }

  /** The interactive session on a terminal: prompt, completion, history, Ctrl-C stopping only the running query. */
  runInteractive(input: NodeJS.ReadableStream & { isTTY?: boolean }, output: NodeJS.WritableStream): Promise<number> {
    const history = new History();
    // Each Tab typed completes, even among keys that arrive together; a paste stays text (keystrokes.ts).
    const keystrokes = input.isTTY && 'setRawMode' in input ? new KeystrokeInput(input as NodeJS.ReadStream) : undefined;
    const keys = keystrokes ?? input;
    if (keystrokes) output.write(BRACKETED_PASTE_ON);
    const completer = new Completer(this.embedded.agent.registry, () => this.variables.names());
    let buffer = '';
    let stopRunning: (() => void) | undefined;
    const rl: Interface = createInterface({
      input: keys,
      output,
      terminal: true,
      history: history.load(),
      historySize: 1000,
      removeHistoryDuplicates: true,
      completer: (line: string, callback: (error: Error | null, result: [string[], string]) => void) => {
        completer.complete(buffer, line).then((r) => callback(null, r), () => callback(null, [[], line]));
      },
    });
    const prompt = () => {
      rl.setPrompt(buffer === '' ? 'fay> ' : '...> ');
      rl.prompt();
    };
    this.streams.err.write(`Fay shell on ${this.client ? 'a cluster' : hostname()}. .help for help, Ctrl-D to leave.\n`);
    return new Promise<number>((resolve) => {
      /** The statement running now, if any. */
      let running: Promise<void> | undefined;
      rl.on('SIGINT', () => {
        if (stopRunning) return stopRunning();
        if (buffer !== '' || rl.line !== '') this.streams.out.write('^C\n');
        buffer = '';
        rl.write('', { ctrl: true, name: 'u' });
        prompt();
      });
      rl.on('line', (line) => {
        if (running) {
          this.streams.err.write('(a query is running: Ctrl-C stops it)\n');
          return;
        }
        buffer = buffer === '' ? line : `${buffer}\n${line}`;
        if (buffer.trim() === '') buffer = '';
        if (!isComplete(buffer)) return prompt();
        const statement = buffer;
        buffer = '';
        // One history entry per statement, however many lines it took.
        const lines = statement.split('\n').length;
        const entries = (rl as unknown as { history?: string[] }).history;
        if (entries && lines > 1) entries.splice(0, Math.min(lines, entries.length), joinLines(statement));
        history.add(joinLines(statement));
        const stopWhen = (run: QueryHandle) => {
          stopRunning = () => void run.stop();
          return () => (stopRunning = undefined);
        };
        running = this.execute(statement, stopWhen, Boolean((output as { isTTY?: boolean }).isTTY)).then(() => {
          running = undefined;
          if (this.leaving) rl.close();
          else prompt();
        });
      });
      rl.on('close', () => {
        if (keystrokes) {
          output.write(BRACKETED_PASTE_OFF);
          input.unpipe(keystrokes);
        }
        this.leaving = true;
        stopRunning?.();
        const finish = async () => {
          await running;
          await this.close();
          this.streams.out.write('\n');
          resolve(this.exitCode);
        };
        void finish();
      });
      prompt();
    });
  }

  /** Runs one statement; a mistake in it is printed, remembered for the exit code, and the session goes on. */
  private async execute(statement: string, stopWhen: (run: QueryHandle) => () => void, live: boolean): Promise<void> {
    try {
      const text = statement.trim();
      if (text.startsWith('.')) return await this.command(text);
      const defined = this.variables.define(joinLines(text));
      if (defined !== undefined) {
        if (live) this.streams.err.write(`$${defined}: ${this.variables.condition(defined)}\n`);
        return;
      }
      const query = this.variables.expand(text);
      this.lastQuery = query;
      const run = this.start(query);
      const showLive = live && !this.json;
      const sink = terminalSink({ json: this.json, live: showLive, title: `fay: ${joinLines(text)}` }, this.streams.out, this.streams.err);
      this.exitCode = Math.max(this.exitCode, await follow(run, sink, { stopWhen, ...(showLive && { attaching: 'Attaching probes…' }) }));
    } catch (error) {
      if (!(error instanceof FayError)) throw error;
      this.streams.err.write(`fay: ${printable(error.describe())}\n`);
      this.exitCode = Math.max(this.exitCode, error.exitCode);
    }
  }

  private options(): RunOptions {
    return {
      ...runOptions({ ...this.flags, duration: undefined, every: undefined }),
      ...(this.durationMs !== undefined && { durationMs: this.durationMs }),
      ...(this.everyMs !== undefined && { everyMs: this.everyMs }),
    };
  }

  private start(query: string): QueryHandle {
    if (!this.client) return this.embedded.run(query, this.options());
    const hosts = this.flags.hosts?.split(',').map((h) => h.trim()).filter(Boolean);
    return this.client.run(query, { ...this.options(), ...(hosts !== undefined && { hosts }) });
  }

  private async command(text: string): Promise<void> {
    const name = text.split(/\s+/, 1)[0]!;
    const arg = text.slice(name.length).trim();
    const say = (line: string): void => {
      this.streams.out.write(`${line}\n`);
    };
    const setting = (label: string, value: number | undefined) => say(`${label} ${value === undefined ? 'off' : `${value} ms`}`);
    switch (name) {
      case '.help':
        return say(HELP);
      case '.exit':
      case '.quit':
        this.leaving = true;
        return;
      case '.explain': {
        const query = arg === '' ? this.lastQuery : this.variables.expand(arg);
        if (query === undefined) throw new UsageError('no query to explain yet', { hint: 'give one: .explain syscall:openat | count() by comm' });
        return say(this.embedded.explain(query, this.options()));
      }
      case '.json':
        if (arg !== '') this.json = onOff(arg, '.json');
        return say(`json ${this.json ? 'on' : 'off'}`);
      case '.duration':
        if (arg !== '') this.durationMs = arg === 'off' ? undefined : parseDurationFlag(arg, '.duration');
        return setting('duration', this.durationMs);
      case '.every':
        if (arg !== '') this.everyMs = arg === 'off' ? undefined : parseDurationFlag(arg, '.every');
        return setting('every', this.everyMs);
      case '.vars': {
        const lines = this.variables.describe();
        return say(lines.length === 0 ? '(no variables; e.g. $web = hosts "web-*")' : lines.join('\n'));
      }
      case '.hosts': {
        const names = this.client ? (await this.client.discover()).map((a) => a.host).sort() : [this.embedded.agent.host];
        return say(names.join('\n'));
      }
      default:
        throw new UsageError(`no command ${name}`, { hint: `the commands: ${DOT_COMMANDS.join(' ')}` });
    }
  }

  private async close(): Promise<void> {
    await this.client?.close();
  }
}

function onOff(value: string, command: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new UsageError(`${command} takes on or off, not ${value}`);
}
