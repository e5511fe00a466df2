import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostToken } from '../bus/protocol.js';

const SAMPLE_CONFIG = new URL('../../deploy/nats-server.conf', import.meta.url);

/** A port nobody listens on right now, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A real nats-server on loopback, configured from the repository's sample configuration. */
export class NatsServer {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'fay-nats-'));
  readonly passwords = { agent: randomBytes(12).toString('hex'), client: randomBytes(12).toString('hex'), aggregator: randomBytes(12).toString('hex') };
  /** Users of their own for these hosts, as the sample configuration's per-host template has them. */
  private readonly hostPasswords = new Map<string, string>();

  /** With TLS: the CA certificate clients verify the server with. */
  readonly caFile: string | undefined;

  private constructor(
    readonly port: number,
    /** The address it listens on: loopback, or this side of a test network namespace's link. */
    readonly address: string,
    tls: boolean,
    hostUsers: readonly string[],
  ) {
    let config = readFileSync(SAMPLE_CONFIG, 'utf8')
      .replace(/^listen: .*$/m, `listen: ${address}:${port}`)
      .replace('CHANGE-ME-AGENT-PASSWORD', this.passwords.agent)
      .replace('CHANGE-ME-CLIENT-PASSWORD', this.passwords.client)
      .replace('CHANGE-ME-AGGREGATOR-PASSWORD', this.passwords.aggregator);
    // The first commented-out user: the per-host one.
    const template = /^ {4}# \{\n(?:^ {4}#.*\n)*?^ {4}# \}\n/m.exec(config)?.[0];
    if (template === undefined) throw new Error('the sample configuration has no per-host user template');
    for (const host of hostUsers) {
      const password = randomBytes(12).toString('hex');
      this.hostPasswords.set(host, password);
      const block = template.replace(/^ {4}# ?/gm, '    ').replaceAll('web-1', hostToken(host)).replace('CHANGE-ME-WEB-1-PASSWORD', password);
      config = config.replace(template, `${template}${block}`);
    }
    if (tls) {
      this.caFile = this.makeCertificates();
      config += `\ntls {\n  cert_file: "${join(this.dir, 'server.pem')}"\n  key_file: "${join(this.dir, 'server-key.pem')}"\n  timeout: 2\n}\n`;
    }
    writeFileSync(join(this.dir, 'nats-server.conf'), config);
  }

  static async start(address = '127.0.0.1', options: { tls?: boolean; hostUsers?: readonly string[] } = {}): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), address, options.tls ?? false, options.hostUsers ?? []);
    await server.launch();
    return server;
  }

  /** A throwaway CA and a server certificate for the listen address, made with openssl; returns the CA's file. */
  private makeCertificates(): string {
    const at = (name: string) => join(this.dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=fay test CA', '-keyout', at('ca-key.pem'), '-out', at('ca.pem'));
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${this.address}`, '-keyout', at('server-key.pem'), '-out', at('server.csr'));
    writeFileSync(at('san.ext'), `subjectAltName=IP:${this.address}\n`);
    openssl('x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca-key.pem'), '-CAcreateserial', '-days', '1', '-extfile', at('san.ext'), '-out', at('server.pem'));
    return at('ca.pem');
  }

  /** nats://… with the credentials of a host's own user (hostUsers). */
  hostUrl(host: string): string {
    return `nats://fay-agent-${hostToken(host)}:${this.hostPasswords.get(host)}@${this.address}:${this.port}`;
  }

  /** nats://user:password@address:port for a role; `anonymous` has no credentials. */
  url(role: 'agent' | 'client' | 'aggregator' | 'anonymous'): string {
    if (role === 'anonymous') return `nats://${this.address}:${this.port}`;
    return `nats://fay-${role}:${this.passwords[role]}@${this.address}:${this.port}`;
  }

  /** Its process id (for a benchmark that measures its CPU time). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server and resolves once it says it is ready. */
  launch(): Promise<void> {
    const child = spawn('nats-server', ['-c', join(this.dir, 'nats-server.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    return new Promise((resolve, reject) => {
      let log = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        log += d;
        if (log.includes('Server is ready')) resolve();
      });
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`nats-server exited with ${code}:\n${log}`)));
    });
  }

  /** Stops the server (SIGKILL: as abruptly as a crash) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
