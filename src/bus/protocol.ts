import { z } from 'zod';
import { BusMessageError, decodeMessage, encodeMessage } from './codec.js';

/**
 * The messages between clients and agents, versioned and checked on receipt.
 *
 *   fay.hosts.<host>        agent → clients   hello, bye (a hello also answers a ping); agents hear
 *                           (and agents)      each other's too, for the standing queries stopped while one was away
 *   fay.beats.<shard>.<host> agent → clients  heartbeats, by shard: a client hears them all, unless a merge tree's
 *                           or aggregators    aggregators do (each its shards'), who vouch for the hosts they hear
 *   fay.agents.ping         client → agents   "announce yourselves"
 *   fay.queries.lease       client → agents   a query and its lease; the first one starts it, later ones
 *                                             renew it (and start it on an agent that joins late)
 *   fay.queries.stop        client → agents   stop a query
 *   fay.queries.list        client → agents   which queries run where (answered on the reply inbox)
 *   fay.queries.logs        client → agents   which logs each agent's trace store keeps (answered on the reply inbox)
 *   fay.queries.store       client → agents   fay store ls / rm / export on the agents' stores (answered on the reply inbox)
 *   fay.results.<id>.<host> agent → client    status, events, notices, dumps, detaching, done
 *   fay.windows.<id>.<shard>.<host>
 *                           agent → client    its windows (the bulk); in a merge tree, to the aggregator that owns
 *                           or aggregator     the shard (shardOf(host)), which also hears the host's done there
 *   fay.aggregators.<name>  aggregator → all  hello, heartbeat (with its load), bye; a hello also answers a ping
 *   fay.merged.<id>.<level>.<shard>.<name>
 *                           aggregator → client  a period's windows of its hosts merged into one, and its final word;
 *                           or the level above   a tree of more levels: level n + 1 takes level n's partials by
 *                                                shards of their names, as level 1 takes the hosts' windows
 *
 * <host> is the agent's host name as a subject token (hostToken). A client takes a message on a
 * host's subject only if the message names that host, so a server that gives each host its own
 * user, allowed to publish only on its own subjects, keeps agents from speaking for each other.
 * The sample nats-server configuration (deploy/nats-server.conf) lets agents publish only on
 * fay.hosts.*, fay.beats.*.*, fay.results.> and fay.windows.>, aggregators only on fay.merged.>
 * and fay.aggregators.*, and clients only on fay.agents.ping and fay.queries.>: none can pose as
 * another.
 */
export const PROTOCOL_VERSION = 8;

/** The deepest merge tree: levels of aggregators between the agents and the client. */
export const MAX_TREE_LEVELS = 4;

/** Shards of the host names: an aggregator of a merge tree takes whole shards (docs/cluster.md). */
export const SHARDS = 256;

/** The shard of a host: FNV-1a of its name, modulo SHARDS, as two hex digits (a subject token). */
export function shardOf(host: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < host.length; i++) h = Math.imul(h ^ host.charCodeAt(i), 0x01000193) >>> 0;
  return (h % SHARDS).toString(16).padStart(2, '0');
}

export const SUBJECTS = {
  host: (host: string) => `fay.hosts.${hostToken(host)}`,
  hosts: 'fay.hosts.*',
  beat: (host: string) => `fay.beats.${shardOf(host)}.${hostToken(host)}`,
  beats: 'fay.beats.*.*',
  beatsOfShard: (shard: string) => `fay.beats.${shard}.*`,
  ping: 'fay.agents.ping',
  lease: 'fay.queries.lease',
  stop: 'fay.queries.stop',
  list: 'fay.queries.list',
  logs: 'fay.queries.logs',
  store: 'fay.queries.store',
  results: (queryId: string, host: string) => `fay.results.${queryId}.${hostToken(host)}`,
  resultsOf: (queryId: string) => `fay.results.${queryId}.*`,
  windows: (queryId: string, host: string) => `fay.windows.${queryId}.${shardOf(host)}.${hostToken(host)}`,
  windowsOf: (queryId: string) => `fay.windows.${queryId}.*.*`,
  windowsOfShard: (queryId: string, shard: string) => `fay.windows.${queryId}.${shard}.*`,
  aggregator: (name: string) => `fay.aggregators.${hostToken(name)}`,
  aggregators: 'fay.aggregators.*',
  /** An aggregator's partials, by its level in the tree and the shard of its name (where the level above takes them). */
  merged: (queryId: string, level: number, aggregator: string) => `fay.merged.${queryId}.${level}.${shardOf(aggregator)}.${hostToken(aggregator)}`,
  mergedOf: (queryId: string, level: number) => `fay.merged.${queryId}.${level}.*.*`,
  mergedOfShard: (queryId: string, level: number, shard: string) => `fay.merged.${queryId}.${level}.${shard}.*`,
} as const;

/**
 * A host name as one subject token: letters, digits, `-` and `_` stay; anything else (the dots of
 * a domain name) becomes `~` and its code in hex (web-1.example → web-1~2eexample).
 */
export function hostToken(host: string): string {
  return host.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.codePointAt(0)!.toString(16)}`);
}

/** Whether a message naming `host` came on a subject of that host (its last token). */
function fromHost(subject: string, host: string): boolean {
  return subject.slice(subject.lastIndexOf('.') + 1) === hostToken(host);
}

/** The largest message either side accepts (NATS' default max_payload), decompressed. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * Bounds of every field a receiver reads (docs/architecture.md, "Bounds of the bus messages"):
 * a message outside them is dropped and counted, as a malformed one is. No message, forged or
 * not, can make an agent keep probes for days, arm a timer Node.js cannot hold, or hand its
 * caps values it was never meant to take.
 */
export const BUS_BOUNDS = {
  /** A lease: from 100 ms to 10 minutes (the client renews it every third of it). */
  leaseMs: { min: 100, max: 600_000 },
  /** A heartbeat period. */
  heartbeatMs: { min: 10, max: 600_000 },
  /** The refresh and emit periods a query may ask for: 10 ms to a week (as the language's own). */
  periodMs: { min: 10, max: 7 * 86_400_000 },
  /** Times, in ns since the epoch: 0 up to 2^63 (the year 2262). */
  maxNs: 2 ** 63,
  maxGroups: 1_000_000,
  maxEventsPerSecond: 10_000_000,
  maxMemoryBytes: 16 * 2 ** 30,
  /** Characters of the JSON of a query's provider options (each provider bounds its own values). */
  maxProviderOptionsChars: 16 * 1024,
  /** Characters of one string a result or an event carries. */
  maxCellChars: 64 * 1024,
} as const;

const v = z.literal(PROTOCOL_VERSION);
const name = z.string().min(1).max(253);
const queryId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const ns = z.number().finite().min(0).max(BUS_BOUNDS.maxNs);
const count = z.number().int().nonnegative();
const text = (max: number) => z.string().max(max);
const between = (bounds: { min: number; max: number }) => z.number().min(bounds.min).max(bounds.max);
const upTo = (max: number) => z.number().int().positive().max(max);
/** What a cell of an event row or a dump may be: a scalar (a stack travels as its text). */
const cell = z.union([text(BUS_BOUNDS.maxCellChars), z.number(), z.boolean(), z.null()]);

export const AgentAnnouncement = z.object({
  v,
  kind: z.enum(['hello', 'heartbeat', 'bye']),
  host: name,
  /** Changes each time the agent starts: a restarted agent is a new incarnation of its host. */
  incarnation: text(64),
  version: text(64),
  kernel: text(256),
  providers: z.array(text(64)).max(64),
  queries: z.array(queryId).max(10_000),
  /** Messages this agent received and dropped (malformed, oversize, wrong version). */
  rejected: count,
  /** Standing queries stopped with fay stop lately: an agent that was away then and resumed one stops it on hearing this. */
  stopped: z.array(queryId).max(1000).optional(),
  heartbeatMs: between(BUS_BOUNDS.heartbeatMs).int(),
});
export type AgentAnnouncement = z.infer<typeof AgentAnnouncement>;

const aggregateFunction = z.enum(['count', 'sum', 'min', 'max', 'avg', 'stddev', 'hist', 'lhist', 'quantiles', 'distinct', 'topk', 'first', 'last', 'sample']);

const logName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/);

export const QuerySpec = z.object({
  id: queryId,
  text: text(64 * 1024),
  /** Who asked (user@host), for fay ps. */
  client: text(256),
  startedNs: ns,
  /** The agent stops the query if no renewal comes within this long. */
  leaseMs: between(BUS_BOUNDS.leaseMs).int(),
  /** Host name globs; absent: every agent. */
  hosts: z.array(text(253)).max(1000).optional(),
  /**
   * A standing query: it outlives its client. Each agent keeps it in its trace store, runs it without
   * a lease, re-installs it when it starts again, and ends it only on a stop, or at `untilNs`.
   */
  standing: z.object({ untilNs: ns.optional() }).optional(),
  /**
   * The query goes through a merge tree: aggregators merge the windows of their shards' hosts per
   * period and pass one partial up. What they need to merge them without planning the query.
   */
  tree: z
    .object({
      aggregates: z.array(z.object({ function: aggregateFunction, params: z.array(z.number().finite()).max(64) })).max(256),
      maxGroups: upTo(BUS_BOUNDS.maxGroups),
      periodMs: between(BUS_BOUNDS.periodMs),
      /** A running result takes a window that came after its period closed into the next period. */
      running: z.boolean(),
    })
    .optional(),
  options: z.object({
    refreshMs: between(BUS_BOUNDS.periodMs).optional(),
    everyMs: between(BUS_BOUNDS.periodMs).optional(),
    limits: z
      .object({
        maxGroups: upTo(BUS_BOUNDS.maxGroups).optional(),
        maxEventsPerSecond: upTo(BUS_BOUNDS.maxEventsPerSecond).optional(),
        maxMemoryBytes: upTo(BUS_BOUNDS.maxMemoryBytes).optional(),
      })
      .optional(),
    /**
     * Settings of particular providers, provider name → its options: opaque here, checked by the
     * provider on each agent (a bad one is refused as the query's mistake). Bounded in size only.
     */
    /** Each agent keeps what the query produces in its trace store, under this log's name, for this long (ms). */
    persist: z
      .object({
        name: logName,
        retainMs: z.number().int().positive().max(10 * 366 * 86_400_000).optional(),
      })
      .optional(),
    providers: z
      .record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), z.unknown())
      .refine((o) => Object.keys(o).length <= 64 && JSON.stringify(o).length <= BUS_BOUNDS.maxProviderOptionsChars, {
        message: `at most 64 providers' options in ${BUS_BOUNDS.maxProviderOptionsChars} characters of JSON`,
      })
      .optional(),
  }),
});
export type QuerySpec = z.infer<typeof QuerySpec>;

export const ClientMessage = z.discriminatedUnion('kind', [
  z.object({ v, kind: z.literal('lease'), spec: QuerySpec }),
  z.object({ v, kind: z.literal('stop'), id: queryId }),
  z.object({ v, kind: z.literal('list') }),
  z.object({ v, kind: z.literal('logs') }),
  /** fay store …, done by the agent that holds the store: list its logs, remove one, or export one as Parquet into `dir` (on the agent's machine). */
  z.object({ v, kind: z.literal('store'), op: z.enum(['list', 'remove', 'export']), log: logName.optional(), dir: text(4096).optional() }),
  z.object({ v, kind: z.literal('ping') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

const cells = z.array(z.array(cell).max(1024)).max(100_000);

/** What a host's window and an aggregator's partial both carry: which part it is, its span, its counts of lost events, its table. */
const windowBody = {
  /** A large window travels in parts (each a table of some of its groups): this is part `part` of `parts`. */
  part: count,
  parts: z.number().int().positive().max(10_000),
  startNs: ns,
  endNs: ns,
  droppedEvents: count,
  /** Events its probes could not count: a kernel map was full. */
  uncountedEvents: count,
  /** GroupTable wire form; decoded (and checked) by the receiver against the query's aggregates. */
  table: z.unknown(),
};
const fromAgent = { v, id: queryId, host: name, incarnation: text(64) };

export const AgentMessage = z.discriminatedUnion('kind', [
  z.object({
    ...fromAgent,
    kind: z.literal('status'),
    state: z.enum(['accepted', 'refused']),
    reason: text(8192).optional(),
    /** For a refusal the user caused or can fix: what to do next, and the exit code it means (2 usage, 3 machine). */
    hint: text(4096).optional(),
    exitCode: z.union([z.literal(2), z.literal(3)]).optional(),
  }),
  z.object({
    ...fromAgent,
    kind: z.literal('window'),
    /** The agent's window number for this query, from 0; a coalesced window covers several. */
    seq: count,
    seqEnd: count,
    ...windowBody,
  }),
  z.object({ ...fromAgent, kind: z.literal('events'), columns: z.array(text(256)).max(1024), rows: cells, dropped: count }),
  z.object({ ...fromAgent, kind: z.literal('notice'), message: text(8192) }),
  z.object({ ...fromAgent, kind: z.literal('dump'), columns: z.array(text(256)).max(1024), rows: cells, triggerNs: ns.nullable() }),
  /** After a stop: the host is still removing its probes (the kernel takes ~70 ms for each), `left` of `total`. */
  z.object({ ...fromAgent, kind: z.literal('detaching'), left: count, total: count }),
  z.object({
    ...fromAgent,
    kind: z.literal('done'),
    windows: count,
    /** Its probes failed: the query's answer lacks this host from its last window on. */
    error: text(8192).optional(),
    /**
     * It stopped because its lease ran out (it heard no renewal: the bus was away, or the client):
     * its probes were off from its last window until it hears the client again and rejoins.
     */
    lapsed: z.boolean().optional(),
    /** It stopped because a client asked it to (fay stop, or the query's own client). */
    stopped: z.boolean().optional(),
  }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** An aggregator of a merge tree, as it announces itself: who, and how loaded. */
export const AggregatorAnnouncement = z.object({
  v,
  kind: z.enum(['hello', 'heartbeat', 'bye']),
  name,
  /** Changes each time the aggregator starts. */
  incarnation: text(64),
  version: text(64),
  heartbeatMs: between(BUS_BOUNDS.heartbeatMs).int(),
  /** Its level in the tree: 1 merges hosts' windows, n + 1 the partials of level n. */
  level: z.number().int().min(1).max(MAX_TREE_LEVELS),
  /** Over its last heartbeat period: the share of its time it was busy (0–1), windows taken and merged partials sent a second; the live hosts of its shards; its queries. */
  load: z.object({ busy: z.number().min(0).max(1), windowsPerSecond: z.number().min(0), partialsPerSecond: z.number().min(0), hosts: count, queries: count }),
  /**
   * The hosts of its shards it heard and no longer hears (no heartbeat for three of theirs, or a bye):
   * the client, which leaves the heartbeats to the aggregators, counts every other host of their
   * shards alive, and these gone.
   */
  silent: z.array(name).max(100_000),
  /** Messages it received and dropped (malformed, oversize, another version, a host posing as another). */
  rejected: count,
});
export type AggregatorAnnouncement = z.infer<typeof AggregatorAnnouncement>;

/** A window that reached an aggregator after it had passed its period up: left out, said so. */
const leftOutWindow = z.object({ host: name, startNs: ns, endNs: ns });

const fromAggregator = { v, id: queryId, aggregator: name, incarnation: text(64) };

export const MergedMessage = z.discriminatedUnion('kind', [
  z.object({
    ...fromAggregator,
    kind: z.literal('merged'),
    /** The aggregator's period number for this query, from 0. */
    seq: count,
    /** A large partial travels in parts, as a host's window does; every part names its hosts. */
    ...windowBody,
    /** The hosts whose whole window for the period is in the table. */
    hosts: z.array(name).max(100_000),
    leftOut: z.array(leftOutWindow).max(100_000),
  }),
  /** After the stop: every period it merged has gone up (its hosts said done, or it stopped waiting for them). */
  z.object({ ...fromAggregator, kind: z.literal('final'), hosts: count }),
]);
export type MergedMessage = z.infer<typeof MergedMessage>;

export const RunningQueries = z.object({
  v,
  kind: z.literal('running'),
  host: name,
  queries: z
    .array(
      z.object({
        id: queryId,
        text: text(64 * 1024),
        client: text(256),
        startedNs: ns,
        /** A standing query: the log it fills here, what that holds, and when it ends (if it does). */
        standing: z.object({ log: logName.optional(), rows: count, bytes: count, untilNs: ns.optional() }).optional(),
      }),
    )
    .max(10_000),
});
export type RunningQueries = z.infer<typeof RunningQueries>;

const storedField = z.object({ name: text(256), type: z.enum(['int', 'str', 'bool', 'stack']), unit: z.literal('ns').optional() });

/** A stored log as agents describe it: its name, the query that writes it, its kind, when it began, its retention. */
const storedLog = {
  name: logName,
  query: text(64 * 1024),
  kind: z.enum(['windows', 'events']),
  createdNs: ns,
  retainMs: count.optional(),
};

/** The logs an agent's trace store keeps, with what their rows hold (for history queries to be planned against; not how many: counting reads every row). */
export const StoredLogs = z.object({
  v,
  kind: z.literal('logs'),
  host: name,
  logs: z
    .array(
      z.object({
        ...storedLog,
        schema: z
          .object({
            columns: z.array(storedField).max(1024),
            aggregates: z.array(z.object({ name: text(256), function: aggregateFunction, argument: text(4096).optional(), params: z.array(z.number().finite()).max(64) })).max(256),
            argumentFields: z.array(storedField).max(1024),
          })
          .optional(),
      }),
    )
    .max(10_000),
  /** Why the store could not be read, if it could not. */
  problem: text(8192).optional(),
});
export type StoredLogs = z.infer<typeof StoredLogs>;

/** An agent's answer to a store question: its logs with their sizes (list), or why it could not do what was asked. */
export const StoreAnswer = z.object({
  v,
  kind: z.literal('store'),
  host: name,
  logs: z
    .array(
      z.object({
        ...storedLog,
        rows: count,
        bytes: count,
        firstNs: ns.optional(),
        lastNs: ns.optional(),
      }),
    )
    .max(10_000)
    .optional(),
  /** What went wrong; `usage`: the question's fault (a log that is not there), else the store's. */
  problem: z.object({ message: text(8192), hint: text(8192).optional(), usage: z.boolean() }).optional(),
});
export type StoreAnswer = z.infer<typeof StoreAnswer>;

/** Reads a message of a known shape from bus bytes; throws BusMessageError for anything else. */
export function readMessage<T>(schema: z.ZodType<T>, data: Uint8Array): T {
  const value = decodeMessage(data, MAX_MESSAGE_BYTES);
  if (typeof value === 'object' && value !== null && 'v' in value && value.v !== PROTOCOL_VERSION) {
    throw new BusMessageError(`a message of protocol version ${String(value.v)}; this Fay speaks ${PROTOCOL_VERSION}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new BusMessageError(`a malformed message: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/**
 * Reads a message as a receiver does: one that fails its checks (malformed, oversize, another
 * version) is counted through `onRejected` and gives undefined; anything else thrown is a bug.
 */
export function receiveMessage<T>(schema: z.ZodType<T>, data: Uint8Array, onRejected: () => void): T | undefined {
  try {
    return readMessage(schema, data);
  } catch (error) {
    if (!(error instanceof BusMessageError)) throw error;
    onRejected();
    return undefined;
  }
}

/** receiveMessage for what a host sends on its own subject: a message naming another host is rejected too. */
export function receiveFromHost<T extends { host: string }>(schema: z.ZodType<T>, data: Uint8Array, subject: string, onRejected: () => void): T | undefined {
  const message = receiveMessage(schema, data, onRejected);
  if (message === undefined || fromHost(subject, message.host)) return message;
  onRejected();
  return undefined;
}

/** receiveMessage for what an aggregator sends on its own subject: one naming another aggregator is rejected too. */
export function receiveFromAggregator<T extends { aggregator: string } | { name: string }>(schema: z.ZodType<T>, data: Uint8Array, subject: string, onRejected: () => void): T | undefined {
  const message = receiveMessage(schema, data, onRejected);
  if (message === undefined || fromHost(subject, 'aggregator' in message ? message.aggregator : message.name)) return message;
  onRejected();
  return undefined;
}

/** A message as bus bytes; `compress` false for a bus that never leaves the process (Bus.local). */
export function writeMessage(message: AgentAnnouncement | AggregatorAnnouncement | ClientMessage | AgentMessage | MergedMessage | RunningQueries | StoredLogs | StoreAnswer, compress = true): Uint8Array {
  return encodeMessage(message, compress);
}
