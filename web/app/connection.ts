import type { PageMessage, ServerMessage } from '../../src/web/protocol.js';

/**
 * The page's socket to fay web. A socket that drops is opened again (every second), with the
 * session the server named and the number of the last message about a query that came: the
 * server sends what came after it, once, and the queries ran on meanwhile. A message numbered at
 * or below what came already is dropped here, so a window is never shown twice.
 */
export class Connection {
  private socket: WebSocket | undefined;
  private session: string | undefined;
  private lastSeq = 0;
  /** Failed tries since the socket dropped (shown on the page, for a person and for the tests). */
  private retries = 0;

  constructor(
    private readonly receive: (message: ServerMessage) => void,
    private readonly status: (text: string, retries: number) => void,
  ) {}

  open(): void {
    const params = new URLSearchParams();
    if (this.session !== undefined) {
      params.set('session', this.session);
      params.set('after', String(this.lastSeq));
    }
    const query = params.toString() === '' ? '' : `?${params.toString()}`;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/socket${query}`);
    this.socket = ws;
    ws.onopen = () => {
      this.retries = 0;
      this.status('connected', 0);
    };
    ws.onclose = () => {
      if (this.socket !== ws) return;
      this.socket = undefined;
      this.status(this.retries === 0 ? 'disconnected: reconnecting…' : `disconnected: reconnecting… (${this.retries} ${this.retries === 1 ? 'try' : 'tries'})`, this.retries);
      this.retries++;
      setTimeout(() => this.open(), 1000);
    };
    ws.onmessage = (event) => this.read(JSON.parse(String(event.data)) as ServerMessage);
  }

  private read(message: ServerMessage): void {
    if (message.type === 'hello') {
      // A new session (the server did not know ours any more): what we numbered is of no use.
      if (!message.resumed) this.lastSeq = 0;
      this.session = message.session;
    }
    if ('seq' in message && message.seq !== undefined) {
      if (message.seq <= this.lastSeq) return;
      this.lastSeq = message.seq;
    }
    this.receive(message);
  }

  send(message: PageMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
