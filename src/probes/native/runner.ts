import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { GroupTable, type KeyPart as GroupKeyPart } from '../../agg/group-table.js';
import type { AggregateKind } from '../../agg/aggregate.js';
import { EnvironmentError } from '../../errors.js';
import { SYSCALLS_X86_64 } from '../bpf/syscall-table-x86_64.js';
import { StoppedBeforeAttaching, type ProbeSink, type RunningProbe } from '../provider.js';
import { encode } from './asm.js';
import { PROG_TRACEPOINT, type NativeProgram } from './codegen.js';

/**
 * The loader, built at set-up (scripts/build.sh) beside the code that runs it: dist/probes/native/
 * for the library, dist/bin/ for the command; from the sources (tests through tsx), the library's;
 * or the one FAY_BPF_LOADER names.
 */
export function loaderPath(): string {
  // Another loader (a test's stand-in for a kernel that refuses) may be named in the environment.
  const named = process.env.FAY_BPF_LOADER;
  if (named !== undefined && named !== '') return named;
  const candidates = [new URL('./fay-bpf-loader', import.meta.url), new URL('../../../dist/probes/native/fay-bpf-loader', import.meta.url)].map((u) => u.pathname);
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/** Whether the loader is there to run; EnvironmentError saying how to build it when not. */
export function checkLoader(): string {
  const path = loaderPath();
  if (!existsSync(path)) throw new EnvironmentError(`Fay's eBPF loader is not built (${path})`, { hint: 'run scripts/setup.sh (it installs libbpf-dev and builds the loader), or use --backend bpftrace' });
  return path;
}

/** A refusal from the kernel's verifier of a program Fay generated: a bug in Fay, with the verifier's log. */
export class VerifierRefusal extends Error {
  constructor(readonly log: string) {
    super(`the kernel's verifier refused a program Fay's native backend generated (a bug in Fay: please report it with this log)\n${log}`);
    this.name = 'VerifierRefusal';
  }
}

/** How long after a phase flip the reader waits before reading the old maps: programs already running on them finish in microseconds. */
const GRACE_MS = 2;

/**
 * Runs a native program: its loader process (killed with Fay: PR_SET_PDEATHSIG), the program
 * attached, each period's groups read from the map of the phase just closed.
 */
export function runNative(program: NativeProgram, kinds: readonly AggregateKind[], sink: ProbeSink, options: { flushPeriodMs: number; maxGroups: number }): RunningProbe {
  const child = spawn(loaderPath(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string | undefined) => void)[] = [];
  const queued: string[] = [];
  let closed = false;
  lines.on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else queued.push(line);
  });
  lines.on('close', () => {
    closed = true;
    for (const w of waiting.splice(0)) w(undefined);
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const nextLine = (): Promise<string | undefined> => (queued.length > 0 ? Promise.resolve(queued.shift()) : closed ? Promise.resolve(undefined) : new Promise((resolve) => waiting.push(resolve)));
  /** Set when the loader ended while the query ran, not because it was told to: why. */
  let died: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('close', (code, signal) => {
      if (!stopping && (code !== 0 || signal !== null)) died = signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? '?'}`;
      resolve();
    }),
  );
  child.on('error', () => undefined);
  child.stdin.on('error', () => undefined);

  const spec = [
    ...program.maps.map((m) => `map ${m.type} ${m.keySize} ${m.valueSize} ${m.maxEntries} ${m.name} ${m.flags ?? 0}`),
    ...program.programs.map((p) => `prog ${p.type} ${encode(p.code).toString('hex')}`),
    ...program.programs.map((p, i) => `attach ${p.type === PROG_TRACEPOINT ? 'tp' : 'raw'} ${i} ${p.attach}`),
    'go',
  ];
  child.stdin.write(spec.join('\n') + '\n');

  let stopping = false;
  let phase = 0;
  let cpus = 1;
  let periodStart = Date.now() * 1e6;
  let timer: NodeJS.Timeout | undefined;
  /** One read at a time: a period's read and the stop's last one never overlap. */
  let reading: Promise<void> = Promise.resolve();

  const failure = (line: string | undefined): Error => {
    const [, what = 'exit', text = stderr.trim() || 'the loader exited'] = /^error (\S+) ([\s\S]*)$/.exec(line ?? '') ?? [];
    const unescaped = text.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    if (what === 'verifier') return new VerifierRefusal(unescaped);
    return new EnvironmentError(`the kernel refused Fay's native probe (${what}): ${unescaped}`, { hint: 'use --backend bpftrace to run it through bpftrace' });
  };

  const readTable = async (map: number): Promise<{ table: GroupTable; uncounted: number }> => {
    child.stdin.write(`drain ${map}\ndrain ${program.uncounted}\n`);
    const table = new GroupTable(kinds, { maxGroups: options.maxGroups });
    const groups = await readEntries(nextLine);
    for (const [key, value] of groups) table.mergeGroup(decodeKey(program, key), decodeStates(program, kinds, value, cpus));
    const uncounted = (await readEntries(nextLine)).reduce((n, [, value]) => n + sumPerCpu(value, 0, cpus, 8), 0);
    return { table, uncounted };
  };

  /** Closes the period: flips the phase, waits for programs still on the old map, reads it. */
  const closePeriod = (): Promise<void> =>
    (reading = reading.then(async () => {
      if (closed) return;
      const old = phase;
      phase = 1 - phase;
      child.stdin.write(`set ${program.phase} 00000000 ${phase === 1 ? '0100000000000000' : '0000000000000000'}\n`);
      const endNs = Date.now() * 1e6;
      await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
      const { table, uncounted } = await readTable(program.tables[old]!);
      sink.partial({ table, startNs: periodStart, endNs, ...(uncounted > 0 && { uncountedEvents: uncounted }) });
      periodStart = endNs;
    }));

  const attached = (async () => {
    const line = await nextLine();
    if (line === undefined || !line.startsWith('ready ')) {
      if (stopping) throw new StoppedBeforeAttaching();
      throw failure(line);
    }
    cpus = Number(line.split(' ')[4]);
    periodStart = Date.now() * 1e6;
    if (stopping) throw new StoppedBeforeAttaching();
    timer = setInterval(() => void closePeriod().catch(() => undefined), options.flushPeriodMs);
  })();

  let finishing: Promise<void> | undefined;
  const finish = (): Promise<void> =>
    (finishing ??= (async () => {
      stopping = true;
      clearInterval(timer);
      // The last period, when the program ran at all; then the loader frees everything.
      const ran = await attached.then(() => true, () => false);
      if (ran) await closePeriod().catch(() => undefined);
      child.stdin.end('quit\n');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    })());

  // A loader that dies on its own ends the probe too.
  void exited.then(() => {
    if (!stopping) void finish();
  });
  const finished = attached.then(
    async () => {
      await exited;
      await finishing;
      // A loader that died took the probes with it: the query lacks what came after.
      if (died !== undefined) throw new Error(`Fay's eBPF loader ${died} while the query ran${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    },
    (e: unknown) => (e instanceof StoppedBeforeAttaching ? exited.then(() => undefined) : Promise.reject(e as Error)),
  );
  return { attached, finished: finished.then(() => undefined), stop: finish };
}

/** A read's entries: [key bytes, value bytes]. */
async function readEntries(nextLine: () => Promise<string | undefined>): Promise<[Buffer, Buffer][]> {
  const head = await nextLine();
  const n = /^entries (\d+)$/.exec(head ?? '');
  if (!n) throw new Error(`the loader answered "${head ?? 'nothing'}" to a read`);
  const out: [Buffer, Buffer][] = [];
  for (let i = 0; i < Number(n[1]); i++) {
    const [key = '', value = ''] = ((await nextLine()) ?? '').split(' ');
    out.push([Buffer.from(key, 'hex'), Buffer.from(value, 'hex')]);
  }
  if ((await nextLine()) !== 'end') throw new Error('a read of the loader did not end');
  return out;
}

/** A u64 slot added over the CPUs of a per-CPU value. */
function sumPerCpu(value: Buffer, offset: number, cpus: number, stride: number): number {
  let total = 0n;
  for (let c = 0; c < cpus; c++) total += value.readBigUInt64LE(c * stride + offset);
  return Number(BigInt.asIntN(64, total));
}

function decodeKey(program: NativeProgram, key: Buffer): GroupKeyPart[] {
  return program.keys.map((part) => {
    switch (part.kind) {
      case 'const':
        return part.value;
      case 'comm': {
        const bytes = key.subarray(part.offset, part.offset + 16);
        const end = bytes.indexOf(0);
        return bytes.subarray(0, end < 0 ? 16 : end).toString('utf8');
      }
      case 'probe': {
        const id = Number(key.readBigUInt64LE(part.offset));
        if (program.probeNames !== undefined) return program.probeNames[id] ?? `probe_${id}`;
        return `syscall:${SYSCALLS_X86_64[id] ?? `syscall_${id}`}`;
      }
      case 'int':
        return Number(part.signed ? key.readBigInt64LE(part.offset) : key.readBigUInt64LE(part.offset));
    }
  });
}

/** Each aggregate's state from a group's per-CPU value, in the aggregates' wire forms. */
function decodeStates(program: NativeProgram, kinds: readonly AggregateKind[], value: Buffer, cpus: number): unknown[] {
  const stride = (program.valueSize + 7) & ~7;
  return program.aggregates.map((slot, i) => {
    const kind = kinds[i]!;
    const [first, second] = slot.offsets as [number, number | undefined];
    switch (slot.function) {
      case 'count':
      case 'sum':
        return kind.decode(sumPerCpu(value, first, cpus, stride));
      case 'avg':
        return kind.decode([sumPerCpu(value, first, cpus, stride), sumPerCpu(value, second!, cpus, stride)]);
      case 'hist':
      case 'lhist': {
        // Slot b holds bucket b - 1 (the first is below the range).
        const flat: number[] = [];
        for (let b = 0; b < slot.buckets!; b++) {
          const n = sumPerCpu(value, first + 8 * b, cpus, stride);
          if (n !== 0) flat.push(b - 1, n);
        }
        return kind.decode(flat);
      }
      case 'min':
      case 'max': {
        let best: number | null = null;
        for (let c = 0; c < cpus; c++) {
          if (value.readBigUInt64LE(c * stride + second!) === 0n) continue;
          const v = Number(value.readBigInt64LE(c * stride + first));
          best = best === null ? v : slot.function === 'min' ? Math.min(best, v) : Math.max(best, v);
        }
        return kind.decode(best);
      }
    }
  });
}
