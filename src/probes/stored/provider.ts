import type { AggregateKind } from '../../agg/aggregate.js';
import { GroupTable, type KeyPart } from '../../agg/group-table.js';
import { createAggregate } from '../../agg/registry.js';
import { closestNames, UsageError } from '../../errors.js';
import type { FieldSpec, ProbeCapabilities, ResolveFailure, SourceSchema } from '../../plan/catalog.js';
import { compileExpr, type Row } from '../../plan/evaluate.js';
import { conjuncts, fieldsOf, type Expr } from '../../plan/expr.js';
import type { AggregateSpec } from '../../plan/logical.js';
import type { ProbeStage } from '../../plan/planner.js';
import { printExpr } from '../../plan/print-expr.js';
import { formatClock, formatDuration } from '../../output/format.js';
import type { HistorySpan, RewindowedWindow, StoredAggregate, StoredLog, TraceStore } from '../../store/trace-store.js';
import type { CompiledProbe, CompileOptions, ProbeListing, ProbeSink, Provider, RunningProbe } from '../provider.js';
import { sqlAggregate, sqlKey, sqlOf } from './sql.js';

/**
 * `stored:<log>`: a log the trace store keeps (fay query --persist) as a source of FayQL, for
 * history queries planned like live ones. Its probe stage is a scan of each agent's store: the
 * predicate and the aggregation go into the store's SQL where it can take them (events logs:
 * count, sum, min, max, avg over fields), the rest is evaluated on the rows; a windows log's
 * stored states are re-keyed and re-windowed into the query's groups and periods. The machine and
 * cluster stages are the live ones.
 */

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Fields every stored row has. */
const COMMON_FIELDS: readonly FieldSpec[] = [
  { name: 'time', type: 'int', description: "the event's time (an events log) or its window's start (a windows log), ns since the epoch" },
  { name: 'host', type: 'str', description: 'the machine that collected it' },
];

/** What a stored source's probe stage can do: the scan evaluates anything; the store's SQL keeps some aggregates. */
function capabilities(kind: StoredLog['kind']): ProbeCapabilities {
  return {
    cannotEvaluate: () => undefined,
    cannotGroupBy: () => undefined,
    cannotAggregate: (a: AggregateSpec) =>
      kind === 'windows' || sqlAggregate(a) !== undefined ? undefined : 'the store computes count, sum, min, max and avg of plain fields; the agent computes the others from the stored events',
  };
}

/** The aggregate of a windows log a history aggregate re-aggregates: the same function and argument (quantiles at any p). */
function storedSlot(spec: AggregateSpec, stored: readonly StoredAggregate[]): number {
  const argument = spec.argument === undefined ? undefined : printExpr(spec.argument);
  return stored.findIndex(
    (s) =>
      s.function === spec.function &&
      s.argument === argument &&
      (spec.function === 'quantiles' || (s.params.length === spec.params.length && s.params.every((p, i) => p === spec.params[i]))),
  );
}

function describeStored(a: StoredAggregate): string {
  return `${a.function}(${[a.argument, ...a.params].filter((x) => x !== undefined).join(', ')})`;
}

/** The bounds of `time` a predicate's top-level conjuncts set with constants, for the scan to start and stop at. */
function timeBounds(filter: Expr | undefined): { fromNs?: number; toNs?: number } {
  let fromNs: number | undefined;
  let toNs: number | undefined;
  for (const part of conjuncts(filter)) {
    if (part.kind !== 'Binary') continue;
    const flipped: Readonly<Record<string, string>> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
    let op: string = part.operator;
    let other: Expr;
    if (part.left.kind === 'Field' && part.left.name === 'time') other = part.right;
    else if (part.right.kind === 'Field' && part.right.name === 'time') {
      other = part.left;
      op = flipped[op] ?? op;
    } else continue;
    if (fieldsOf(other).size > 0 || other.type !== 'int') continue;
    const value = compileExpr(other)({});
    if (typeof value !== 'number') continue;
    if (op === '>' || op === '>=' || op === '==') fromNs = Math.max(fromNs ?? -Infinity, value);
    if (op === '<' || op === '<=' || op === '==') toNs = Math.min(toNs ?? Infinity, value + 1);
  }
  return { ...(fromNs !== undefined && { fromNs: Math.max(0, fromNs) }), ...(toNs !== undefined && { toNs }) };
}

/** One period of the scan: [startNs, endNs). */
function periodOf(timeNs: number, everyNs: number | undefined): number {
  return everyNs === undefined ? 0 : Math.floor(timeNs / everyNs) * everyNs;
}

export class StoredProvider implements Provider {
  readonly name = 'stored';
  readonly prefixes = ['stored'] as const;
  /** The logs a query may name, as the agents (or this machine's store) last said. */
  private readonly logs = new Map<string, StoredLog>();

  /** Learns which logs there are (the client asks the agents; an agent reads its store). */
  know(logs: readonly StoredLog[]): void {
    for (const log of logs) if (log.schema !== undefined || !this.logs.has(log.name)) this.logs.set(log.name, log);
  }

  resolve(point: string): SourceSchema | ResolveFailure {
    const name = point.slice('stored:'.length);
    const names = [...this.logs.keys()].sort();
    const log = this.logs.get(name);
    if (!NAME.test(name) || log === undefined) {
      return {
        reason: `no stored log is named "${name}"`,
        suggestions: closestNames(name, names).map((n) => `stored:${n}`),
        hint: names.length > 0 ? `the stored logs: ${names.join(', ')}` : 'nothing is stored yet: fay query --persist <name> \'<query>\' starts a log',
      };
    }
    if (log.schema === undefined) return { reason: `the stored log ${name} was written by an older Fay, which did not keep what its rows hold`, hint: 'fay store export it as Parquet to read it' };
    const own: FieldSpec[] = [...log.schema.columns, ...(log.kind === 'windows' ? log.schema.argumentFields : [])].map((f) => ({
      name: f.name,
      type: f.type,
      description: log.kind === 'windows' && !log.schema!.columns.includes(f) ? 'an aggregate of the stored windows reads it' : `stored by: ${log.query}`,
      ...(f.unit !== undefined && { unit: f.unit }),
    }));
    const fields = new Map<string, FieldSpec>([...COMMON_FIELDS, ...own].map((f) => [f.name, f]));
    return { point: `stored:${name}`, provider: this.name, fields, capabilities: capabilities(log.kind) };
  }

  list(glob: string): Promise<ProbeListing[]> {
    if (!glob.startsWith('stored:') && glob !== '*') return Promise.resolve([]);
    return Promise.resolve([...this.logs.values()].map((l) => ({ point: `stored:${l.name}`, description: `a stored ${l.kind} log: ${l.query}`, available: l.schema !== undefined })));
  }

  compile(stage: ProbeStage, options: CompileOptions): CompiledProbe {
    if (stage.sources.length !== 1) throw new UsageError('a history query reads one stored log', { hint: 'e.g. stored:opens | count() by comm every 1m' });
    if (stage.sampleRate !== undefined) throw new UsageError('a history query reads every stored row: sample is for live probes', { hint: 'leave out the sample stage' });
    if (stage.record !== undefined) throw new UsageError('record keeps the last events of live probes: a history query selects stored ones', { hint: 'use select … | limit N' });
    const name = stage.sources[0]!.schema.point.slice('stored:'.length);
    const log = this.logs.get(name)!;
    const open = options.store;
    const scan = log.kind === 'windows' ? windowsScan(stage, log, options) : eventsScan(stage, log, options);
    return {
      program: { provider: this.name, language: 'sql', text: scan.describe },
      keepsTime: true,
      start: (sink) => {
        if (open === undefined) throw new Error('this agent has no trace store to read');
        let stopped = false;
        const finished = (async () => {
          const store = await open();
          await scan.run(store, sink, () => stopped);
        })();
        const attached = Promise.resolve();
        const running: RunningProbe = {
          attached,
          finished,
          stop: async () => {
            stopped = true;
            await finished.catch(() => undefined);
          },
        };
        return running;
      },
    };
  }
}

/** A scan of one log, ready to run against an agent's store. */
interface Scan {
  readonly describe: string;
  run(store: TraceStore, sink: ProbeSink, stopped: () => boolean): Promise<void>;
}

/** The period of the query (--every or `every`), in ns; undefined: one result for the whole span. */
function everyNsOf(options: CompileOptions): number | undefined {
  return options.windowed ? options.flushPeriodMs * 1e6 : undefined;
}

/**
 * A windows log: its stored windows, re-windowed into the query's periods (each goes into the
 * period its start falls in), their groups re-keyed and filtered by keys, host and time, and each
 * aggregate of the query taken from the stored aggregate of the same function and argument.
 */
function windowsScan(stage: ProbeStage, log: StoredLog, options: CompileOptions): Scan {
  const schema = log.schema!;
  const keyNames = new Set([...schema.columns.map((c) => c.name), 'host', 'time']);
  const refuse = (what: string, expr: Expr | undefined) => {
    const read = [...fieldsOf(expr)].filter((f) => !keyNames.has(f));
    if (read.length > 0) {
      throw new UsageError(`the stored log ${log.name} keeps aggregates of ${read.join(', ')}, not each event's value: ${what} can use its keys (${schema.columns.map((c) => c.name).join(', ') || 'none'}), host or time`, {
        hint: `it was written by: ${log.query}`,
      });
    }
  };
  refuse('a filter', stage.filter);
  const aggregate = stage.aggregate;
  if (aggregate === undefined) {
    throw new UsageError(`the stored log ${log.name} keeps windows of aggregates, not events: a history query over it aggregates them`, {
      hint: `e.g. stored:${log.name} | ${schema.aggregates.map(describeStored).join(', ')} by ${schema.columns.map((c) => c.name).join(', ') || 'host'} every 1m`,
    });
  }
  for (const k of aggregate.keys) refuse('a group key', k.expr);
  const slots = aggregate.aggregates.map((a) => {
    const slot = storedSlot(a, schema.aggregates);
    if (slot < 0) {
      throw new UsageError(`the stored log ${log.name} has no ${a.function}(${[a.argument && printExpr(a.argument), ...a.params].filter((x) => x !== undefined).join(', ')}) to re-aggregate`, {
        hint: `it keeps ${schema.aggregates.map(describeStored).join(', ')} (a history aggregate takes the stored one of the same function and argument)`,
      });
    }
    return slot;
  });
  const storedKinds = schema.aggregates.map((a) => createAggregate({ function: a.function, params: a.params }));
  const kinds: AggregateKind[] = aggregate.aggregates.map(createAggregate);
  const filter = stage.filter && compileExpr(stage.filter);
  const keys = aggregate.keys.map((k) => compileExpr(k.expr));
  const everyNs = everyNsOf(options);
  const bounds = timeBounds(stage.filter);
  return {
    describe: `scan the windows of ${log.name}${bounds.fromNs !== undefined || bounds.toNs !== undefined ? ' in the time the filter bounds' : ''}; re-key them by ${aggregate.keys.map((k) => k.name).join(', ') || 'nothing'}; ${everyNs === undefined ? 'one result for all' : `re-window into ${everyNs / 1e6} ms`}`,
    async run(store, sink, stopped) {
      const span: HistorySpan = { ...bounds, ...(everyNs !== undefined && { everyNs }) };
      const windows = (await store.windows(log.name, storedKinds, span)).filter((w) => w.host === options.host).sort((a, b) => a.startNs - b.startNs);
      let out: { table: GroupTable; startNs: number; endNs: number } | undefined;
      const flush = () => {
        if (out) sink.partial({ table: out.table, startNs: out.startNs, endNs: out.endNs });
        out = undefined;
      };
      for (const w of windows) {
        if (stopped()) break;
        if (everyNs !== undefined) flush();
        out ??= { table: new GroupTable(kinds, { maxGroups: options.maxGroups }), startNs: w.startNs, endNs: w.endNs };
        out.endNs = Math.max(out.endNs, w.endNs);
        for (const group of w.table.entries()) {
          const row: Record<string, KeyPart> = { host: w.host, time: w.startNs };
          schema.columns.forEach((c, i) => (row[c.name] = group.key[i]!));
          if (filter && !filter(row)) continue;
          out.table.mergeGroup(
            keys.map((k) => k(row as Row)),
            slots.map((slot, i) => kinds[i]!.decode(storedKinds[slot]!.encode(group.states[slot]))),
          );
        }
      }
      flush();
      const partly = partlyStored(windows, everyNs);
      if (partly.length > 0) sink.notice(describePartlyStored(partly, everyNs));
    },
  };
}

/** What a window of a windows log lacks: the spans of it its host stored nothing for, within the host's first and last stored window. */
interface PartlyStored {
  readonly startNs: number;
  readonly endNs: number;
  readonly gaps: readonly (readonly [number, number])[];
}

/**
 * The windows of the answer a host stored only part of: re-windowed, those whose stored spans
 * leave gaps; without a period (one answer for the whole span), the gaps between stored windows.
 */
function partlyStored(windows: readonly RewindowedWindow[], everyNs: number | undefined): PartlyStored[] {
  if (everyNs !== undefined) return windows.filter((w) => w.uncovered.length > 0).map((w) => ({ startNs: w.startNs, endNs: w.endNs, gaps: w.uncovered }));
  const gaps: [number, number][] = [];
  for (let i = 1; i < windows.length; i++) if (windows[i]!.startNs - windows[i - 1]!.endNs >= 1e6) gaps.push([windows[i - 1]!.endNs, windows[i]!.startNs]);
  return gaps.length === 0 ? [] : [{ startNs: windows[0]!.startNs, endNs: windows.at(-1)!.endNs, gaps }];
}

/** A notice naming the first few partly stored windows and what each lacks. */
function describePartlyStored(partly: readonly PartlyStored[], everyNs: number | undefined): string {
  const gap = ([s, e]: readonly [number, number]) => `${formatClock(s)}–${formatClock(e)}`;
  const lacking = (p: PartlyStored) => {
    const missing = p.gaps.reduce((n, [s, e]) => n + e - s, 0);
    return `${p.gaps.slice(0, 3).map(gap).join(', ')}${p.gaps.length > 3 ? ` and ${p.gaps.length - 3} more` : ''} (${formatDuration(missing)} of ${formatDuration(p.endNs - p.startNs)})`;
  };
  const why = 'its agent was not running the query then';
  if (everyNs === undefined) return `the answer lacks ${lacking(partly[0]!)} of this host's span: ${why}`;
  const shown = partly.slice(0, 3).map((p) => `the window at ${formatClock(p.startNs)} lacks ${lacking(p)}`);
  return `${partly.length} window${partly.length === 1 ? ' is' : 's are'} only partly stored here (${why}): ${shown.join('; ')}${partly.length > 3 ? `; and ${partly.length - 3} more` : ''}`;
}

/**
 * An events log: the aggregation in the store's SQL when the query's filter, keys and aggregates
 * all go there; otherwise its events, filtered by SQL as far as that goes, handed to the machine
 * stage (and aggregated here for what the probe stage keeps), one period at a time.
 */
function eventsScan(stage: ProbeStage, log: StoredLog, options: CompileOptions): Scan {
  const everyNs = everyNsOf(options);
  const bounds = timeBounds(stage.filter);
  const span: HistorySpan = { ...bounds, ...(everyNs !== undefined && { everyNs }) };
  const whereSql = stage.filter === undefined ? undefined : sqlOf(stage.filter);
  const aggregate = stage.aggregate;
  const keySql = aggregate?.keys.map((k) => sqlKey(k.expr));
  const aggSql = aggregate?.aggregates.map(sqlAggregate);
  const pushed =
    aggregate !== undefined && stage.ship === undefined && (stage.filter === undefined || whereSql !== undefined) && keySql!.every((k) => k !== undefined) && aggSql!.every((a) => a !== undefined);
  const kinds = aggregate?.aggregates.map(createAggregate) ?? [];
  const newTable = () => new GroupTable(kinds, { maxGroups: options.maxGroups });
  if (pushed) {
    const keys = keySql;
    const aggs = aggSql;
    return {
      describe: `SELECT period, ${keys.length > 0 ? 'keys, ' : ''}${aggregate.aggregates.map((a) => a.name).join(', ')} FROM the events of ${log.name}${whereSql === undefined ? '' : ` WHERE ${whereSql}`} GROUP BY period${keys.length > 0 ? ', keys' : ''} (in the store)`,
      async run(store, sink) {
        // Unfiltered, the rows' own periods (or first and last times) are the log's span: no second scan for it.
        const spanOfRows = stage.filter === undefined;
        const extra = spanOfRows && everyNs === undefined ? ['min(time_ns)', 'max(time_ns)'] : [];
        const columns = await store.aggregateEvents(log.name, span, whereSql, keys.map((k) => k.sql), [...aggs.flatMap((a) => a.columns), ...extra]);
        const periods = columns[0] as number[];
        const extent = spanOfRows ? extentOfRows(periods, extra.length > 0 ? (columns.slice(-2) as [number[], number[]]) : undefined) : await store.eventSpan(log.name, span);
        if (extent === undefined) return;
        const byPeriod = new Map<number, GroupTable>();
        for (let row = 0; row < periods.length; row++) {
          const period = periods[row]!;
          let table = byPeriod.get(period);
          if (!table) byPeriod.set(period, (table = newTable()));
          let at = 1 + keys.length;
          const states = aggs.map((a, i) => {
            const values = a.columns.map(() => columns[at++]![row]);
            return kinds[i]!.decode(a.wire(values));
          });
          table.mergeGroup(
            keys.map((k, i) => (columns[1 + i]![row] as KeyPart | null) ?? k.orElse),
            states,
          );
        }
        for (const [startNs, endNs] of periodsOf(extent, everyNs)) sink.partial({ table: byPeriod.get(everyNs === undefined ? 0 : startNs) ?? newTable(), startNs, endNs });
      },
    };
  }
  const filter = stage.filter && compileExpr(stage.filter);
  const keys = aggregate?.keys.map((k) => compileExpr(k.expr)) ?? [];
  const inputs = aggregate?.aggregates.map((a) => (a.argument ? compileExpr(a.argument) : () => undefined)) ?? [];
  return {
    describe: `scan the events of ${log.name}${whereSql === undefined ? '' : ` WHERE ${whereSql} (in the store)`}; the agent ${aggregate ? 'aggregates' : 'filters'} them${filter && whereSql === undefined ? ' and filters them' : ''}`,
    async run(store, sink, stopped) {
      const extent = await store.eventSpan(log.name, span);
      if (extent === undefined) return;
      let table = aggregate ? newTable() : undefined;
      let current: number | undefined;
      const close = (startNs: number, endNs: number) => {
        if (table) {
          sink.partial({ table, startNs, endNs });
          table = newTable();
        } else sink.period(startNs, endNs);
      };
      const periods = periodsOf(extent, everyNs);
      let next = 0;
      const closeUpTo = (period: number) => {
        while (next < periods.length && periods[next]![0] < period) {
          const [startNs, endNs] = periods[next++]!;
          close(startNs, endNs);
        }
      };
      for await (const batch of store.eventRows(log.name, span, whereSql)) {
        if (stopped()) break;
        const shipped: Row[] = [];
        for (const e of batch) {
          const row = { ...e.row, time: e.timeNs, host: e.host } as Row;
          if (filter && whereSql === undefined && !filter(row)) continue;
          const period = periodOf(e.timeNs, everyNs);
          if (period !== current) {
            if (shipped.length > 0) sink.events(shipped.splice(0));
            closeUpTo(period);
            current = period;
          }
          if (table && aggregate) table.add(keys.map((k) => k(row)), inputs.map((input) => input(row)), e.timeNs);
          if (stage.ship) shipped.push(row);
        }
        if (shipped.length > 0) sink.events(shipped);
      }
      closeUpTo(Infinity);
    },
  };
}

/** The span of aggregated rows: their first and last periods, or the least and greatest of their first and last `times`. */
function extentOfRows(periods: readonly number[], times: readonly [readonly number[], readonly number[]] | undefined): { firstNs: number; lastNs: number } | undefined {
  if (periods.length === 0) return undefined;
  const [firsts, lasts] = times ?? [periods, periods];
  let firstNs = Infinity;
  let lastNs = -Infinity;
  for (let i = 0; i < periods.length; i++) {
    firstNs = Math.min(firstNs, firsts[i]!);
    lastNs = Math.max(lastNs, lasts[i]!);
  }
  return { firstNs, lastNs };
}

/** The periods from the first event's to the last's, each [start, end); without a period, one for all. */
function periodsOf(extent: { firstNs: number; lastNs: number }, everyNs: number | undefined): [number, number][] {
  if (everyNs === undefined) return [[extent.firstNs, extent.lastNs + 1]];
  const out: [number, number][] = [];
  for (let start = periodOf(extent.firstNs, everyNs); start <= extent.lastNs; start += everyNs) out.push([start, start + everyNs]);
  return out;
}
