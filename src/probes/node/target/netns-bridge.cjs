// Runs in the network namespace of a traced process that lives in another one than its agent (a
// container, ip netns exec), started there by the agent through nsenter --net: the process's
// inspector opens on that namespace's 127.0.0.1, and the runtime connects back to the agent's
// channel by an abstract Unix socket name, which is that namespace's too. This bridges both:
//   node netns-bridge.cjs <inspector port> <channel name without its leading NUL, or "">
//   fd 3: the agent's end of the inspector connection; fd 4: a connection to the agent's channel.
// On stdin the agent writes "ask" for each try of the port; the answer on stdout is "connected"
// (fd 3 carries the connection from then on) or "refused". "ready" comes first, once the channel's
// name is listened on. It ends once its connections have.
'use strict';
const { connect, createServer, Socket } = require('node:net');

const [port, channel] = process.argv.slice(2);
const say = (line) => process.stdout.write(`${line}\n`);

/** Pipes two connections into each other; either one's end or error ends both. */
function join(a, b) {
  a.pipe(b);
  b.pipe(a);
  for (const [one, other] of [[a, b], [b, a]]) {
    one.on('error', () => other.destroy());
    one.on('close', () => other.destroy());
  }
}

const inspectorEnd = new Socket({ fd: 3, readable: true, writable: true });
let inspector;
function ask() {
  if (inspector) return say('connected');
  const socket = connect({ host: '127.0.0.1', port: Number(port) });
  socket.once('error', () => say('refused'));
  socket.once('connect', () => {
    inspector = socket;
    socket.removeAllListeners('error');
    join(socket, inspectorEnd);
    say('connected');
  });
}

let buffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let at;
  while ((at = buffer.indexOf('\n')) >= 0) {
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    if (line === 'ask') ask();
  }
});
// The agent is done asking: the inspector's end is no longer wanted if nothing came of it.
process.stdin.on('end', () => {
  if (!inspector) inspectorEnd.destroy();
});

if (channel) {
  const agentEnd = new Socket({ fd: 4, readable: true, writable: true });
  // One runtime connects for this attach: the first connection is joined to the agent's channel.
  const server = createServer((runtime) => {
    server.close();
    join(runtime, agentEnd);
  });
  agentEnd.on('error', () => server.close());
  agentEnd.on('close', () => server.close());
  server.listen({ path: `\0${channel}` }, () => say('ready'));
  server.on('error', (error) => {
    process.stderr.write(`cannot listen on the channel's name here: ${error.message}\n`);
    process.exit(1);
  });
} else {
  say('ready');
}
