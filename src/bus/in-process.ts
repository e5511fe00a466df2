import { randomBytes } from 'node:crypto';
import { subjectMatches, type Bus, type BusHandler, type BusStatus } from './bus.js';

/**
 * A bus inside one process: what the embedded mode uses, so that one machine
 * needs no server. Delivery is asynchronous (a microtask later), as over a network.
 */
export class InProcessBus implements Bus {
  readonly connected = true;
  private readonly subscriptions = new Set<{ subject: string; handler: BusHandler }>();

  readonly local: boolean;

  /** `served`: its messages also go out to other processes (fay agent serving it on a socket), so they are worth compressing. */
  constructor(options: { served?: boolean } = {}) {
    this.local = options.served !== true;
  }

  publish(subject: string, data: Uint8Array, reply?: string): void {
    for (const s of [...this.subscriptions]) {
      if (subjectMatches(s.subject, subject)) queueMicrotask(() => this.subscriptions.has(s) && s.handler(data, reply, subject));
    }
  }

  subscribe(subject: string, handler: BusHandler): () => void {
    const subscription = { subject, handler };
    this.subscriptions.add(subscription);
    return () => void this.subscriptions.delete(subscription);
  }

  inbox(): string {
    return `_INBOX.${randomBytes(8).toString('hex')}`;
  }

  onStatus(_listener: (status: BusStatus) => void): () => void {
    // Never disconnects.
    return () => undefined;
  }

  close(): Promise<void> {
    this.subscriptions.clear();
    return Promise.resolve();
  }
}
