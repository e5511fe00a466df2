import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { bpftraceFeatures } from './environment.js';

/** How kernel functions can be probed here, or why they cannot. */
export type KernelFunctionSupport =
  | { readonly available: true; readonly via: 'fentry' | 'kprobe' }
  | { readonly available: false; readonly reason: string };

/**
 * Detects whether `kernel:<function>` probes can run: fentry/fexit (bpftrace's
 * kfunc) first, kprobes as the fallback. Reads what the kernel exposes rather
 * than trying an attach, and names the evidence when the answer is no.
 */
export function detectKernelFunctionSupport(bpftrace: string, tracefs: string): KernelFunctionSupport {
  const info = bpftraceFeatures(bpftrace);
  const kfunc = /^\s*kfunc:\s*(yes|no)/m.exec(info)?.[1];
  const btf = existsSync('/sys/kernel/btf/vmlinux');
  if (kfunc === 'yes' && btf) return { available: true, via: 'fentry' };

  const kprobePmu = existsSync('/sys/bus/event_source/devices/kprobe');
  const kprobeEvents = existsSync(join(tracefs, 'kprobe_events'));
  if (kprobePmu || kprobeEvents) return { available: true, via: 'kprobe' };

  const config = kernelConfig();
  const kprobesConfig = config === undefined ? undefined : /^CONFIG_KPROBES=y/m.test(config) ? 'y' : 'not set';
  const evidence = [
    kprobesConfig === 'not set'
      ? 'the kernel was built without kprobes (CONFIG_KPROBES is not set)'
      : 'the kernel offers no kprobes (no kprobe event source in /sys/bus/event_source/devices, no kprobe_events in tracefs)',
    !btf
      ? 'and fentry needs kernel BTF, which is missing (/sys/kernel/btf/vmlinux)'
      : `and fentry/fexit is refused (bpftrace reports kfunc: ${kfunc ?? 'unknown'})`,
  ];
  return { available: false, reason: evidence.join(' ') };
}

function kernelConfig(): string | undefined {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    return undefined;
  }
}
