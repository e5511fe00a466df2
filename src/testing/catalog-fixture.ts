/**
 * A probe catalog for the unit tests: the kernel's probe points as a small copy of this
 * kernel's tracefs (test/fixtures/tracefs: the format files of a few system calls and
 * tracepoints), so that the parser, binder and planner are tested without root or a kernel.
 * A kernel test checks the copy against the running kernel's tracefs.
 */
import { fileURLToPath } from 'node:url';
import { globToRegExp } from '../plan/expr.js';
import { BPF_CAPABILITIES } from '../probes/bpf/bpf-expr.js';
import { BpfProvider, type BpfContext } from '../probes/bpf/provider.js';
import type { StructMember } from '../probes/bpf/structs.js';
import type { SymbolLister } from '../probes/bpf/symbols.js';
import { Tracefs } from '../probes/bpf/tracefs.js';
import { NodeProvider } from '../probes/node/provider.js';
import { ProbeRegistry } from '../probes/registry.js';
import { StoredProvider } from '../probes/stored/provider.js';

export const FIXTURE_TRACEFS = fileURLToPath(new URL('../../test/fixtures/tracefs', import.meta.url));

/** Two binaries and a few of their functions, as `bpftrace -l` would list them. */
const BINARIES: Record<string, { path: string; functions: readonly string[] }> = {
  libc: { path: '/usr/lib/x86_64-linux-gnu/libc.so.6', functions: ['calloc', 'free', 'malloc', 'realloc'] },
  node: { path: '/usr/bin/node', functions: ['uv_fs_open', 'uv_fs_read', 'uv_run'] },
};

const symbols: SymbolLister = {
  resolveBinary: (text) => BINARIES[text]?.path ?? Object.values(BINARIES).find((b) => b.path === text)?.path,
  functions: (binary, glob) => {
    const want = globToRegExp(glob);
    return (Object.values(BINARIES).find((b) => b.path === binary)?.functions ?? []).filter((f) => want.test(f));
  },
};

/** A few of the kernel's structs, as its BTF declares them. */
const STRUCTS: Record<string, StructMember[]> = {
  __kernel_timespec: [
    { name: 'tv_sec', cType: '__kernel_time64_t' },
    { name: 'tv_nsec', cType: 'long long int' },
  ],
  sockaddr: [
    { name: 'sa_family', cType: 'sa_family_t' },
    { name: 'sa_data', cType: 'char[14]' },
  ],
};

/** The kernel provider's view of a machine like this one: tracepoints from the fixture, no kernel functions. */
export function fixtureMachine(): BpfContext {
  return {
    bpftrace: 'bpftrace',
    tracefs: new Tracefs(FIXTURE_TRACEFS),
    symbols,
    structs: { members: (struct) => STRUCTS[struct] },
    kernelSupport: () => ({
      available: false,
      reason: 'the kernel offers no kprobes (no kprobe event source in /sys/bus/event_source/devices, no kprobe_events in tracefs) and fentry/fexit is refused (bpftrace reports kfunc: no)',
    }),
    capabilities: BPF_CAPABILITIES,
  };
}

/** The kernel's and Node.js' providers, the kernel's against the fixture. */
export function fixtureRegistry(): ProbeRegistry {
  return new ProbeRegistry([new BpfProvider(fixtureMachine), new NodeProvider(), new StoredProvider()]);
}
