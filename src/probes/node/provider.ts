import { createAggregate } from '../../agg/registry.js';
import { UsageError } from '../../errors.js';
import type { ResolveFailure, SourceSchema } from '../../plan/catalog.js';
import { globToRegExp } from '../../plan/expr.js';
import type { ProbeStage } from '../../plan/planner.js';
import type { CompiledProbe, CompileOptions, ProbeListing, ProbeSink, Provider } from '../provider.js';
import { AgentChannel } from './channel.js';
import { generateHandlers } from './codegen.js';
import { parseSelector, selectProcesses, selectorText } from './processes.js';
import { NodeRun, type FrameValue, type NodeRunSettings } from './run.js';
import { ANONYMOUS, namesAnonymous, parsePattern, resolveChannelPoint, resolveJsPoint, resolvePairPoint, resolveProfilePoint, type NodeSourceSchema } from './sources.js';
import { nodeOptions } from './options.js';

/**
 * Live Node.js processes: functions of built-in modules (wrapped) and of the
 * application's own scripts (live-edited), probed in-process with the
 * filters and partial aggregates of the plan, read through a connection back
 * to this agent.
 */
export class NodeProvider implements Provider {
  readonly name = 'node';
  readonly prefixes = ['js', 'dc', 'http', 'profile:js'];
  private channel: Promise<AgentChannel> | undefined;

  resolve(point: string): SourceSchema | ResolveFailure {
    if (point.startsWith('dc:')) return resolveChannelPoint(point);
    if (point.startsWith('http:')) return resolvePairPoint(point);
    if (point.startsWith('profile:js:')) return resolveProfilePoint(point);
    return resolveJsPoint(point);
  }

  async list(glob: string): Promise<ProbeListing[]> {
    const match = /^js:([^:]+)(?::(.*))?$/.exec(glob);
    if (!match) {
      return globToRegExp(glob.includes(':') ? glob : `*${glob}*`).test('js:')
        ? [{ point: 'js:<pid=N|comm=NAME|*>:<function>', description: 'functions of live Node.js processes; fay probes "js:*" lists them', available: true }]
        : [];
    }
    const selector = parseSelector(match[1]!);
    if (typeof selector === 'string') throw new UsageError(selector);
    const processes = selectProcesses(selector);
    if (match[2] === undefined) {
      return processes.map((p) => ({ point: `js:pid=${p.pid}:*`, description: `${p.comm}: ${p.command}`, available: true }));
    }
    if (selector.kind === 'all') {
      // Listing a process's functions attaches to it (SIGUSR1 opens its inspector): never to every one at once.
      throw new UsageError('listing functions attaches to each process it lists (SIGUSR1 opens its inspector): name the process', {
        hint: 'fay probes "js:*" lists the Node.js processes without touching them; fay probes "js:pid=N:*" lists the functions of one',
      });
    }
    const pattern = parsePattern(match[2]);
    const builtin = typeof pattern !== 'string' && pattern.kind === 'builtin' ? pattern : undefined;
    const want = globToRegExp(`*${match[2]}`);
    const listings: ProbeListing[] = [];
    const { listFunctions } = await import('./install.js');
    for (const p of processes) {
      if (builtin) {
        for (const point of (await listFunctions(p, builtin)).points) listings.push({ point, description: 'built-in function (a wrapper on its property)', available: true });
        continue;
      }
      // Functions with no name only where the pattern asks for them (see namesFunction); else how many, per script.
      const anonymousToo = typeof pattern !== 'string' && pattern.kind === 'user' && namesAnonymous(pattern.name);
      const unnamed = new Map<string, number>();
      const { points, packages } = await listFunctions(p, typeof pattern === 'string' ? undefined : pattern);
      for (const point of points) {
        if (!want.test(point)) continue;
        const at = point.lastIndexOf(`#${ANONYMOUS}`);
        if (at >= 0 && !anonymousToo) unnamed.set(point.slice(0, at), (unnamed.get(point.slice(0, at)) ?? 0) + 1);
        else listings.push({ point, description: 'function of the application (live-edited)', available: true });
      }
      for (const [script, n] of unnamed) {
        const point = `${script}#${ANONYMOUS}*`;
        listings.push({ point, description: `${n} function${n === 1 ? '' : 's'} with no name, by the line ${n === 1 ? 'it starts' : 'they start'} on: fay probes "${point}" lists them`, available: true });
      }
      if (match[2] === '*') {
        // Packages are not in *, as node_modules is not: each is named, with how to list its functions.
        for (const [name, scripts] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
          const point = `js:pid=${p.pid}:${name}/*#*`;
          listings.push({ point, description: `package ${name}: ${scripts} script${scripts === 1 ? '' : 's'} loaded (not in *): fay probes "${point}" lists its functions`, available: true });
        }
        listings.push({ point: `js:pid=${p.pid}:<module>.<function>`, description: `built-in modules' and globals' functions: fay probes "js:pid=${p.pid}:fs.*" lists a module's`, available: true });
      }
    }
    return listings;
  }

  checkOptions(options: unknown): void {
    nodeOptions(options);
  }

  compile(stage: ProbeStage, options: CompileOptions): CompiledProbe {
    const node = nodeOptions(options.providerOptions);
    if (stage.record) throw new UsageError('record keeps events in kernel maps; it is for kernel probe points, not js:');
    const schemas = stage.sources.map((s) => (s.schema as NodeSourceSchema).node);
    const selectors = new Set(schemas.map((s) => selectorText(s.selector)));
    if (selectors.size > 1) {
      throw new UsageError(`the js: probe points of one query pick one set of processes, not ${[...selectors].join(' and ')}`, {
        hint: 'use the same selector (pid=, comm= or *) in every js: probe point of the query',
      });
    }
    const program = generateHandlers(stage);
    const aggregates = stage.aggregate?.aggregates ?? [];
    return {
      program: { provider: 'node', language: 'javascript', text: program.source },
      start: (sink: ProbeSink) =>
        new NodeRun(
          {
            selector: schemas[0]!.selector,
            patterns: schemas.map((s) => s.pattern),
            handlers: program.source,
            exit: program.exit,
            args: program.args,
            self: program.self,
            kept: program.kept,
            shipped: program.shipped,
            ...framesOf(stage, program.shipped),
            aggregates,
            kinds: aggregates.map(createAggregate),
          },
          { ...options, ...node },
          (this.channel ??= AgentChannel.open()),
          sink,
        ),
    };
  }
}

/** Which of a probe stage's keys and shipped values are a profile's stack or frame (named by the agent: frames.ts). */
function framesOf(stage: ProbeStage, shipped: readonly string[]): Pick<NodeRunSettings, 'frames'> {
  const kind = (name: string): FrameValue => (name === 'jsstack' ? 'stack' : name === 'jsframe' ? 'frame' : undefined);
  const keys = (stage.aggregate?.keys ?? []).map((k) => (k.expr.kind === 'Field' ? kind(k.expr.name) : undefined));
  const values = shipped.map(kind);
  return [...keys, ...values].some((k) => k !== undefined) ? { frames: { keys, shipped: values } } : {};
}
