/** What a subscriber gets: the raw bytes (decoded by the protocol) and where to reply, if anywhere. */
/** A message as received: its bytes, where to reply (if asked), and the subject it was published on. */
export type BusHandler = (data: Uint8Array, reply: string | undefined, subject: string) => void;

/** Connection news a bus reports: lost, back, or closed for good. */
export type BusStatus = 'disconnected' | 'reconnected' | 'closed';

/**
 * The transport between agents and clients: subjects, publish and subscribe,
 * and inboxes for replies. `InProcessBus` joins parts in one process; `NatsBus`
 * joins machines through a NATS server.
 */
export interface Bus {
  /** False while the connection is down; publishing then buffers (boundedly) or fails. */
  readonly connected: boolean;
  /** True when messages never leave this process: nothing is gained by compressing them. */
  readonly local: boolean;
  publish(subject: string, data: Uint8Array, reply?: string): void;
  /** Subscribes; the returned function unsubscribes. Subjects may end in `>` (the rest) or hold `*` (one token). */
  subscribe(subject: string, handler: BusHandler): () => void;
  /** A fresh subject only this connection listens on, for replies. */
  inbox(): string;
  /** Listens for connection news; the returned function stops listening. */
  onStatus(listener: (status: BusStatus) => void): () => void;
  close(): Promise<void>;
}

/** Whether a subject matches a NATS-style pattern (`*` one token, `>` the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
