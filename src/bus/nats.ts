import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection, type TlsOptions } from '@nats-io/transport-node';
import { EnvironmentError, UsageError } from '../errors.js';
import type { Bus, BusHandler, BusStatus } from './bus.js';

/** How to reach and authenticate to a NATS server. */
export interface NatsSettings {
  /** nats://[user:password@]host:port (or tls://…); several separated by commas. */
  readonly url: string;
  /** A credentials file: a NATS .creds file, an nkey seed, or one line `user:password`. */
  readonly credsFile?: string;
  /** A CA bundle for TLS. */
  readonly tlsCaFile?: string;
  /** What this connection calls itself on the server (shows in its monitoring). */
  readonly name: string;
}

interface Credentials {
  user?: string;
  pass?: string;
  authenticator?: ReturnType<typeof credsAuthenticator>;
}

/** User and password from the URL, the environment (FAY_NATS_USER, FAY_NATS_PASSWORD) or a file. */
function credentials(settings: NatsSettings, servers: string[]): Credentials {
  for (const server of servers) {
    try {
      const url = new URL(server);
      if (url.username) return { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
    } catch {
      throw new UsageError(`${server} is not a NATS URL`, { hint: 'e.g. nats://fay-client:secret@10.0.0.5:4222' });
    }
  }
  if (settings.credsFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(settings.credsFile, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read the credentials file ${settings.credsFile}: ${(error as Error).message}`);
    }
    if (text.includes('BEGIN NATS USER JWT')) return { authenticator: credsAuthenticator(new TextEncoder().encode(text)) };
    const line = text.trim();
    if (/^SU[A-Z0-9]+$/.test(line)) return { authenticator: nkeyAuthenticator(new TextEncoder().encode(line)) };
    const colon = line.indexOf(':');
    if (colon > 0) return { user: line.slice(0, colon), pass: line.slice(colon + 1) };
    throw new UsageError(`${settings.credsFile} holds no credentials Fay can read`, { hint: 'put user:password on one line, an nkey seed, or a NATS .creds file there' });
  }
  const user = process.env.FAY_NATS_USER;
  if (user) return { user, pass: process.env.FAY_NATS_PASSWORD ?? '' };
  throw new UsageError('cluster mode needs NATS credentials', {
    hint: 'give user:password@ in the URL, --creds <file>, or FAY_NATS_USER and FAY_NATS_PASSWORD',
  });
}

/**
 * nats.js upgrades its socket to TLS without a server name when the server is
 * given by IP address, so Node checks the certificate against "localhost".
 * Instead, the certificate must be valid for one of the servers Fay was told
 * to connect to (by name or by IP address).
 */
function serverIdentityCheck(servers: readonly string[]): (name: string, cert: PeerCertificate) => Error | undefined {
  const hosts = servers.map((s) => new URL(s).hostname.replace(/^\[(.*)\]$/, '$1'));
  return (name, cert) => {
    const candidates = name === 'localhost' ? [...new Set([name, ...hosts])] : [name];
    const errors = candidates.map((host) => checkServerIdentity(host, cert));
    return errors.includes(undefined) ? undefined : errors[errors.length - 1];
  };
}

/** TLS with a CA bundle; the options reach Node's tls.connect as they are (checkServerIdentity included). */
function tlsOptions(caFile: string, servers: readonly string[]): TlsOptions {
  const options: TlsOptions & { checkServerIdentity: ReturnType<typeof serverIdentityCheck> } = { caFile, checkServerIdentity: serverIdentityCheck(servers) };
  return options;
}

/** Strips credentials from URLs (they go in the connect options, and never into logs). */
function bareServer(server: string): string {
  const url = new URL(server);
  url.username = '';
  url.password = '';
  return url.toString().replace(/\/$/, '');
}

/**
 * The bus over a NATS server; it reconnects for ever. The client library buffers what is
 * published while the server is away, so publishers check `connected` and hold back (the
 * agent coalesces its partials meanwhile).
 */
export class NatsBus implements Bus {
  private readonly listeners: ((status: BusStatus) => void)[] = [];
  private up = true;

  private constructor(private readonly nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.report('disconnected');
        else if (s.type === 'reconnect') this.report('reconnected');
      }
    })();
    void nc.closed().then(() => this.report('closed'));
  }

  /** Connects (waiting for the server up to timeoutMs); throws a user error on bad credentials. */
  static async connect(settings: NatsSettings, timeoutMs = 5000): Promise<NatsBus> {
    const servers = settings.url.split(',').map((s) => s.trim()).filter(Boolean);
    const auth = credentials(settings, servers);
    try {
      const nc = await connect({
        servers: servers.map(bareServer),
        name: settings.name,
        ...auth,
        ...(settings.tlsCaFile !== undefined && { tls: tlsOptions(settings.tlsCaFile, servers) }),
        timeout: timeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        pingInterval: 5000,
      });
      return new NatsBus(nc);
    } catch (error) {
      const message = (error as Error).message;
      if (/authoriz|authentic/i.test(message)) {
        throw new UsageError(`the NATS server at ${servers.map(bareServer).join(', ')} refused these credentials`, { hint: 'check the user and password (or creds file) for this role' });
      }
      throw new EnvironmentError(`cannot reach NATS at ${servers.map(bareServer).join(', ')}: ${message}`, { hint: 'is nats-server running and reachable from here?' });
    }
  }

  readonly local = false;

  get connected(): boolean {
    return this.up && !this.nc.isClosed();
  }

  private report(status: BusStatus): void {
    this.up = status === 'reconnected';
    for (const l of this.listeners) l(status);
  }

  publish(subject: string, data: Uint8Array, reply?: string): void {
    try {
      this.nc.publish(subject, data, reply === undefined ? undefined : { reply });
    } catch {
      // Closed, or the reconnect buffer is full: the message is lost, which the protocol tolerates.
    }
  }

  subscribe(subject: string, handler: BusHandler): () => void {
    const sub = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (!error) handler(msg.data, msg.reply, msg.subject);
      },
    });
    return () => sub.unsubscribe();
  }

  inbox(): string {
    return `_INBOX.${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }

  /** Sends what is buffered, then closes. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }

  /** What this connection has received and sent so far: bytes and messages. */
  stats(): { inBytes: number; inMessages: number; outBytes: number; outMessages: number } {
    const { inBytes, inMsgs, outBytes, outMsgs } = this.nc.stats();
    return { inBytes, inMessages: inMsgs, outBytes, outMessages: outMsgs };
  }

  /** Waits until the server has seen everything published so far. */
  flush(): Promise<void> {
    return this.nc.flush();
  }
}
