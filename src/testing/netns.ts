import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';

/**
 * A network namespace joined to this one by a veth pair on a /30 of its own:
 * a host that can be cut off by taking its link down. Needs root.
 */
export class TestNetns {
  readonly name: string;
  /** This side's address (where a server for the namespace listens) and the namespace's. */
  readonly hostAddress: string;
  readonly nsAddress: string;
  private readonly hostLink: string;

  constructor() {
    const tag = randomBytes(3).toString('hex');
    this.name = `fay-test-${tag}`;
    this.hostLink = `fayh${tag}`;
    const nsLink = `fayn${tag}`;
    const subnet = `10.77.${randomInt(0, 256)}.${4 * randomInt(0, 64)}`;
    const base = subnet.split('.').map(Number);
    this.hostAddress = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + 1}`;
    this.nsAddress = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + 2}`;
    ip('netns', 'add', this.name);
    ip('link', 'add', this.hostLink, 'type', 'veth', 'peer', 'name', nsLink);
    ip('link', 'set', nsLink, 'netns', this.name);
    ip('addr', 'add', `${this.hostAddress}/30`, 'dev', this.hostLink);
    ip('link', 'set', this.hostLink, 'up');
    ip('netns', 'exec', this.name, 'ip', 'addr', 'add', `${this.nsAddress}/30`, 'dev', nsLink);
    ip('netns', 'exec', this.name, 'ip', 'link', 'set', nsLink, 'up');
    ip('netns', 'exec', this.name, 'ip', 'link', 'set', 'lo', 'up');
  }

  /**
   * The command prefix that runs something inside the namespace: nsenter, which changes only the
   * network namespace (`ip netns exec` also remounts /sys, hiding cgroups and tracefs from bpftrace).
   */
  get exec(): string[] {
    return ['nsenter', `--net=/run/netns/${this.name}`];
  }

  /** Takes the link down: packets stop both ways, connections hang (no reset). */
  cut(): void {
    ip('link', 'set', this.hostLink, 'down');
  }

  restore(): void {
    ip('link', 'set', this.hostLink, 'up');
  }

  remove(): void {
    try {
      ip('netns', 'del', this.name);
    } catch {
      // Already gone.
    }
    try {
      ip('link', 'del', this.hostLink);
    } catch {
      // Went with the namespace.
    }
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
