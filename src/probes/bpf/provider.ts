import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createAggregate } from '../../agg/registry.js';
import type { ResolveFailure, SourceSchema } from '../../plan/catalog.js';
import { globToRegExp } from '../../plan/expr.js';
import type { ProbeStage } from '../../plan/planner.js';
import { StoppedBeforeAttaching, type CompiledProbe, type CompileOptions, type ProbeListing, type ProbeSink, type Provider, type RunningProbe } from '../provider.js';
import { BPF_CAPABILITIES } from './bpf-expr.js';
import { generateProgram } from './codegen.js';
import { BpftraceOutputDecoder } from './decoder.js';
import { RING_SLACK, requestComm } from './layout.js';
import { ensureKernelTracing } from './environment.js';
import { detectKernelFunctionSupport, type KernelFunctionSupport } from './kernel-support.js';
import { BpftraceProcess } from './runner.js';
import { BPF_PREFIXES, resolveBpfSource, syscallNames, type BpfSourceSchema, type SourceContext } from './sources.js';
import { BpftraceSymbolLister } from './symbols.js';
import { BpftraceStructLister } from './structs.js';
import { Tracefs } from './tracefs.js';
import { wallClock } from './wall-clock.js';
import { EnvironmentError, UsageError } from '../../errors.js';
import { disassemble } from '../native/asm.js';
import { nativeProgram, NotCovered, PROG_TRACEPOINT, type NativeProgram } from '../native/codegen.js';
import { checkLoader, runNative, VerifierRefusal } from '../native/runner.js';
import { bpfOptions, type Backend } from './backend.js';

/** CPU ids in a kernel list such as "0-3,8". */
function cpuList(text: string): number[] {
  return text
    .trim()
    .split(',')
    .filter(Boolean)
    .flatMap((range) => {
      const [low, high] = range.split('-').map(Number) as [number, number | undefined];
      return Array.from({ length: (high ?? low) - low + 1 }, (_, i) => low + i);
    });
}

/** Every online CPU. */
function onlineCpus(): number[] {
  try {
    return cpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
  } catch {
    return Array.from({ length: availableParallelism() }, (_, i) => i);
  }
}

/** The online CPUs this process may run on: where the stop request can be made. */
function reachableCpus(): number[] {
  try {
    const online = new Set(onlineCpus());
    const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
    const cpus = cpuList(allowed).filter((c) => online.has(c));
    if (cpus.length > 0) return cpus;
  } catch {
    // Fall through to every CPU Node knows of.
  }
  return Array.from({ length: availableParallelism() }, (_, i) => i);
}

/**
 * Asks a program to stop or re-arm, here or pinned to one CPU: a thread named requestComm(token)
 * calls kill(token, 0), which a clause of the program listens for. No process has that pid (the
 * token is above any pid), so the call fails harmlessly. This thread takes its own name back at once.
 */
function stopRequest(token: number, cpu: number | undefined): void {
  const name = requestComm(token);
  const here = () => {
    const comm = '/proc/thread-self/comm';
    let own: string | undefined;
    try {
      own = readFileSync(comm, 'utf8').trim();
      writeFileSync(comm, name);
      process.kill(token, 0);
    } catch {
      // ESRCH, as intended: no process has that id.
    } finally {
      try {
        if (own !== undefined) writeFileSync(comm, own);
      } catch {
        // Renaming itself only fails where it never succeeded.
      }
    }
  };
  if (cpu === undefined) return here();
  // Without taskset, the request made here already stopped the program; the drain then waits for its timeout.
  spawn('taskset', ['-c', String(cpu), 'sh', '-c', `printf %s '${name}' > /proc/self/comm && kill -0 ${token} 2>/dev/null`], { stdio: 'ignore' }).on('error', here);
}

/** Room in a kernel map of groups, either backend's: twice the groups a partial keeps (the excess folds into (other) in the agent, not lost in the kernel). */
function groupEntries(maxGroups: number): number {
  return Math.min(1 << 20, Math.max(4096, 2 * maxGroups));
}

/** What the kernel provider resolves probe points against, and the bpftrace that runs them. */
export type BpfContext = SourceContext & { readonly bpftrace: string };

/** This machine's tracefs, symbols and kernel-function support; an EnvironmentError saying what to do where it cannot trace. */
function thisMachine(): BpfContext {
  const { bpftrace, tracefs } = ensureKernelTracing();
  let support: KernelFunctionSupport | undefined;
  return {
    bpftrace,
    tracefs: new Tracefs(tracefs),
    symbols: new BpftraceSymbolLister(bpftrace),
    structs: new BpftraceStructLister(bpftrace),
    kernelSupport: () => (support ??= detectKernelFunctionSupport(bpftrace, tracefs)),
    capabilities: BPF_CAPABILITIES,
  };
}

/**
 * Kernel-side probes: system calls, tracepoints, uprobes, CPU sampling and
 * timers, compiled to bpftrace programs that the kernel verifies and JITs.
 */
export class BpfProvider implements Provider {
  readonly name = 'bpf';
  readonly prefixes = BPF_PREFIXES;
  private context: BpfContext | undefined;

  /** `machine` gives what this machine offers; by default its tracefs and bpftrace, found (and checked) when first needed. */
  constructor(private readonly machine: () => BpfContext = thisMachine) {}

  private ctx(): BpfContext {
    return (this.context ??= this.machine());
  }

  resolve(point: string): SourceSchema | ResolveFailure {
    return resolveBpfSource(point, this.ctx());
  }

  list(glob: string): Promise<ProbeListing[]> {
    return Promise.resolve(this.listNow(glob));
  }

  private listNow(glob: string): ProbeListing[] {
    const ctx = this.ctx();
    const out: ProbeListing[] = [];
    const uprobe = /^uprobe:(.+):([^:]+)$/.exec(glob);
    if (uprobe) {
      const binary = ctx.symbols.resolveBinary(uprobe[1]!);
      if (binary) {
        for (const s of ctx.symbols.functions(binary, uprobe[2]!)) {
          out.push({ point: `uprobe:${binary}:${s}`, description: 'function entry/return: args[0..5], ret, duration', available: true });
        }
      }
      return out;
    }
    const want = globToRegExp(glob.includes(':') ? glob : `*${glob}*`);
    for (const name of syscallNames(ctx.tracefs)) {
      const point = `syscall:${name}`;
      if (!want.test(point)) continue;
      const args = ctx.tracefs.fields('syscalls', `sys_enter_${name}`) ?? [];
      out.push({ point, description: `(${args.map((a) => a.name).join(', ')}) → ret, duration`, available: true });
    }
    for (const event of ctx.tracefs.listEvents()) {
      const point = `tracepoint:${event}`;
      if (!want.test(point)) continue;
      const [category, name] = event.split(':') as [string, string];
      const fields = ctx.tracefs.fields(category, name) ?? [];
      out.push({ point, description: fields.map((f) => f.name).join(', '), available: true });
    }
    const support = ctx.kernelSupport();
    for (const [point, description] of [
      ['kernel:<function>', 'kernel function entry/return: args[0..5], ret, duration'],
      ['uprobe:<binary>:<function>', 'function in a native binary or library; list with fay probes "uprobe:/path:*"'],
      ['profile:<N>hz', 'CPU samples on every CPU, with kstack and ustack'],
      ['interval:<period>', 'a timer, e.g. interval:1s'],
    ] as const) {
      if (!want.test(point) && !want.test(point.split(':')[0]! + ':')) continue;
      const available = point !== 'kernel:<function>' || support.available;
      out.push({ point, description: available ? description : `unavailable here: ${(support as { reason: string }).reason}`, available });
    }
    return out;
  }

  checkOptions(options: unknown): void {
    bpfOptions(options);
  }

  compile(stage: ProbeStage, options: CompileOptions): CompiledProbe {
    const { backend } = bpfOptions(options.providerOptions);
    let notCovered: string | undefined;
    if (backend !== 'bpftrace') {
      try {
        const perCallTracepoints = backend === 'auto' && fewNamedCalls(stage);
        const native = compileNative(
          nativeProgram(stage, {
            host: options.host,
            mapEntries: groupEntries(options.maxGroups),
            maxEventsPerSecond: options.maxEventsPerSecond,
            perCallTracepoints,
            ...(options.cgroup !== undefined && { cgroupId: cgroupId(options.cgroup) }),
          }),
          stage,
          options,
          backend,
        );
        return backend === 'auto' ? withFallback(native, () => this.compileBpftrace(stage, options)) : native;
      } catch (e) {
        if (!(e instanceof NotCovered)) throw e;
        if (backend === 'native') throw new UsageError(`--backend native does not cover this query: ${e.message}`, { hint: 'run it with --backend bpftrace, or --backend auto to let Fay choose' });
        notCovered = e.message;
      }
    }
    const compiled = this.compileBpftrace(stage, options);
    const why = notCovered !== undefined ? `Fay's native backend does not cover this query: ${notCovered}` : undefined;
    if (why === undefined) return compiled;
    return { ...compiled, program: { ...compiled.program, text: `// bpftrace: ${why}\n${compiled.program.text}` } };
  }

  private compileBpftrace(stage: ProbeStage, options: CompileOptions): CompiledProbe {
    const { bpftrace } = this.ctx();
    // Above any pid the kernel can hand out (pid_max is at most 2^22): kill(token, 0) fails harmlessly.
    const stopToken = (1 << 23) + randomInt(1 << 29);
    const rearmToken = stopToken + 1;
    const layout = generateProgram({ stage, options, clockOffsetNs: wallClock.offset(), stopToken, rearmToken });
    const kinds = stage.aggregate?.aggregates.map(createAggregate) ?? [];
    return {
      program: { provider: 'bpf', language: 'bpftrace', text: layout.text },
      start: (sink: ProbeSink): RunningProbe => {
        // The recorder's ring map holds every CPU's ring.
        const ringKeys = stage.record ? onlineCpus().length * (stage.record.size + RING_SLACK) : 0;
        const mapKeysMax = Math.max(ringKeys, groupEntries(options.maxGroups));
        const decoder = new BpftraceOutputDecoder(layout, kinds, sink, Date.now() * 1e6, {
          maxGroups: options.maxGroups,
          mapKeysMax,
          onDumpRead: () => stopRequest(rearmToken, undefined),
          clockOffsetNs: () => wallClock.offset(),
        });
        const child = new BpftraceProcess({
          bpftrace,
          program: layout.text,
          mapKeysMax,
          onLine: (line) => decoder.line(line),
          onAttached: () => decoder.startAt(Date.now() * 1e6),
          onWarning: (message) => sink.notice(`bpftrace: ${message}`),
          onDetaching: (left, total) => sink.detaching(left, total),
          requestStop: (cpu) => stopRequest(stopToken, cpu),
          drainCpus: stage.ship ? reachableCpus() : [],
        });
        const finished = child.finished.then(() => decoder.finish());
        return { attached: child.attached, finished, stop: () => child.stop() };
      },
    };
  }
}

/**
 * Under --backend auto, a native probe the kernel refuses (a helper, a map type, raw tracepoints
 * this kernel does not allow) runs on bpftrace instead, with a notice saying why. So does one the
 * verifier refuses: that is a bug in Fay's generator, and the notice says so, with the end of the
 * verifier's log (--backend native gives the whole of it as the error); the query still runs.
 */
function withFallback(native: CompiledProbe, bpftrace: () => CompiledProbe): CompiledProbe {
  return {
    program: native.program,
    start: (sink: ProbeSink): RunningProbe => {
      const first = native.start(sink);
      let current = first;
      let stopped = false;
      const attached = first.attached.catch(async (error: unknown) => {
        if (!(error instanceof EnvironmentError) && !(error instanceof VerifierRefusal)) throw error;
        if (stopped) throw new StoppedBeforeAttaching();
        await first.finished.catch(() => undefined);
        const why =
          error instanceof VerifierRefusal
            ? `the kernel's verifier refused the program Fay generated, a bug in Fay: please report it with the query and the verifier's log, which \`--backend native\` shows whole; its end: ${error.log.trim().split('\n').slice(-3).join(' | ')}`
            : error.message;
        sink.notice(`the native eBPF backend could not run here (${why}); running on bpftrace instead`);
        current = bpftrace().start(sink);
        return current.attached;
      });
      const finished = attached.then(
        () => current.finished,
        (error: unknown) => (current === first ? first.finished.then(() => Promise.reject(error as Error)) : current.finished),
      );
      return {
        attached,
        finished,
        stop: () => {
          stopped = true;
          return current.stop();
        },
      };
    },
  };
}

/**
 * Whether --backend auto puts each system call of a query on its own tracepoints rather than all on
 * the raw sys_enter: for a few named calls. The raw tracepoint is passed by every system call of
 * the machine: measured, a getuid loop paid +95 ns a call while the raw program counted getppid,
 * against +51 ns under a per-syscall tracepoint (which turns on the kernel's slow path for every
 * call, but runs no program for the calls it does not name). For many (above 16) or all calls, the
 * raw program is cheaper for every call (113 against 389 ns). --backend native puts the named ones
 * on the raw tracepoint anyway: the cheapest for the named calls themselves.
 */
function fewNamedCalls(stage: ProbeStage): boolean {
  return stage.sources.every((s) => {
    const bpf = (s.schema as Partial<BpfSourceSchema>).bpf;
    return bpf?.kind === 'syscall' && bpf.raw === undefined;
  });
}

/** A cgroup v2's id, as bpf_get_current_cgroup_id() gives it: its directory's inode number. */
function cgroupId(path: string): bigint {
  try {
    return statSync(path, { bigint: true }).ino;
  } catch (error) {
    throw new EnvironmentError(`the agent's cgroup ${path} cannot be read: ${(error as Error).message}`);
  }
}

/** Programs explain disassembles; the others (a program per tracepoint) are the last one with their own probe number. */
const SHOWN_PROGRAMS = 2;

/** Where a native program attaches, as explain names it. */
const attachedTo = (p: NativeProgram['programs'][number]): string => `${p.uprobe !== undefined ? 'uprobe' : p.type === PROG_TRACEPOINT ? 'tracepoint' : 'raw_tracepoint'}:${p.attach}`;

function othersLike(attach: readonly string[]): string {
  const named = attach.slice(0, 8).join(', ');
  return `// and ${attach.length} more, each like those above for its own point: ${named}${attach.length > 8 ? ', …' : ''}`;
}

/** A stage the native backend covers: its program for explain, and its run. */
function compileNative(program: NativeProgram, stage: ProbeStage, options: CompileOptions, backend: Backend): CompiledProbe {
  checkLoader();
  const kinds = stage.aggregate?.aggregates.map(createAggregate) ?? [];
  const maps = program.maps.map((m) => m.name);
  const text = [
    `// Fay's native eBPF backend${backend === 'auto' ? ' (chosen: it covers this query)' : ''}: no bpftrace, no compiler at query time`,
    ...program.maps.map((m, i) => `// map ${i} ${m.name}: type ${m.type}, key ${m.keySize} B, value ${m.valueSize} B, ${m.maxEntries} entries`),
    ...program.programs.slice(0, SHOWN_PROGRAMS).flatMap((p) => [`${attachedTo(p)} (${p.code.length} instructions)`, ...disassemble(p.code, maps)]),
    ...(program.programs.length > SHOWN_PROGRAMS ? [othersLike(program.programs.slice(SHOWN_PROGRAMS).map(attachedTo))] : []),
  ].join('\n');
  return {
    program: { provider: 'bpf', language: 'eBPF (native)', text },
    start: (sink: ProbeSink): RunningProbe => runNative(program, kinds, sink, { flushPeriodMs: options.flushPeriodMs, maxGroups: options.maxGroups }),
  };
}
