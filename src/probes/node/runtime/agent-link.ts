import type { Socket } from 'node:net';
import { links, mod, toJson } from './state.js';

/** Where the runtime connects back to the agent for one attach: its socket, the attach's token, the pid the agent knows. */
export interface AgentLinkConfig {
  socket: string;
  token: string;
  pid?: number;
}

/**
 * Connects to the agent for one attach and says hello with its token, ahead of the session
 * that will use the connection: the agent accepts it while it works out the probes.
 */
export function linkToAgent(link: AgentLinkConfig): Socket {
  const socket = mod<typeof import('node:net')>('net').connect({ path: link.socket });
  socket.unref();
  socket.on('error', () => undefined);
  links.set(link.token, socket);
  socket.on('close', () => links.delete(link.token));
  // The pid the agent knows it by (in a container's pid namespace, process.pid is another).
  socket.write(`${toJson({ type: 'hello', token: link.token, pid: link.pid ?? process.pid })}\n`);
  return socket;
}
