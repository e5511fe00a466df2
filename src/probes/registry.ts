import { closestNames } from '../errors.js';
import type { ProbeCatalog, ResolveFailure, SourceSchema } from '../plan/catalog.js';
import type { ProbeListing, Provider } from './provider.js';

/** Probe point prefixes that belong to providers this version does not have yet. */
const NOT_YET: Readonly<Record<string, string>> = {
  dc: 'diagnostics_channel probes (dc:) are not part of this version of Fay yet',
};

/** All providers of this machine, as one catalog: each probe point goes to the provider of its prefix. */
export class ProbeRegistry implements ProbeCatalog {
  constructor(readonly providers: readonly Provider[]) {}

  providerOf(point: string): Provider | undefined {
    const prefix = point.split(':', 1)[0]!;
    return this.providers.find((p) => p.prefixes.includes(prefix));
  }

  resolve(point: string): SourceSchema | ResolveFailure {
    const provider = this.providerOf(point);
    if (provider) return provider.resolve(point);
    const prefix = point.split(':', 1)[0]!;
    if (NOT_YET[prefix]) return { reason: NOT_YET[prefix], unavailable: true };
    const known = this.providers.flatMap((p) => p.prefixes);
    const rest = point.slice(prefix.length);
    return {
      reason: point.includes(':') ? `unknown provider "${prefix}"` : `"${point}" is not a probe point (provider:target)`,
      suggestions: closestNames(prefix, known).map((k) => `${k}${rest}`),
      hint: `probe points start with one of: ${known.join(', ')}`,
    };
  }

  async list(glob: string): Promise<ProbeListing[]> {
    const lists = await Promise.all(this.providers.map((p) => p.list(glob)));
    return lists.flat();
  }
}
