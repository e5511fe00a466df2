import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { GroupTable, type KeyPart as GroupKeyPart } from '../../agg/group-table.js';
import type { AggregateKind } from '../../agg/aggregate.js';
import { EnvironmentError } from '../../errors.js';
import type { Row } from '../../plan/evaluate.js';
import type { Value } from '../../plan/expr.js';
import { SYSCALLS_X86_64 } from '../bpf/syscall-table-x86_64.js';
import { StoppedBeforeAttaching, type ProbeSink, type RunningProbe } from '../provider.js';
import { encode } from './asm.js';
import { PROG_TRACEPOINT, type KeyPart, type NativeProgram } from './codegen.js';

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
  const events = program.ship === undefined ? undefined : new ShippedEvents(program, sink);
  lines.on('line', (line) => {
    // Events come from the ring buffer whenever the loader polls it, between the answers to reads.
    if (events !== undefined && line.startsWith('event ')) return events.add(line);
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
    ...program.programs.map((p, i) => (p.uprobe !== undefined ? `attach up ${i} ${p.uprobe.ret ? 1 : 0} ${p.uprobe.symbol} ${p.uprobe.binary}` : `attach ${p.type === PROG_TRACEPOINT ? 'tp' : 'raw'} ${i} ${p.attach}`)),
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

  /** A per-CPU counter's total since the last read (it is emptied). */
  const drainCounter = async (map: number): Promise<number> => {
    child.stdin.write(`drain ${map}\n`);
    return (await readEntries(nextLine)).reduce((n, [, value]) => n + sumPerCpu(value, 0, cpus, 8), 0);
  };

  const readTable = async (map: number | undefined): Promise<{ table: GroupTable; uncounted: number }> => {
    const table = new GroupTable(kinds, { maxGroups: options.maxGroups });
    if (map === undefined) return { table, uncounted: 0 };
    child.stdin.write(`drain ${map}\n`);
    const groups = await readEntries(nextLine);
    for (const [key, value] of groups) table.mergeGroup(decodeKey(program, key), decodeStates(program, kinds, value, cpus));
    return { table, uncounted: await drainCounter(program.uncounted) };
  };

  /** The events shipped so far delivered, with what was dropped over the budget and lost for want of room. */
  const readEvents = async (): Promise<void> => {
    if (program.ship === undefined || events === undefined) return;
    const dropped = await drainCounter(program.ship.dropped);
    const lost = await drainCounter(program.ship.lost);
    events.flush();
    if (dropped > 0) sink.dropped(dropped);
    if (lost > 0) sink.notice(`the kernel dropped ${lost} events: they came faster than Fay's loader could read them`);
  };

  /** Closes the period: flips the phase, waits for programs still on the old map, reads it. */
  const closePeriod = (): Promise<void> =>
    // After the read before it, whether that one failed or not.
    (reading = reading.catch(() => undefined).then(async () => {
      if (closed) return;
      const old = phase;
      phase = 1 - phase;
      child.stdin.write(`set ${program.phase} 00000000 ${phase === 1 ? '0100000000000000' : '0000000000000000'}\n`);
      const endNs = Date.now() * 1e6;
      await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
      const { table, uncounted } = await readTable(program.tables?.[old]);
      await readEvents();
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
      if (ran) {
        // Detached first: the last period then holds every event the programs saw. In turn with the
        // reads (a period's read may be under way): its answer and the detach's are not mixed up.
        let detached = false;
        await (reading = reading.catch(() => undefined).then(async () => {
          child.stdin.write('detach\n');
          detached = (await nextLine()) === 'detached';
        }));
        if (detached) await closePeriod().catch(() => undefined);
      }
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

/**
 * Events from the ring buffer, as the loader prints them (`event <hex>`), made rows of the
 * shipped values and handed on in batches.
 */
class ShippedEvents {
  private rows: Row[] = [];
  private scheduled = false;
  /** Wall-clock ns less monotonic ns: the program writes monotonic time (bpf_ktime_get_ns). */
  private readonly clockOffsetNs = Date.now() * 1e6 - Number(process.hrtime.bigint());

  constructor(
    private readonly program: NativeProgram,
    private readonly sink: ProbeSink,
  ) {}

  add(line: string): void {
    const record = Buffer.from(line.slice('event '.length), 'hex');
    const row: Record<string, Value> = {};
    for (const { name, part } of this.program.ship!.values) {
      row[name] = part.kind === 'time' ? Number(record.readBigUInt64LE(part.offset)) + this.clockOffsetNs : decodePart(this.program, part, record);
    }
    this.rows.push(row);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    this.sink.events(rows);
  }
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
  return program.keys.map((part) => decodePart(program, part, key));
}

/** A key's part (or a shipped value) from its bytes. */
function decodePart(program: NativeProgram, part: KeyPart, key: Buffer): GroupKeyPart {
  switch (part.kind) {
    case 'const':
      return part.value;
    case 'string': {
      const bytes = key.subarray(part.offset, part.offset + part.size);
      const end = bytes.indexOf(0);
      return bytes.subarray(0, end < 0 ? part.size : end).toString('utf8');
    }
    case 'probe': {
      const id = Number(key.readBigUInt64LE(part.offset));
      if (program.probeNames !== undefined) return program.probeNames[id] ?? `probe_${id}`;
      return `syscall:${SYSCALLS_X86_64[id] ?? `syscall_${id}`}`;
    }
    case 'int':
      return Number(part.signed ? key.readBigInt64LE(part.offset) : key.readBigUInt64LE(part.offset));
  }
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
