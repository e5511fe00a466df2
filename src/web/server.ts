import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnvironmentError } from '../errors.js';
import type { ServerMessage } from './protocol.js';
import { WebSession, type WebRunner } from './session.js';

/**
 * `fay web`: the page and its socket, from the Fay process itself. Bound to 127.0.0.1 unless told
 * otherwise, and every request, the socket's included, needs the random token printed with the
 * URL (as Jupyter does): from `?token=` the first time, then from the cookie that sets. Anything
 * without it gets 401 and nothing else.
 */

export interface WebServerOptions {
  readonly port: number;
  /** The address to listen on: 127.0.0.1 unless the user asks for more. */
  readonly listen: string;
  readonly runner: WebRunner;
  readonly version: string;
  readonly cluster: string | undefined;
  /** The token; default a fresh random one. */
  readonly token?: string;
}

/** The built page: dist/web/assets next to the built server (or the bundle in dist/bin). */
function assetsDir(): string {
  for (const candidate of ['../web/assets/', './assets/', '../../dist/web/assets/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new EnvironmentError("the web page's files are not built", { hint: 'npm run build' });
}

const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

const COOKIE = 'fay_token';
/** How long the queries of a page whose socket dropped keep running for it to reconnect. */
const RESUME_GRACE_MS = 20_000;

export class WebServer {
  // Compressed (permessage-deflate, with its context kept from message to message: a window repeats
  // the last one's keys), when larger than a kilobyte.
  private readonly sockets = new WebSocketServer({ noServer: true, maxPayload: 1 << 20, perMessageDeflate: { threshold: 1024 } });
  /** Sessions by id: those with a page attached, and those whose socket dropped, for RESUME_GRACE_MS. */
  private readonly sessions = new Map<string, WebSession>();
  private readonly leaving = new Map<string, NodeJS.Timeout>();
  private readonly socketOf = new Map<string, WebSocket>();

  private constructor(
    private readonly http: Server,
    private readonly token: string,
    private readonly options: WebServerOptions,
    private readonly assets: string,
  ) {}

  static async start(options: WebServerOptions): Promise<WebServer> {
    const token = options.token ?? randomBytes(24).toString('hex');
    const assets = assetsDir();
    const http = createServer();
    const server = new WebServer(http, token, options, assets);
    http.on('request', (req, res) => server.request(req, res));
    http.on('upgrade', (req, socket, head) => server.upgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error: NodeJS.ErrnoException) =>
        reject(new EnvironmentError(`cannot listen on ${options.listen}:${options.port}: ${error.message}`, { hint: error.code === 'EADDRINUSE' ? 'another --port, or stop what uses this one' : 'check --listen and --port' })),
      );
      http.listen(options.port, options.listen, () => resolve());
    });
    return server;
  }

  /** Where the page is, token included: what fay web prints. */
  get url(): string {
    const { port } = this.http.address() as AddressInfo;
    const host = this.options.listen === '0.0.0.0' || this.options.listen === '::' ? '127.0.0.1' : this.options.listen;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}/?token=${this.token}`;
  }

  private authorized(req: IncomingMessage): boolean {
    const url = new URL(req.url ?? '/', 'http://fay');
    const given = url.searchParams.get('token') ?? cookie(req.headers.cookie, COOKIE);
    if (given === undefined || given === null) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    if (!this.authorized(req)) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' }).end('401: open the URL fay web printed, with its token\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://fay').pathname;
    const asset = ASSETS[path];
    if (req.method !== 'GET' || asset === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404\n');
      return;
    }
    const headers: Record<string, string> = {
      'content-type': asset.type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'",
      'referrer-policy': 'no-referrer',
    };
    if (path === '/') headers['set-cookie'] = `${COOKIE}=${this.token}; HttpOnly; SameSite=Strict; Path=/`;
    res.writeHead(200, headers).end(readFileSync(`${this.assets}${asset.file}`));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fay');
    // The socket is for this page only: the token, and a browser's Origin that is this server.
    const origin = req.headers.origin;
    if (url.pathname !== '/socket' || !this.authorized(req) || (origin !== undefined && new URL(origin).host !== req.headers.host)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    // A page that lost its socket comes back with its session and the last numbered message it has.
    const after = Number(url.searchParams.get('after'));
    const back = this.sessions.get(url.searchParams.get('session') ?? '');
    this.sockets.handleUpgrade(req, socket, head, (ws) => this.connected(ws, back, Number.isSafeInteger(after) ? after : 0));
  }

  private connected(ws: WebSocket, back: WebSession | undefined, after: number): void {
    const session = back ?? new WebSession(this.options.runner);
    this.sessions.set(session.id, session);
    clearTimeout(this.leaving.get(session.id));
    this.leaving.delete(session.id);
    // The page is back on a new socket before the server noticed the old one drop: the new one takes over.
    const old = this.socketOf.get(session.id);
    this.socketOf.set(session.id, ws);
    old?.terminate();
    const send = (text: string) => {
      if (ws.readyState === ws.OPEN) ws.send(text);
    };
    const hello: ServerMessage = { type: 'hello', version: this.options.version, cluster: this.options.cluster, session: session.id, resumed: back !== undefined };
    send(JSON.stringify(hello));
    session.attach(send, back === undefined ? undefined : after);
    ws.on('message', (data, binary) => {
      if (binary) return;
      // A text frame: one buffer, or its fragments.
      const parts = Array.isArray(data) ? data : [Buffer.isBuffer(data) ? data : Buffer.from(new Uint8Array(data))];
      session.receive(Buffer.concat(parts).toString('utf8'));
    });
    ws.on('close', (code) => {
      if (this.socketOf.get(session.id) !== ws) return;
      this.socketOf.delete(session.id);
      session.detach();
      // The page went away (its tab closed, or it left): its queries stop now. A socket that
      // dropped (no closing word: the network, a sleeping laptop) keeps them a while for the page to come back.
      if (code === 1000 || code === 1001) return void this.end(session);
      this.leaving.set(session.id, setTimeout(() => void this.end(session), RESUME_GRACE_MS).unref());
    });
  }

  private async end(session: WebSession): Promise<void> {
    if (session.attached) return;
    this.sessions.delete(session.id);
    this.leaving.delete(session.id);
    await session.close();
  }

  /** Stops every page's queries and closes the server. */
  async close(): Promise<void> {
    for (const ws of this.sockets.clients) ws.terminate();
    for (const timer of this.leaving.values()) clearTimeout(timer);
    await Promise.allSettled([...this.sessions.values()].map((s) => s.close()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}
