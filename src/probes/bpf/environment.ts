import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EnvironmentError } from '../../errors.js';
import { tracefsRoot } from './tracefs.js';

/** Where bpftrace is, or undefined. */
export function findBpftrace(): string | undefined {
  const fromEnv = process.env.FAY_BPFTRACE;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = `${dir}/bpftrace`;
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Checks that this machine can run kernel probes and returns the tracefs root.
 * Mounts tracefs (and debugfs, which bpftrace 0.17 still reads) when missing.
 * Each failure is an EnvironmentError saying what to do.
 */
export function ensureKernelTracing(): { bpftrace: string; tracefs: string } {
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError('kernel probes need root: loading eBPF programs is a privileged operation', {
      hint: 'run Fay as root (e.g. sudo ./fay …)',
    });
  }
  const bpftrace = findBpftrace();
  if (!bpftrace) {
    throw new EnvironmentError('bpftrace is not installed; Fay compiles kernel probes to bpftrace programs', {
      hint: 'install it with: apt-get install -y bpftrace   (./fay does this for you)',
    });
  }
  let tracefs = tracefsRoot();
  if (!tracefs || !existsSync('/sys/kernel/debug/tracing')) {
    mountIfMissing('tracefs', '/sys/kernel/tracing');
    mountIfMissing('debugfs', '/sys/kernel/debug');
    tracefs = tracefsRoot();
  }
  if (!tracefs) {
    throw new EnvironmentError('tracefs is not mounted and could not be mounted, so no tracepoint can be found', {
      hint: 'mount it with: mount -t tracefs nodev /sys/kernel/tracing',
    });
  }
  return { bpftrace, tracefs };
}

function mountIfMissing(type: string, target: string): void {
  if (!existsSync(target)) return;
  const mounted = spawnSync('mountpoint', ['-q', target]).status === 0;
  if (!mounted) spawnSync('mount', ['-t', type, 'nodev', target], { stdio: 'ignore' });
}

let bpftraceInfo: string | undefined;

/** `bpftrace --info`, cached: the kernel features bpftrace detected. */
export function bpftraceFeatures(bpftrace: string): string {
  if (bpftraceInfo === undefined) {
    // bpftrace 0.17 prints --info on stderr.
    const result = spawnSync(bpftrace, ['--info'], { encoding: 'utf8' });
    bpftraceInfo = `${result.stdout}${result.stderr}`;
  }
  return bpftraceInfo;
}
