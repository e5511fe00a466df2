import { z } from 'zod';
import { MAX_KEEP_EDITS_MS } from '../plan/limits.js';
import { BusMessageError, decodeMessage, encodeMessage } from './codec.js';

/**
 * The messages between clients and agents, versioned and checked on receipt.
 *
 *   fay.hosts.<host>        agent → clients   hello, heartbeat, bye (a hello also answers a ping)
 *   fay.agents.ping         client → agents   "announce yourselves"
 *   fay.queries.lease       client → agents   a query and its lease; the first one starts it, later ones
 *                                             renew it (and start it on an agent that joins late)
 *   fay.queries.stop        client → agents   stop a query
 *   fay.queries.list        client → agents   which queries run where (answered on the reply inbox)
 *   fay.results.<id>.<host> agent → client    status, windows, events, notices, dumps, done
 *
 * <host> is the agent's host name as a subject token (hostToken). A client takes a message on a
 * host's subject only if the message names that host, so a server that gives each host its own
 * user, allowed to publish only on its own subjects, keeps agents from speaking for each other.
 * The sample nats-server configuration lets agents publish only on fay.hosts.> and fay.results.>,
 * and clients only on fay.agents.ping and fay.queries.>: neither can pose as the other.
 */
export const PROTOCOL_VERSION = 2;

export const SUBJECTS = {
  host: (host: string) => `fay.hosts.${hostToken(host)}`,
  hosts: 'fay.hosts.*',
  ping: 'fay.agents.ping',
  lease: 'fay.queries.lease',
  stop: 'fay.queries.stop',
  list: 'fay.queries.list',
  results: (queryId: string, host: string) => `fay.results.${queryId}.${hostToken(host)}`,
  resultsOf: (queryId: string) => `fay.results.${queryId}.*`,
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

const v = z.literal(PROTOCOL_VERSION);
const name = z.string().min(1).max(253);
const queryId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const ns = z.number().finite();
const count = z.number().int().nonnegative();
const text = (max: number) => z.string().max(max);

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
  heartbeatMs: z.number().int().positive(),
});
export type AgentAnnouncement = z.infer<typeof AgentAnnouncement>;

export const QuerySpec = z.object({
  id: queryId,
  text: text(64 * 1024),
  /** Who asked (user@host), for fay ps. */
  client: text(256),
  startedNs: ns,
  /** The agent stops the query if no renewal comes within this long. */
  leaseMs: z.number().int().positive(),
  /** Host name globs; absent: every agent. */
  hosts: z.array(text(253)).max(1000).optional(),
  options: z.object({
    refreshMs: z.number().positive().optional(),
    everyMs: z.number().positive().optional(),
    limits: z
      .object({
        maxGroups: z.number().int().positive().optional(),
        maxEventsPerSecond: z.number().int().positive().optional(),
        maxMemoryBytes: z.number().int().positive().optional(),
        maxCallsPerSecond: z.number().int().positive().optional(),
        maxEditPauseMs: z.number().nonnegative().optional(),
        editPauseNoticeMs: z.number().nonnegative().optional(),
        keepEditsMs: z.number().nonnegative().max(MAX_KEEP_EDITS_MS).optional(),
      })
      .optional(),
  }),
});
export type QuerySpec = z.infer<typeof QuerySpec>;

export const ClientMessage = z.discriminatedUnion('kind', [
  z.object({ v, kind: z.literal('lease'), spec: QuerySpec }),
  z.object({ v, kind: z.literal('stop'), id: queryId }),
  z.object({ v, kind: z.literal('list') }),
  z.object({ v, kind: z.literal('ping') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

const cells = z.array(z.array(z.unknown()).max(1024)).max(100_000);
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
    /** A large window travels in parts (each a table of some of its groups): this is part `part` of `parts`. */
    part: count,
    parts: z.number().int().positive().max(10_000),
    startNs: ns,
    endNs: ns,
    droppedEvents: count,
    /** GroupTable wire form; decoded (and checked) by the client against the query's aggregates. */
    table: z.unknown(),
  }),
  z.object({ ...fromAgent, kind: z.literal('events'), columns: z.array(text(256)).max(1024), rows: cells, dropped: count }),
  z.object({ ...fromAgent, kind: z.literal('notice'), message: text(8192) }),
  z.object({ ...fromAgent, kind: z.literal('dump'), columns: z.array(text(256)).max(1024), rows: cells, triggerNs: ns.nullable() }),
  z.object({ ...fromAgent, kind: z.literal('done'), windows: count, error: text(8192).optional() }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export const RunningQueries = z.object({
  v,
  kind: z.literal('running'),
  host: name,
  queries: z.array(z.object({ id: queryId, text: text(64 * 1024), client: text(256), startedNs: ns })).max(10_000),
});
export type RunningQueries = z.infer<typeof RunningQueries>;

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

/** A message as bus bytes. */
export function writeMessage(message: AgentAnnouncement | ClientMessage | AgentMessage | RunningQueries): Uint8Array {
  return encodeMessage(message);
}
