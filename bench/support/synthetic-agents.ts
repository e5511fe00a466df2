/**
 * N synthetic agents for the fan-out benchmark, in a process of their own: real NATS connections
 * speaking Fay's protocol (src/testing/synthetic-agent.ts), faked only in that their windows are
 * generated (GROUPS groups of count() by comm per period) instead of coming from probes.
 * usage: synthetic-agents.ts <nats-url> <count> <groups>; prints "ready" when all are on the bus.
 */
import { NatsBus } from '../../src/bus/nats.js';
import { SyntheticAgent } from '../../src/testing/synthetic-agent.js';

const [url = '', countText, groupsText] = process.argv.slice(2);
const count = Number(countText);
const groups = Number(groupsText);

const agents: SyntheticAgent[] = [];
for (let i = 0; i < count; i++) {
  const host = `synthetic-${String(i).padStart(5, '0')}`;
  agents.push(new SyntheticAgent(await NatsBus.connect({ url, name: host }), host, { groups, attachSpreadMs: 100 }));
}
console.log('ready');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
