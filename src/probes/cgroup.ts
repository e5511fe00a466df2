import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { EnvironmentError, UsageError } from '../errors.js';

/** Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems). */
export function cgroup2Mount(): string | undefined {
  try {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mountPoint, type] = line.split(' ');
      if (type === 'cgroup2' && mountPoint) return mountPoint;
    }
  } catch {
    // No /proc/mounts: no cgroups either.
  }
  return undefined;
}

/**
 * Resolves an agent's cgroup scope: an absolute path of a cgroup v2 directory, or a name
 * relative to the cgroup2 mount. Throws a user error saying what is wrong.
 */
export function resolveCgroup(path: string): string {
  const mount = cgroup2Mount();
  if (mount === undefined) throw new EnvironmentError('this machine has no cgroup v2 hierarchy mounted, so an agent cannot be scoped to a cgroup');
  const absolute = isAbsolute(path) ? path : join(mount, path);
  if (!absolute.startsWith(`${mount}/`) && absolute !== mount) {
    throw new UsageError(`${path} is not under the cgroup v2 mount ${mount}`, { hint: `e.g. --cgroup ${join(mount, 'my.slice')}` });
  }
  if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
    throw new UsageError(`no cgroup ${absolute}`, { hint: `create it with mkdir ${absolute}, and move processes into it through its cgroup.procs` });
  }
  return absolute;
}

/** Whether a process is in exactly this cgroup (v2), given as an absolute path under the mount. */
export function processInCgroup(pid: number, cgroup: string): boolean {
  const mount = cgroup2Mount();
  if (mount === undefined) return false;
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line !== undefined && line.slice(3) === `/${relative(mount, cgroup)}`;
  } catch {
    return false;
  }
}
