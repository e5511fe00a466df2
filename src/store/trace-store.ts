import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { AggregateFunction, AggregateKind } from '../agg/aggregate.js';
import { GroupTable, type KeyPart } from '../agg/group-table.js';
import { EnvironmentError, UsageError } from '../errors.js';
import type { ValueType } from '../plan/expr.js';

/**
 * One machine's memory of its stored queries (issue 20): an embedded DuckDB file. An aggregating
 * query keeps one row per window and group, its aggregates' mergeable states in their wire form,
 * so that a later question re-aggregates windows exactly (counts, sums, histograms) or within a
 * sketch's bound (quantiles, distinct); an event query keeps its events. Each log is named; its
 * rows go as long as its retention says.
 */

/** A field of a stored log: an event's column, a window's group key, or what an aggregate read. */
export interface StoredField {
  readonly name: string;
  readonly type: ValueType;
  readonly unit?: 'ns';
}

/** An aggregate a windows log keeps the states of: `quantiles(duration, 0.5)` is function, argument as printed, params. */
export interface StoredAggregate {
  readonly name: string;
  readonly function: AggregateFunction;
  readonly argument?: string;
  readonly params: readonly number[];
}

/**
 * What a log's rows hold, for a history query to be planned against: an events log's columns, or a
 * windows log's group keys, its aggregates and the fields their arguments read.
 */
export interface StoredSchema {
  readonly columns: readonly StoredField[];
  readonly aggregates: readonly StoredAggregate[];
  readonly argumentFields: readonly StoredField[];
}

/** What a stored log is. */
export interface StoredLog {
  readonly name: string;
  /** The query that fills it, as typed. */
  readonly query: string;
  readonly kind: 'windows' | 'events';
  readonly createdNs: number;
  /** How long its rows stay (ms); undefined: until removed. */
  readonly retainMs: number | undefined;
  /** What its rows hold (undefined for a log written before Fay kept it: history queries cannot read it). */
  readonly schema?: StoredSchema | undefined;
}

/** A log with what it holds here. */
export interface StoredLogSummary extends StoredLog {
  readonly rows: number;
  /** What its rows take, their keys, states and events as stored (DuckDB compresses them on disk). */
  readonly bytes: number;
  readonly firstNs: number | undefined;
  readonly lastNs: number | undefined;
}

/** One stored window of one host: its span and its groups' states. */
export interface StoredWindow {
  readonly host: string;
  readonly startNs: number;
  readonly endNs: number;
  readonly table: GroupTable;
}

/** A name a log may have: what a file system, a shell and SQL all take as it is. */
const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS logs (name VARCHAR PRIMARY KEY, query VARCHAR NOT NULL, kind VARCHAR NOT NULL, created_ns BIGINT NOT NULL, retain_ms BIGINT)`,
  // One row per window and group: the key parts and the states, each as their JSON wire form.
  `CREATE TABLE IF NOT EXISTS windows (name VARCHAR NOT NULL, host VARCHAR NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL, key VARCHAR NOT NULL, states VARCHAR NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS events (name VARCHAR NOT NULL, host VARCHAR NOT NULL, time_ns BIGINT NOT NULL, row VARCHAR NOT NULL)`,
  // Every window a host delivered, with groups or none: what it covered, so that a later question
  // tells a span with nothing in it from a span the host did not cover.
  `CREATE TABLE IF NOT EXISTS spans (name VARCHAR NOT NULL, host VARCHAR NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL)`,
  `ALTER TABLE logs ADD COLUMN IF NOT EXISTS schema VARCHAR`,
  // The standing queries of this agent (their spec as the bus carries it), re-installed when it starts.
  `CREATE TABLE IF NOT EXISTS standing (id VARCHAR PRIMARY KEY, spec VARCHAR NOT NULL, created_ns BIGINT NOT NULL, until_ns BIGINT)`,
  // Standing queries stopped with fay stop, for the agents to tell one that was away (see AgentService).
  `CREATE TABLE IF NOT EXISTS stopped (id VARCHAR PRIMARY KEY, stopped_ns BIGINT NOT NULL)`,
];

/** A standing query as an agent keeps it. */
export interface StandingQuery {
  readonly id: string;
  /** Its QuerySpec, as JSON (checked again when it is re-installed). */
  readonly spec: string;
  readonly createdNs: number;
  readonly untilNs: number | undefined;
}

export class TraceStore {
  /** History scans and exports under way: while there are any, DuckDB may use every core. */
  private reading = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly db: DuckDBConnection,
    /** The database file. */
    readonly path: string,
  ) {}

  /**
   * Work a user waits for (a history query's scan, an export), given every core; the store goes
   * back to one thread when the last such work ends, so that writing never takes more.
   */
  private async read<T>(work: () => Promise<T>): Promise<T> {
    await this.startReading();
    try {
      return await work();
    } finally {
      await this.endReading();
    }
  }

  private async startReading(): Promise<void> {
    if (this.reading++ === 0) await this.db.run(`SET threads = ${availableParallelism()}`);
  }

  private async endReading(): Promise<void> {
    if (--this.reading === 0) await this.db.run('SET threads = 1');
  }

  /**
   * Opens (or creates) the store in `dir`, one file per agent name: two agents on one machine
   * never share a file by accident. A store that cannot be opened (a full disk, a file that is not
   * a database, one another process holds) is an EnvironmentError that says which and why.
   */
  static async open(dir: string, agent = 'local'): Promise<TraceStore> {
    if (!NAME.test(agent)) throw new UsageError(`"${agent}" cannot name a store: use letters, digits, . _ -`);
    const path = join(dir, `${agent}.duckdb`);
    try {
      mkdirSync(dir, { recursive: true });
      // One thread while it only writes: an agent's store is a guest on the traced machine's cores.
      const instance = await DuckDBInstance.create(path, { threads: '1' });
      const db = await instance.connect();
      for (const statement of SCHEMA) await db.run(statement);
      return new TraceStore(instance, db, path);
    } catch (error) {
      throw new EnvironmentError(`cannot open the trace store ${path}: ${(error as Error).message}`, {
        hint: 'check the disk has room and that no other Fay agent uses the same store directory and name',
      });
    }
  }

  close(): void {
    this.db.closeSync();
    this.instance.closeSync();
  }

  /** Creates a log (or finds the one of that name for the same query). */
  async create(log: Omit<StoredLog, 'createdNs'> & { readonly createdNs?: number }): Promise<StoredLog> {
    checkName(log.name);
    const existing = await this.log(log.name);
    if (existing) {
      if (existing.query !== log.query) {
        throw new UsageError(`a stored log named ${log.name} already holds another query: ${existing.query}`, { hint: 'pick another name, or fay store rm it first' });
      }
      return existing;
    }
    const created: StoredLog = { ...log, createdNs: log.createdNs ?? Date.now() * 1e6 };
    await this.db.run('INSERT INTO logs (name, query, kind, created_ns, retain_ms, schema) VALUES ($1, $2, $3, $4, $5, $6)', [
      created.name,
      created.query,
      created.kind,
      BigInt(Math.round(created.createdNs)),
      created.retainMs === undefined ? null : BigInt(Math.round(created.retainMs)),
      created.schema === undefined ? null : JSON.stringify(created.schema),
    ]);
    return created;
  }

  /** A log as created (its rows are not counted: see list()). */
  async log(name: string): Promise<StoredLog | undefined> {
    return (await this.logs(name)).at(0);
  }

  /** The logs as created, or the one of a name, without counting their rows (list() does, reading every row). */
  async logs(name?: string): Promise<StoredLog[]> {
    const reader = await this.db.runAndReadAll(
      `SELECT name, query, kind, created_ns, retain_ms, schema FROM logs${name === undefined ? '' : ' WHERE name = $1'} ORDER BY name`,
      name === undefined ? [] : [name],
    );
    return reader.getRows().map(logOf);
  }

  /** Every log, with how many rows it holds here and the time they span. */
  async list(): Promise<StoredLogSummary[]> {
    const reader = await this.db.runAndReadAll(`
      SELECT l.name, l.query, l.kind, l.created_ns, l.retain_ms,
             coalesce(w.n, 0) + coalesce(e.n, 0), least(w.first_ns, e.first_ns), greatest(w.last_ns, e.last_ns),
             coalesce(w.bytes, 0) + coalesce(e.bytes, 0), l.schema
      FROM logs l
      LEFT JOIN (SELECT name, count(*) n, min(start_ns) first_ns, max(end_ns) last_ns, sum(strlen(key) + strlen(states) + 24) bytes FROM windows GROUP BY name) w ON w.name = l.name
      LEFT JOIN (SELECT name, count(*) n, min(time_ns) first_ns, max(time_ns) last_ns, sum(strlen(row) + 8) bytes FROM events GROUP BY name) e ON e.name = l.name
      ORDER BY l.name`);
    return reader.getRows().map((r) => ({
      ...logOf([r[0], r[1], r[2], r[3], r[4], r[9]]),
      rows: Number(r[5]),
      firstNs: r[6] === null ? undefined : Number(r[6]),
      lastNs: r[7] === null ? undefined : Number(r[7]),
      bytes: Number(r[8]),
    }));
  }

  /** Removes a log and everything it holds; says which names there are when there is no such log. */
  async remove(name: string): Promise<void> {
    await this.existing(name);
    // A standing query kept here would write it again (its agent re-installs it when it starts).
    const writer = (await this.standing()).find((q) => persistedInto(q.spec) === name);
    if (writer) throw new UsageError(`the standing query ${writer.id} writes ${name}`, { hint: `fay stop ${writer.id} first, then remove the log` });
    await this.db.run('DELETE FROM windows WHERE name = $1', [name]);
    await this.db.run('DELETE FROM spans WHERE name = $1', [name]);
    await this.db.run('DELETE FROM events WHERE name = $1', [name]);
    await this.db.run('DELETE FROM logs WHERE name = $1', [name]);
  }

  /** Appends a window of one host: one row per group, through DuckDB's appender. */
  async appendWindow(name: string, window: StoredWindow): Promise<void> {
    const appender = await this.db.createAppender('windows');
    try {
      const start = BigInt(Math.round(window.startNs));
      const end = BigInt(Math.round(window.endNs));
      for (const group of window.table.entries()) {
        appender.appendVarchar(name);
        appender.appendVarchar(window.host);
        appender.appendBigInt(start);
        appender.appendBigInt(end);
        appender.appendVarchar(JSON.stringify(group.key));
        appender.appendVarchar(JSON.stringify(group.states.map((s, i) => window.table.kinds[i]!.encode(s))));
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    await this.db.run('INSERT INTO spans VALUES ($1, $2, $3, $4)', [name, window.host, BigInt(Math.round(window.startNs)), BigInt(Math.round(window.endNs))]);
  }

  /** Appends events of one host, each with its time. */
  async appendEvents(name: string, host: string, rows: readonly { readonly timeNs: number; readonly row: Readonly<Record<string, unknown>> }[]): Promise<void> {
    const appender = await this.db.createAppender('events');
    try {
      for (const { timeNs, row } of rows) {
        appender.appendVarchar(name);
        appender.appendVarchar(host);
        appender.appendBigInt(BigInt(Math.round(timeNs)));
        appender.appendVarchar(JSON.stringify(row));
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  /**
   * The stored windows of a log that overlap [fromNs, toNs), each host's re-aggregated into windows
   * of `everyNs` aligned on the epoch (a stored window goes into the one its start falls in), or
   * left as stored when `everyNs` is undefined.
   */
  async windows(name: string, kinds: readonly AggregateKind[], span: { readonly fromNs?: number; readonly toNs?: number; readonly everyNs?: number } = {}): Promise<RewindowedWindow[]> {
    await this.existing(name);
    // The spans first (a window with no group has one), then their groups.
    const reader = await this.read(() => this.db.runAndReadAll(
      `SELECT host, start_ns, end_ns, NULL, NULL FROM spans WHERE name = $1 AND end_ns > $2 AND start_ns < $3
       UNION ALL
       SELECT host, start_ns, end_ns, key, states FROM windows WHERE name = $1 AND end_ns > $2 AND start_ns < $3
       ORDER BY 1, 2, 4 NULLS FIRST`,
      // ns since the epoch are past 2^53: the open end is 2^62 ns, the year 2116.
      [name, BigInt(Math.round(span.fromNs ?? 0)), span.toNs === undefined ? 2n ** 62n : BigInt(Math.round(span.toNs))],
    ));
    const out = new Map<string, { host: string; startNs: number; endNs: number; table: GroupTable }>();
    /** Each host's stored windows' spans, in time order (the query orders by host and start). */
    const spans = new Map<string, [number, number][]>();
    for (const row of reader.getRows()) {
      const host = String(row[0]);
      const storedStart = Number(row[1]);
      const storedEnd = Number(row[2]);
      let startNs = storedStart;
      let endNs = storedEnd;
      if (span.everyNs !== undefined) {
        startNs = Math.floor(startNs / span.everyNs) * span.everyNs;
        endNs = startNs + span.everyNs;
      }
      const id = `${host}\u0000${startNs}`;
      let window = out.get(id);
      if (!window) out.set(id, (window = { host, startNs, endNs, table: new GroupTable(kinds) }));
      window.endNs = Math.max(window.endNs, endNs);
      if (row[3] === null) {
        const list = spans.get(host);
        if (list) list.push([storedStart, storedEnd]);
        else spans.set(host, [[storedStart, storedEnd]]);
      }
      if (row[3] === null) continue;
      const states = JSON.parse(String(row[4])) as unknown[];
      if (!Array.isArray(states) || states.length !== kinds.length) throw new TypeError(`a stored window of ${name} holds ${states.length} aggregates, the query ${kinds.length}`);
      window.table.mergeGroup(JSON.parse(String(row[3])) as KeyPart[], states.map((s, i) => kinds[i]!.decode(s)));
    }
    const gaps = new Map([...spans].map(([host, list]) => [host, gapsBetween(list)]));
    return [...out.values()].map((window) => ({
      ...window,
      uncovered: (gaps.get(window.host) ?? []).flatMap(([s, e]): [number, number][] => {
        const from = Math.max(s, window.startNs);
        const to = Math.min(e, window.endNs);
        return to > from ? [[from, to]] : [];
      }),
    }));
  }

  /** Keeps a standing query, to be re-installed when this agent starts again. */
  async stand(query: StandingQuery): Promise<void> {
    await this.db.run('INSERT OR REPLACE INTO standing VALUES ($1, $2, $3, $4)', [
      query.id,
      query.spec,
      BigInt(Math.round(query.createdNs)),
      query.untilNs === undefined ? null : BigInt(Math.round(query.untilNs)),
    ]);
  }

  /** The standing queries kept here, oldest first. */
  async standing(): Promise<StandingQuery[]> {
    const reader = await this.db.runAndReadAll('SELECT id, spec, created_ns, until_ns FROM standing ORDER BY created_ns');
    return reader.getRows().map((r) => ({ id: String(r[0]), spec: String(r[1]), createdNs: Number(r[2]), untilNs: r[3] === null ? undefined : Number(r[3]) }));
  }

  /** Forgets a standing query (stopped, or past its --until). */
  async unstand(id: string): Promise<void> {
    await this.db.run('DELETE FROM standing WHERE id = $1', [id]);
  }

  /** Remembers that a standing query was stopped with fay stop (and forgets those stopped before `forgetBeforeNs`). */
  async markStopped(id: string, stoppedNs: number, forgetBeforeNs: number): Promise<void> {
    await this.db.run('INSERT OR REPLACE INTO stopped VALUES ($1, $2)', [id, BigInt(Math.round(stoppedNs))]);
    await this.db.run('DELETE FROM stopped WHERE stopped_ns < $1', [BigInt(Math.round(forgetBeforeNs))]);
  }

  /** The standing queries stopped with fay stop since `sinceNs`, newest first: id and when. */
  async stoppedSince(sinceNs: number): Promise<{ id: string; stoppedNs: number }[]> {
    const reader = await this.db.runAndReadAll('SELECT id, stopped_ns FROM stopped WHERE stopped_ns >= $1 ORDER BY stopped_ns DESC', [BigInt(Math.round(sinceNs))]);
    return reader.getRows().map((r) => ({ id: String(r[0]), stoppedNs: Number(r[1]) }));
  }

  /**
   * An events log's events of [fromNs, toNs), oldest first, `batch` at a time: each its time, host
   * and row (as written). `where` is a SQL condition over `row` and `time_ns` that Fay wrote (see
   * probes/stored/sql.ts), or none.
   */
  async *eventRows(name: string, span: HistorySpan, where: string | undefined, batch = 10_000): AsyncGenerator<{ timeNs: number; host: string; row: Record<string, unknown> }[]> {
    await this.existing(name);
    const filter = eventsWhere(name, span, where);
    await this.startReading();
    try {
      yield* this.streamEvents(`SELECT time_ns, host, row FROM events WHERE ${filter.sql} ORDER BY time_ns`, filter.params, batch);
    } finally {
      await this.endReading();
    }
  }

  private async *streamEvents(sql: string, params: (string | bigint)[], batch: number): AsyncGenerator<{ timeNs: number; host: string; row: Record<string, unknown> }[]> {
    const result = await this.db.stream(sql, params);
    let rows: { timeNs: number; host: string; row: Record<string, unknown> }[] = [];
    for await (const chunk of result.yieldRows()) {
      for (const r of chunk) {
        rows.push({ timeNs: Number(r[0]), host: String(r[1]), row: JSON.parse(String(r[2])) as Record<string, unknown> });
        if (rows.length >= batch) {
          yield rows;
          rows = [];
        }
      }
    }
    if (rows.length > 0) yield rows;
  }

  /**
   * An events log aggregated in SQL (a history query's aggregation pushed down): one row per
   * period of `everyNs` (or one for the whole span) and group, `[periodStartNs, ...keys, ...states]`,
   * in period order, given as columns (DuckDB hands them over faster than rows). `keys` and
   * `states` are SQL expressions Fay wrote, over `row` and `time_ns`.
   */
  async aggregateEvents(name: string, span: HistorySpan, where: string | undefined, keys: readonly string[], states: readonly string[]): Promise<unknown[][]> {
    await this.existing(name);
    const period = span.everyNs === undefined ? '0' : `(time_ns // ${BigInt(Math.round(span.everyNs))}) * ${BigInt(Math.round(span.everyNs))}`;
    const select = [period, ...keys, ...states].join(', ');
    const group = [period, ...keys].map((_, i) => i + 1).join(', ');
    const filter = eventsWhere(name, span, where);
    const reader = await this.read(() => this.db.runAndReadAll(`SELECT ${select} FROM events WHERE ${filter.sql} GROUP BY ${group} ORDER BY 1`, filter.params));
    return reader.getColumns().map((column) => column.map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  }

  /** The first and last time an events log holds (ns), or undefined when it holds none. */
  async eventSpan(name: string, span: HistorySpan): Promise<{ firstNs: number; lastNs: number } | undefined> {
    const filter = eventsWhere(name, span, undefined);
    const reader = await this.read(() => this.db.runAndReadAll(`SELECT min(time_ns), max(time_ns) FROM events WHERE ${filter.sql}`, filter.params));
    const [first, last] = reader.getRows()[0] ?? [];
    return first === null || first === undefined ? undefined : { firstNs: Number(first), lastNs: Number(last) };
  }

  /** The bytes the database's blocks take (what fay agent --store-max holds it under). */
  async usedBytes(): Promise<number> {
    const reader = await this.db.runAndReadAll('SELECT used_blocks * block_size FROM pragma_database_size()');
    return Number(reader.getRows()[0]?.[0] ?? 0);
  }

  /**
   * Holds the store under `maxBytes`: while its blocks take more, the oldest rows go (a share of
   * every log's rows, oldest first, as much as is over), and the freed blocks are given back.
   * Returns how many rows went.
   */
  async enforceBytes(maxBytes: number): Promise<number> {
    let removed = 0;
    for (let round = 0; round < 8; round++) {
      const used = await this.usedBytes();
      if (used <= maxBytes) break;
      // More than the excess, and more each round: DuckDB gives space back a row group (~122,880
      // rows) at a time, so deleting a little more of a group that is still in use frees nothing.
      const share = Math.min(1, (used - maxBytes) / used + 0.05 * 2 ** round);
      for (const [table, column] of [['windows', 'end_ns'], ['events', 'time_ns'], ['spans', 'end_ns']] as const) {
        const cut = await this.db.runAndReadAll(`SELECT quantile_disc(${column}, ${share}) FROM ${table}`);
        const at = cut.getRows()[0]?.[0];
        if (at === null || at === undefined) continue;
        const result = await this.db.run(`DELETE FROM ${table} WHERE ${column} <= $1`, [BigInt(at as bigint)]);
        if (table !== 'spans') removed += Number(result.rowsChanged);
      }
      await this.db.run('CHECKPOINT');
    }
    return removed;
  }

  /** Deletes what each log's retention no longer keeps (rows that ended before now − retention); returns how many rows went. */
  async enforceRetention(nowNs = Date.now() * 1e6): Promise<number> {
    let removed = 0;
    for (const log of await this.list()) {
      if (log.retainMs === undefined) continue;
      const before = BigInt(Math.round(nowNs - log.retainMs * 1e6));
      const table = log.kind === 'events' ? 'events' : 'windows';
      const column = log.kind === 'events' ? 'time_ns' : 'end_ns';
      const result = await this.db.run(`DELETE FROM ${table} WHERE name = $1 AND ${column} < $2`, [log.name, before]);
      removed += Number(result.rowsChanged);
      if (log.kind === 'windows') await this.db.run('DELETE FROM spans WHERE name = $1 AND end_ns < $2', [log.name, before]);
    }
    return removed;
  }

  /**
   * Writes a log as standard Parquet, zstd-compressed, partitioned by host and day (UTC), which
   * DuckDB, pandas or Spark read without Fay: `<dir>/host=<h>/day=<yyyy-mm-dd>/….parquet`.
   */
  async exportParquet(name: string, dir: string): Promise<void> {
    const log = await this.existing(name);
    mkdirSync(dir, { recursive: true });
    const source =
      log.kind === 'events'
        ? `SELECT host, CAST(strftime(to_timestamp(time_ns / 1e9), '%Y-%m-%d') AS VARCHAR) AS day, time_ns, row FROM events WHERE name = ${sqlString(name)}`
        : `SELECT host, CAST(strftime(to_timestamp(start_ns / 1e9), '%Y-%m-%d') AS VARCHAR) AS day, start_ns, end_ns, key, states FROM windows WHERE name = ${sqlString(name)}`;
    await this.read(() => this.db.run(`COPY (${source}) TO ${sqlString(dir)} (FORMAT PARQUET, COMPRESSION ZSTD, PARTITION_BY (host, day), OVERWRITE_OR_IGNORE)`));
  }

  /** A log that exists, or a UsageError that lists those that do. */
  private async existing(name: string): Promise<StoredLog> {
    const log = await this.log(name);
    if (log) return log;
    const names = (await this.list()).map((l) => l.name);
    throw new UsageError(`no stored log is named ${name}`, { hint: names.length > 0 ? `the stored logs here: ${names.join(', ')}` : 'nothing is stored here yet' });
  }
}

/** The log a standing query's spec (JSON, as kept) persists into, if it reads as one. */
function persistedInto(spec: string): string | undefined {
  try {
    const name = (JSON.parse(spec) as { options?: { persist?: { name?: unknown } } }).options?.persist?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

/** Gaps shorter than this between stored windows are the clock's jitter, not time the query was away. */
const JITTER_NS = 1e6;

/** The time between a host's stored windows that none covers (each at least JITTER_NS): its query was not running then. */
function gapsBetween(spans: readonly [number, number][]): [number, number][] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const gaps: [number, number][] = [];
  let end = sorted[0]?.[1] ?? 0;
  for (const [s, e] of sorted.slice(1)) {
    if (s - end >= JITTER_NS) gaps.push([end, s]);
    end = Math.max(end, e);
  }
  return gaps;
}

/**
 * A stored window as a history query reads it: re-windowed (each stored window goes into the
 * period its start falls in), with the parts of the period its host's stored windows leave
 * uncovered between its first and last.
 */
export interface RewindowedWindow extends StoredWindow {
  readonly uncovered: readonly (readonly [number, number])[];
}

/** The time a history query reads: [fromNs, toNs), in periods of everyNs (none: one for all). */
export interface HistorySpan {
  readonly fromNs?: number;
  readonly toNs?: number;
  readonly everyNs?: number;
}

/**
 * The condition on a log's events for a history scan: its name, the span's bounds where it has them
 * (ns since the epoch are past 2^53: BIGINT parameters), and Fay's SQL of the query's filter.
 */
function eventsWhere(name: string, span: HistorySpan, where: string | undefined): { sql: string; params: (string | bigint)[] } {
  const parts = ['name = $1'];
  const params: (string | bigint)[] = [name];
  for (const [bound, op] of [[span.fromNs, '>='], [span.toNs, '<']] as const) {
    if (bound === undefined) continue;
    params.push(BigInt(Math.round(bound)));
    parts.push(`time_ns ${op} $${params.length}`);
  }
  if (where !== undefined) parts.push(`(${where})`);
  return { sql: parts.join(' AND '), params };
}

/** A log from its row of `logs`: name, query, kind, created_ns, retain_ms, schema. */
function logOf(r: readonly unknown[]): StoredLog {
  return {
    name: String(r[0]),
    query: String(r[1]),
    kind: r[2] === 'events' ? 'events' : 'windows',
    createdNs: Number(r[3]),
    retainMs: r[4] === null ? undefined : Number(r[4]),
    schema: r[5] === null ? undefined : (JSON.parse(r[5] as string) as StoredSchema),
  };
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new UsageError(`"${name}" cannot name a stored log: a letter, then letters, digits, . _ - (64 at most)`);
}

/** A SQL string literal (names are checked; paths may hold anything but NUL). */
function sqlString(text: string): string {
  if (text.includes('\u0000')) throw new UsageError('a path cannot hold a NUL character');
  return `'${text.replaceAll("'", "''")}'`;
}
