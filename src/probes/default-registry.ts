import { BpfProvider } from './bpf/provider.js';
import { NodeProvider } from './node/provider.js';
import { ProbeRegistry } from './registry.js';
import { StoredProvider } from './stored/provider.js';

/** This machine's probe providers, the default set: the kernel's, Node.js' and the trace store's logs (history queries). */
export function localRegistry(): ProbeRegistry {
  return new ProbeRegistry([new BpfProvider(), new NodeProvider(), new StoredProvider()]);
}
