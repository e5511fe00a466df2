/**
 * N synthetic agents for the fan-out benchmark, in a process of their own: real NATS
 * connections speaking Fay's protocol, faked only in that their windows are generated
 * (GROUPS groups of count() by comm per period) instead of coming from probes.
 * usage: synthetic-agents.ts <nats-url> <count> <groups>; prints "ready" when all are on the bus.
 */
import { NatsBus } from '../../src/bus/nats.js';
import { ClientMessage, PROTOCOL_VERSION, readMessage, SUBJECTS, writeMessage, type QuerySpec } from '../../src/bus/protocol.js';

const [url = "", countText, groupsText] = process.argv.slice(2);
const count = Number(countText);
const groups = Number(groupsText);

class SyntheticAgent {
  private readonly incarnation = Math.random().toString(36).slice(2, 10);
  private readonly runs = new Map<string, NodeJS.Timeout>();
  private readonly table: string;

  constructor(
    private readonly bus: NatsBus,
    private readonly host: string,
  ) {
    const keys = Array.from({ length: groups }, (_, i) => `proc-${i}`);
    this.table = JSON.stringify({ v: 1, arity: 1, keys, states: [keys.map((_, i) => 1 + (i % 97))] });
    bus.subscribe(SUBJECTS.ping, () => this.announce(false));
    bus.subscribe(SUBJECTS.lease, (data) => this.lease(readMessage(ClientMessage, data)));
    bus.subscribe(SUBJECTS.stop, (data) => this.stop(readMessage(ClientMessage, data)));
    this.announce(false);
    setTimeout(() => this.announce(true), 1000).unref();
  }

  private announce(repeat: boolean): void {
    this.bus.publish(
      SUBJECTS.host(this.host),
      writeMessage({ v: PROTOCOL_VERSION, kind: repeat ? 'heartbeat' : 'hello', host: this.host, incarnation: this.incarnation, version: 'synthetic', kernel: 'none', providers: [], queries: [], rejected: 0, heartbeatMs: 1000 }),
    );
    if (repeat) setTimeout(() => this.announce(true), 1000).unref();
  }

  private lease(message: ClientMessage): void {
    if (message.kind !== 'lease' || this.runs.has(message.spec.id)) return;
    const spec: QuerySpec = message.spec;
    const from = { v: PROTOCOL_VERSION, id: spec.id, host: this.host, incarnation: this.incarnation } as const;
    this.bus.publish(SUBJECTS.results(spec.id, this.host), writeMessage({ ...from, kind: 'status', state: 'accepted' }));
    const periodMs = spec.options.refreshMs ?? 1000;
    let seq = 0;
    let start = Date.now();
    const head = JSON.stringify({ ...from, kind: 'window' }).slice(0, -1);
    const send = () => {
      const end = Date.now();
      this.bus.publish(SUBJECTS.results(spec.id, this.host), Buffer.from(`${head},"seq":${seq},"seqEnd":${seq},"part":0,"parts":1,"startNs":${start * 1e6},"endNs":${end * 1e6},"droppedEvents":0,"uncountedEvents":0,"table":${this.table}}`));
      seq++;
      start = end;
    };
    // Agents attach at slightly different times, as real ones do.
    setTimeout(() => this.runs.set(spec.id, setInterval(send, periodMs)), Math.random() * 100);
  }

  private stop(message: ClientMessage): void {
    if (message.kind !== 'stop') return;
    const timer = this.runs.get(message.id);
    if (!timer) return;
    clearInterval(timer);
    this.runs.delete(message.id);
    this.bus.publish(SUBJECTS.results(message.id, this.host), writeMessage({ v: PROTOCOL_VERSION, id: message.id, host: this.host, incarnation: this.incarnation, kind: 'done', windows: 0, stopped: true }));
  }
}

const agents: SyntheticAgent[] = [];
for (let i = 0; i < count; i++) {
  const host = `synthetic-${String(i).padStart(4, '0')}`;
  agents.push(new SyntheticAgent(await NatsBus.connect({ url, name: host }), host));
}
console.log('ready');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
