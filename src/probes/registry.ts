import { closestNames, UsageError } from '../errors.js';
import type { ProbeCatalog, ResolveFailure, SourceSchema } from '../plan/catalog.js';
import type { ProbeListing, Provider, ProviderOptions } from './provider.js';

/** bpftrace's (and DTrace's) names of probe types, and Fay's provider for each. */
const BPFTRACE_NAMES: Readonly<Record<string, string>> = {
  kprobe: 'kernel',
  kretprobe: 'kernel',
  k: 'kernel',
  kr: 'kernel',
  kfunc: 'kernel',
  kretfunc: 'kernel',
  fentry: 'kernel',
  fexit: 'kernel',
  fbt: 'kernel',
  uretprobe: 'uprobe',
  u: 'uprobe',
  ur: 'uprobe',
  pid: 'uprobe',
  t: 'tracepoint',
  p: 'profile',
  i: 'interval',
};

/** All providers of this machine, as one catalog: each probe point goes to the provider of its prefix. */
export class ProbeRegistry implements ProbeCatalog {
  constructor(readonly providers: readonly Provider[]) {}

  /** The provider owning the longest prefix of the point (`profile:js:…` is Node's, `profile:…` the kernel's). */
  providerOf(point: string): Provider | undefined {
    let best: { provider: Provider; length: number } | undefined;
    for (const provider of this.providers) {
      for (const prefix of provider.prefixes) {
        if (point.startsWith(`${prefix}:`) && prefix.length > (best?.length ?? -1)) best = { provider, length: prefix.length };
      }
    }
    return best?.provider;
  }

  resolve(point: string): SourceSchema | ResolveFailure {
    const provider = this.providerOf(point);
    if (provider) return provider.resolve(point);
    const prefix = point.split(':', 1)[0]!;
    const known = this.providers.flatMap((p) => p.prefixes);
    const rest = point.slice(prefix.length);
    const ours = Object.hasOwn(BPFTRACE_NAMES, prefix) ? BPFTRACE_NAMES[prefix] : undefined;
    if (ours !== undefined && known.includes(ours)) {
      return {
        reason: `"${prefix}" is bpftrace's name: here it is ${ours}:${ours === 'kernel' || ours === 'uprobe' ? `, whose probes see a call's entry and return as one event` : ''}`,
        suggestions: [`${ours}${rest}`],
        hint: `probe points start with one of: ${known.join(', ')}`,
      };
    }
    return {
      reason: point.includes(':') ? `unknown provider "${prefix}"` : `"${point}" is not a probe point (provider:target)`,
      suggestions: closestNames(prefix, known).map((k) => `${k}${rest}`),
      hint: `probe points start with one of: ${known.join(', ')}`,
    };
  }

  /** Checks a query's provider options, each by its provider: an unknown provider or a bad value is a UsageError. */
  checkOptions(options: ProviderOptions): void {
    for (const [name, given] of Object.entries(options)) {
      const provider = this.providers.find((p) => p.name === name);
      const taking = this.providers.filter((p) => p.checkOptions !== undefined).map((p) => p.name);
      if (!provider?.checkOptions) {
        throw new UsageError(`${provider ? `the ${name} provider takes no options` : `no provider is called "${name}"`}`, {
          hint: taking.length > 0 ? `providers with options: ${taking.join(', ')}` : 'no provider here takes options',
        });
      }
      provider.checkOptions(given);
    }
  }

  async list(glob: string): Promise<ProbeListing[]> {
    const lists = await Promise.all(this.providers.map((p) => p.list(glob)));
    return lists.flat();
  }
}
