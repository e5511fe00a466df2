import { randomBytes } from 'node:crypto';
import type { AggregateKind } from '../../agg/aggregate.js';
import { GroupTable, type KeyPart } from '../../agg/group-table.js';
import type { Row } from '../../plan/evaluate.js';
import type { AggregateSpec } from '../../plan/logical.js';
import type { CompileOptions, ProbeSink, RunningProbe } from '../provider.js';
import { lazy } from '../../lazy.js';
import { processInCgroup } from '../cgroup.js';
import { AttachError, NoMatchingFunctionError } from './attach.js';
import type { AgentChannel, TargetConnection, TargetPartial } from './channel.js';
import type { KeptAggregate } from './codegen.js';
import { FrameNamer } from './frames.js';
import type { AttachStalls, InstallPlan } from './install.js';
import { msSinceStart, processStart, selectProcesses, selectorText, type NodeProcess, type ProcessSelector } from './processes.js';
import { describePattern, NODE_CHANNELS, nodeDefinesChannel, type FunctionPattern } from './sources.js';
import { closestNames } from '../../errors.js';
import type { NodeOptions } from './options.js';

// Loaded on first use (the inspector client, the JavaScript parser): a query without js: probes starts faster.
const installer = lazy(() => import('./install.js'));

/**
 * The wire form (GroupTable) of a state kept by the in-process handler: hist arrives as an array
 * indexed by bucket + 1 (holes as null), lhist as an object by bucket.
 */
function wireState(spec: AggregateSpec, state: unknown): unknown {
  if (spec.function === 'hist' && Array.isArray(state)) {
    return state.flatMap((n: unknown, i) => (typeof n === 'number' && n > 0 ? [i - 1, n] : []));
  }
  if (spec.function === 'lhist' && state && typeof state === 'object') {
    return Object.entries(state as Record<string, number>).flatMap(([bucket, n]) => [Number(bucket), n]);
  }
  return state;
}

/** How often a query by process name looks for processes that started after it. */
const LATE_SCAN_MS = 1000;
/** How old a process that started after the query must be to be attached (its first try, then again if nothing matched). */
const LATE_ATTACH_AGES_MS = [1000, 3000, 10000];

/** How long the query's last read waits for a busy process to answer. */
const LAST_READ_WAIT_MS = 5000;

export interface NodeRunSettings {
  readonly selector: ProcessSelector;
  readonly patterns: readonly FunctionPattern[];
  readonly handlers: string;
  readonly exit: boolean;
  readonly args: boolean;
  readonly self: boolean;
  /** The aggregates the probe's hooks keep themselves (see NodeProgram.kept); empty: a handler runs. */
  readonly kept: readonly KeptAggregate[];
  readonly shipped: readonly string[];
  readonly aggregates: readonly AggregateSpec[];
  readonly kinds: readonly AggregateKind[];
  /** Which group keys and shipped values are a CPU profile's stack or frame, which the agent names (frames.ts). */
  readonly frames?: { readonly keys: readonly FrameValue[]; readonly shipped: readonly FrameValue[] };
}

/** A value that is a profile's stack, its innermost frame, or neither. */
export type FrameValue = 'stack' | 'frame' | undefined;

/**
 * JavaScript probes in every process a selector picks: attached one after
 * another (one inspector port), then read each period by asking every
 * process for its partial and merging them into one.
 */
export class NodeRun implements RunningProbe {
  readonly attached: Promise<void>;
  readonly finished: Promise<void>;
  private connections: TargetConnection[] = [];
  /** Each process's frame namer (by pid), for a query that reads profile frames. */
  private readonly namers = new Map<number, FrameNamer>();
  /** The attached processes' inspectors closing behind their probes. */
  private readonly releases: Promise<void>[] = [];
  /** Processes said to be slow to answer (once each). */
  private readonly slowSaid = new Set<TargetConnection>();
  /** Each process's channel probes' messages since the attach, as its last answer said. */
  private readonly published = new Map<TargetConnection, Readonly<Record<string, number>>>();
  /** What every attach installs; set by the first. */
  private plan: InstallPlan | undefined;
  /** Processes that started after the query: attempts so far. */
  private readonly lateTries = new Map<number, { tries: number; start: number | undefined }>();
  /** Processes not tried (again): those the first attach could not take, and late ones given up on. */
  private readonly passedOver = new Map<number, number | undefined>();
  private lateTimer: NodeJS.Timeout | undefined;
  private lateAttaching: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private period = 0;
  private periodStartNs = Date.now() * 1e6;
  private stopping: Promise<void> | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private resolveFinished!: () => void;
  private rejectFinished!: (e: unknown) => void;

  constructor(
    private readonly settings: NodeRunSettings,
    private readonly options: CompileOptions & NodeOptions,
    private readonly channel: Promise<AgentChannel>,
    private readonly sink: ProbeSink,
  ) {
    this.finished = new Promise((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    this.finished.catch(() => undefined);
    this.attached = this.attachAll();
    this.attached.then(
      () => {
        this.periodStartNs = Date.now() * 1e6;
        this.timer = setInterval(() => this.schedule(), options.flushPeriodMs);
        // A selector by name (or *) also means the processes that start while the query runs.
        if (settings.selector.kind !== 'pid') this.lateTimer = setInterval(() => this.attachLate(), LATE_SCAN_MS);
      },
      (error: unknown) => this.rejectFinished(error),
    );
  }

  /** The Node.js processes the selector picks now (in the query's cgroup, if it has one), but those `skip` says are known. */
  private candidates(skip?: (pid: number) => boolean): NodeProcess[] {
    const { selector } = this.settings;
    const { cgroup } = this.options;
    return selectProcesses(selector, skip).filter(
      (p) => cgroup === undefined || processInCgroup(p.pid, cgroup),
    );
  }

  private async attachAll(): Promise<void> {
    const { selector } = this.settings;
    const { cgroup } = this.options;
    const targets = this.candidates();
    if (targets.length === 0) {
      throw new AttachError(`no Node.js process matches ${selectorText(selector)}${cgroup === undefined ? '' : ` in cgroup ${cgroup}`}`, {
        hint: 'fay probes "js:*" lists the Node.js processes here (without touching them)',
      });
    }
    const channel = await this.channel;
    const plan: InstallPlan = {
      session: randomBytes(8).toString('hex'),
      patterns: this.settings.patterns,
      handlers: this.settings.handlers,
      exit: this.settings.exit,
      args: this.settings.args,
      self: this.settings.self,
      kept: this.settings.kept,
      host: this.options.host,
      maxGroups: this.options.maxGroups,
      maxRows: Math.max(1, Math.ceil((this.options.maxEventsPerSecond * this.options.flushPeriodMs) / 1000)),
      pauseNoticeMs: this.options.editPauseNoticeMs,
      maxPauseMs: this.options.maxEditPauseMs,
      keepEditsMs: this.options.keepEditsMs,
    };
    this.plan = plan;
    const failures: string[] = [];
    let unmatched = 0;
    for (const target of targets) {
      try {
        await this.attachOne(target, plan, channel);
      } catch (error) {
        // With one process the query fails; with several, the others go on and this one is reported.
        if (targets.length === 1) throw error;
        this.passedOver.set(target.pid, processStart(target.pid));
        if (error instanceof NoMatchingFunctionError) unmatched++;
        else failures.push(`${target.pid}: ${(error as Error).message}`);
      }
    }
    for (const f of failures) this.sink.notice(`not attached to process ${f}`);
    if (unmatched > 0 && this.connections.length > 0) {
      const what = this.settings.patterns.map(describePattern).join(', ');
      this.sink.notice(`${unmatched} more Node.js process${unmatched === 1 ? ' has' : 'es have'} no function matching ${what}`);
    }
    if (this.connections.length === 0) {
      const what = this.settings.patterns.map(describePattern).join(', ');
      throw unmatched === targets.length
        ? new NoMatchingFunctionError(`no function matches ${what} in any of the ${targets.length} processes matching ${selectorText(selector)}`)
        : new AttachError(`could not attach to any process matching ${selectorText(selector)}: ${failures.join('; ')}`);
    }
  }

  /**
   * Attaches to the processes the selector picks that started after the query did, once each is
   * LATE_ATTACH_AGES_MS[0] old (a program that only runs a moment is left alone); one in which no
   * function matches yet is tried again when older (its modules may not all be loaded), then said.
   */
  private attachLate(): void {
    if (this.lateAttaching || this.stopping || !this.plan) return;
    const plan = this.plan;
    this.lateAttaching = (async () => {
      const channel = await this.channel;
      const attached = new Set(this.connections.map((c) => c.pid));
      // A pid seen before stands for the same process while its start time is the same.
      const known = (pid: number) => attached.has(pid) || (this.passedOver.has(pid) && this.passedOver.get(pid) === processStart(pid));
      // Those known are not read again (a scan reads /proc for every process on the machine).
      const present = this.candidates(known);
      for (const target of present) {
        if (this.stopping) return;
        const start = processStart(target.pid);
        const seen = this.lateTries.get(target.pid);
        const tries = seen !== undefined && seen.start === start ? seen.tries : 0;
        if (start === undefined || msSinceStart(start) < LATE_ATTACH_AGES_MS[tries]!) continue;
        this.lateTries.set(target.pid, { tries: tries + 1, start });
        try {
          await this.attachOne(target, plan, channel);
          this.sink.notice(`process ${target.pid} (${target.comm}) started after the query began: attached`);
        } catch (error) {
          if (error instanceof NoMatchingFunctionError && tries + 1 < LATE_ATTACH_AGES_MS.length) continue;
          this.passedOver.set(target.pid, start);
          this.sink.notice(`process ${target.pid} (${target.comm}) started after the query began and is not attached: ${(error as Error).message}`);
        }
      }
      // Processes that are gone are forgotten: their pids may come back as new processes.
      for (const [pid, { start }] of this.lateTries) if (processStart(pid) !== start) this.lateTries.delete(pid);
      for (const [pid, start] of this.passedOver) if (processStart(pid) !== start) this.passedOver.delete(pid);
    })()
      .catch((error: unknown) => this.sink.notice(`looking for Node.js processes that started later failed: ${(error as Error).message}`))
      .finally(() => (this.lateAttaching = undefined));
  }

  private async attachOne(target: NodeProcess, plan: InstallPlan, channel: AgentChannel): Promise<void> {
    const { install, lateEdits } = await installer();
    const { connection, reports, stalls, released } = await install(target, plan, channel, (m) => this.sink.notice(`process ${target.pid}: ${m}`));
    this.reportStalls(target, stalls, plan);
    // With nothing probed, the error below says why.
    const probedAny = reports.some((r) => r.probed);
    if (!probedAny) {
      // The process keeps nothing of this query: its runtime ends the session, and the inspector is closed.
      await connection.detach();
      await released;
      const refused = reports.filter((r) => !r.probed);
      const why = refused.slice(0, 3).map((r) => `${r.name}: ${r.reason ?? ''}`).join('; ') + (refused.length > 3 ? `; ${refused.length - 3} more` : '');
      throw new AttachError(`nothing could be probed in process ${target.pid} for ${this.settings.patterns.map(describePattern).join(', ')}${why ? ` (${why})` : ''}`);
    }
    this.connections.push(connection);
    this.releases.push(released);
    // Scripts it loads later that the query's files name are edited as the attach would have.
    connection.onScripts = (sources) => {
      try {
        const edits = lateEdits(plan, sources);
        if (edits.length > 0) connection.sendEdits(edits);
      } catch (error) {
        this.sink.notice(`process ${target.pid}: scripts it loaded after the attach are not probed: ${(error as Error).message}`);
      }
    };
    void connection.closed.then(() => {
      if (this.stopping) return;
      this.sink.notice(
        connection.exited
          ? `process ${target.pid} exited; what it counted until then is in`
          : `process ${target.pid} ended or disconnected; its probes are gone, with what they had counted since the last period`,
      );
    });
    for (const r of reports) {
      if (!r.probed) this.sink.notice(`process ${target.pid}: ${r.name} is not probed: ${r.reason ?? ''}`);
      else if (r.note) this.sink.notice(`process ${target.pid}: ${r.name}: ${r.note}`);
    }
  }

  /**
   * The stops of a process's JavaScript the attach caused (the debugger turning on, reading a large
   * script, counting compiled functions, the edit itself): said once the longest reaches the notice
   * threshold, and said as over the limit where it passed --max-pause.
   */
  /**
   * Says how long the attach stopped the process, once that reaches the notice threshold: the longest
   * its event loop was held up (measured in the process, whatever held it), and what held it: Fay's
   * own steps, each measured, and the garbage collections meanwhile.
   */
  private reportStalls(target: NodeProcess, stalls: AttachStalls, plan: InstallPlan): void {
    const gc = stalls.gcs.length > 0 ? Math.max(...stalls.gcs) : 0;
    const longest = Math.max(stalls.heldMs, gc, ...stalls.steps.map((s) => s.ms));
    if (longest < plan.pauseNoticeMs) return;
    const over = longest > plan.maxPauseMs && plan.maxPauseMs > 0 ? `, over the --max-pause of ${plan.maxPauseMs} ms` : '';
    const causes = stalls.steps.filter((s) => s.ms >= 1).slice(0, 5).map((s) => `${s.what} ${s.ms} ms`);
    if (gc >= 1) causes.push(`a garbage collection ${gc} ms${stalls.gcs.length > 1 ? ` (${stalls.gcs.length} in all)` : ''}`);
    const why = causes.length > 0 ? causes.join(', ') : "none of Fay's steps over a millisecond: the program's own work, or the scheduler";
    this.sink.notice(`process ${target.pid}: while attaching, its JavaScript stopped for ${longest} ms at the longest${over} (${why}); the program ran between stops`);
  }

  private schedule(last = false): void {
    this.flushing = this.flushing.then(() => this.flush(last));
  }

  /** A process's profile frames named as js: probes name functions, where the query reads frames (else undefined). */
  private frameNaming(connection: { readonly pid: number }): ((value: KeyPart, kind: FrameValue) => KeyPart) | undefined {
    if (this.settings.frames === undefined) return undefined;
    let namer = this.namers.get(connection.pid);
    if (namer === undefined) this.namers.set(connection.pid, (namer = FrameNamer.forProcess(connection.pid)));
    const named = namer;
    return (value, kind) => (typeof value !== 'string' || kind === undefined ? value : kind === 'stack' ? named.stack(value) : named.frame(value));
  }

  /** Reads one period from every process and delivers it as one partial. */
  private async flush(last: boolean): Promise<void> {
    const period = ++this.period;
    const endNs = Date.now() * 1e6;
    const seconds = (endNs - this.periodStartNs) / 1e9;
    // A period waits only so long for a process whose program keeps its event loop busy: the
    // result must reach the client within its grace. The last read waits longer: there is no later one.
    const waitMs = last ? LAST_READ_WAIT_MS : Math.min(2000, Math.max(50, this.options.flushPeriodMs / 4));
    const connections = this.connections;
    const partials = await Promise.all(connections.map((c) => c.flush(period, this.options.maxCallsPerSecond, seconds, last, waitMs)));
    // A process that is gone, and whose last counts are read, is no longer asked.
    this.connections = this.connections.filter((c) => !c.gone);
    connections.forEach((c) => {
      if (!c.slow || (!last && this.slowSaid.has(c))) return;
      this.slowSaid.add(c);
      this.sink.notice(
        last
          ? `process ${c.pid} did not answer the last read within ${LAST_READ_WAIT_MS / 1000} s (its JavaScript kept its event loop busy): what it counted since its last answer is not in`
          : `process ${c.pid} did not answer within ${waitMs} ms (its JavaScript kept its event loop busy): what it counts meanwhile goes into the period in which it answers`,
      );
    });
    const { aggregates, kinds, shipped } = this.settings;
    const table = new GroupTable(kinds, { maxGroups: this.options.maxGroups });
    const rows: Row[] = [];
    let dropped = 0;
    partials.forEach((p: TargetPartial | undefined, i) => {
      if (!p) return;
      const name = this.frameNaming(connections[i]!);
      for (const group of p.groups) {
        try {
          const key = name ? (group.key as KeyPart[]).map((k, at) => name(k, this.settings.frames!.keys[at])) : (group.key as KeyPart[]);
          table.mergeGroup(key, group.s.map((s, a) => kinds[a]!.decode(wireState(aggregates[a]!, s))));
        } catch {
          this.sink.notice(`process ${connections[i]!.pid} sent a malformed partial; it was skipped`);
        }
      }
      for (const row of p.rows) {
        rows.push(Object.fromEntries(shipped.map((field, v) => [field, (name ? name(row[v] as KeyPart, this.settings.frames!.shipped[v]) : row[v]) as Row[string]])));
      }
      dropped += p.dropped;
      if (p.folded > 0) this.sink.notice(`process ${connections[i]!.pid}: ${p.folded} calls of groups beyond the cap went to (other)`);
      for (const s of last ? (p.pending ?? []) : []) {
        this.sink.notice(
          `process ${connections[i]!.pid}: ${s.calls} call${s.calls === 1 ? '' : 's'} of ${s.name} had not settled when the query ended ` +
            (s.awaitsSeen
              ? '(still pending): they are not counted'
              : '(still pending, or rejected by something it awaited, which Fay does not see in an async generator or a function with for await): they are not counted'),
        );
      }
      if (p.published) this.published.set(connections[i]!, p.published);
      for (const [probe, begun] of Object.entries(last ? (p.inFlight ?? {}) : {})) {
        if (begun > 0) {
          this.sink.notice(
            `process ${connections[i]!.pid}: ${begun} request${begun === 1 ? '' : 's'} of ${probe} had begun and not finished when the query ended (in flight, or abandoned by their connection): they are not counted`,
          );
        }
      }
      for (const s of p.sampling) {
        this.sink.notice(
          s.every > 1
            ? `${s.name} is called ${s.rate} times a second, over the cap of ${this.options.maxCallsPerSecond} (--max-calls): it now handles 1 call in ${s.every}, and counts only those`
            : `${s.name} is back under the cap: every call is handled again`,
        );
      }
    });
    if (last) this.sayUnpublished();
    if (rows.length > 0) this.sink.events(rows);
    if (dropped > 0) this.sink.dropped(dropped);
    if (this.settings.aggregates.length > 0) this.sink.partial({ table, startNs: this.periodStartNs, endNs });
    this.periodStartNs = endNs;
  }

  /**
   * A channel no message came on in any process, whose name Node.js does not publish on: a library's
   * channel nobody used, or a typo. Said at the end, with the closest names Node.js has, so that a
   * 0 is not taken for an answer it is not.
   */
  private sayUnpublished(): void {
    if (this.published.size === 0) return;
    for (const pattern of this.settings.patterns) {
      if (pattern.kind !== 'channel' || nodeDefinesChannel(pattern.name)) continue;
      const probe = `dc:${pattern.name}`;
      const messages = [...this.published.values()].reduce((n, counts) => n + (counts[probe] ?? 0), 0);
      if (messages > 0) continue;
      const close = closestNames(pattern.name, NODE_CHANNELS);
      this.sink.notice(
        `no message was published on ${probe} while the query ran, in ${this.published.size} process${this.published.size === 1 ? '' : 'es'}; ` +
          `Node.js publishes on no channel of that name (a library's channel that was not used, or a typo?)${close.length > 0 ? `: did you mean ${close.join(', ')}?` : ''}`,
      );
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.attached.catch(() => undefined);
      if (this.timer) clearInterval(this.timer);
      clearInterval(this.lateTimer);
      // An attach under way finishes first: its probes come out with the others.
      await this.lateAttaching;
      this.schedule(true);
      await this.flushing;
      await Promise.all(this.connections.map((c) => c.detach()));
      // Probes are off; the run ends once the processes' sources are their own again.
      await Promise.all(this.connections.map((c) => c.done()));
      // No inspector is left open when the run ends.
      await Promise.all(this.releases);
      this.resolveFinished();
    })();
    return this.stopping;
  }
}
