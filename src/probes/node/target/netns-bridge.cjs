// Runs in the network namespace of traced processes that live in another one than their agent (a
// container, ip netns exec), started there by the agent through nsenter --net, with an IPC channel
// to it: a process's inspector opens on that namespace's 127.0.0.1, and its runtime connects back
// to the agent's channel by an abstract Unix socket name, which is that namespace's too. This
// makes both connections here and hands each to the agent (a socket passed over IPC works there
// as one of its own), so nothing goes through it:
//   node netns-bridge.cjs <inspector port> <channel name without its leading NUL, or "": none>
// The agent sends { type: 'ask', id } for each try of the port, answered { type: 'connected', id }
// with the connection, or { type: 'refused', id }; a connection to the channel's name is sent as
// { type: 'link' } with it. { type: 'ready' } comes first, once the name is listened on. It ends
// with its IPC channel.
'use strict';
const { connect, createServer } = require('node:net');

const [port, channel] = process.argv.slice(2);

if (channel) {
  // Not read here: the runtime's first line is for the agent.
  const server = createServer({ pauseOnConnect: true }, (runtime) => process.send({ type: 'link' }, runtime));
  server.on('error', (error) => {
    process.stderr.write(`cannot listen on the agent channel's name here: ${error.message}\n`);
    process.exit(1);
  });
  server.listen({ path: `\0${channel}` }, () => process.send({ type: 'ready' }));
} else {
  process.send({ type: 'ready' });
}

process.on('message', (message) => {
  if (message === null || typeof message !== 'object' || message.type !== 'ask') return;
  const socket = connect({ host: '127.0.0.1', port: Number(port) });
  socket.once('error', () => process.send({ type: 'refused', id: message.id }));
  socket.once('connect', () => {
    socket.pause();
    process.send({ type: 'connected', id: message.id }, socket);
  });
});
process.on('disconnect', () => process.exit(0));
