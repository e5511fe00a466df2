import { BpfProvider } from './bpf/provider.js';
import { NodeProvider } from './node/provider.js';
import { ProbeRegistry } from './registry.js';

/** This machine's probe providers, the default set: the kernel's and Node.js'. */
export function localRegistry(): ProbeRegistry {
  return new ProbeRegistry([new BpfProvider(), new NodeProvider()]);
}
