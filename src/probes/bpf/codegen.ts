import { UsageError } from '../../errors.js';
import { conjuncts, fieldsOf, type Expr } from '../../plan/expr.js';
import type { AggregateSpec, Column } from '../../plan/logical.js';
import type { ProbeStage } from '../../plan/planner.js';
import type { CompileOptions } from '../provider.js';
import { foldConstants, namesSymbol, toBpf, type FieldReader, type ProbeIdentity } from './bpf-expr.js';
import {
  MARK_DRAINED,
  MARK_DUMP,
  MARK_END,
  MARK_FLUSH,
  MARK_READY,
  MARK_ROTATED,
  RING_SLACK,
  mapRefsOf,
  requestComm,
  type AggregateLayout,
  type AggregateMaps,
  type DecodedColumn,
  type KeyColumnLayout,
  type KeyDecoding,
  type MapRef,
  type ProgramLayout,
  type RecordLayout,
  type Rotation,
  type ShipLayout,
} from './layout.js';
import { ProbeIds, sitesOf, type FieldReading, type ProbeSite } from './sites.js';
import { MAX_KERNEL_PROBES, type BpfSourceSchema } from './sources.js';

export interface CodegenInput {
  readonly stage: ProbeStage;
  readonly options: CompileOptions;
  /** Wall-clock ns minus monotonic ns, so that `time` reads as wall-clock time inside the probe. */
  readonly clockOffsetNs: number;
  /** The token of the agent's request to stop (see stopProtocol and requestComm). */
  readonly stopToken: number;
  /** The token of its request to re-arm the flight recorder after reading a dump. */
  readonly rearmToken: number;
}

/** Generates the bpftrace program for a probe stage, and the layout to read its output back. */
export function generateProgram(input: CodegenInput): ProgramLayout {
  return new ProgramBuilder(input).build();
}

const CORE_READINGS: Readonly<Record<string, string>> = {
  pid: 'pid',
  tid: 'tid',
  comm: 'comm',
  cpu: 'cpu',
  uid: 'uid',
  kstack: 'kstack',
  ustack: 'ustack',
};

/** Fields that only exist once a call has returned. */
const RETURN_FIELDS = new Set(['ret', 'duration', 'time']);

/** What ntop() reads of a socket address: family, port and an IPv4 address (8 bytes), or an IPv6 one (to byte 24). */
const SOCKADDR_BYTES = 24;

interface Action {
  /** bpftrace statements that handle one event that passed every filter. */
  emit(read: FieldReader, probe: ProbeIdentity | undefined): string[];
}

class ProgramBuilder {
  private readonly ids = new ProbeIds();
  private readonly stateMaps = new Set<string>();
  private readonly out: string[] = [];
  private readonly constants: ReadonlyMap<string, string | number>;
  private readonly windowed: boolean;
  private readonly saved = new Map<string, string>();
  /** The sampling test, appended to each entry predicate, or undefined when every event is kept. */
  private readonly sampling: string | undefined;
  /** Whether anything reads `duration` (else the return side need not compute it). */
  private needsDuration = false;
  /** Every kernel attach point of the program's clauses (timers and BEGIN/END aside). */
  private readonly attachPoints = new Set<string>();

  constructor(private readonly input: CodegenInput) {
    this.constants = new Map([['host', input.options.host]]);
    this.windowed = input.options.windowed;
    const rate = input.stage.sampleRate;
    // rand is 32 random bits; 24 of them give the rate to within 6e-8.
    this.sampling = rate === undefined || rate >= 1 ? undefined : `(rand & 16777215) < ${Math.round(rate * 2 ** 24)}`;
  }

  build(): ProgramLayout {
    const { stage } = this.input;
    const fold = (e: Expr) => foldConstants(e, this.constants);
    const filters = conjuncts(stage.filter).map(fold).filter((c) => !(c.kind === 'Const' && c.value === true));

    const actions: Action[] = [];
    const used: Expr[] = [];
    let aggregate: AggregateLayout | undefined;
    if (stage.aggregate) {
      const keys = stage.aggregate.keys.map((k) => ({ name: k.name, expr: fold(k.expr) }));
      const aggregates = stage.aggregate.aggregates.map((a) => ({ ...a, argument: a.argument && fold(a.argument) }));
      const built = this.aggregateAction(keys, aggregates);
      aggregate = built.layout;
      actions.push(built.action);
      used.push(...keys.map((k) => k.expr), ...aggregates.flatMap((a) => (a.argument ? [a.argument] : [])));
    }
    let ship: ShipLayout | undefined;
    if (stage.ship) {
      const values = stage.ship.values.map((v) => ({ name: v.name, expr: fold(v.expr) }));
      const built = this.shipAction(values);
      ship = built.layout;
      actions.push(built.action);
      used.push(...values.map((v) => v.expr));
    }
    let record: RecordLayout | undefined;
    if (stage.record) {
      const columns = stage.record.columns.map((c) => ({ name: c.name, expr: fold(c.expr) }));
      const trigger = stage.record.trigger && fold(stage.record.trigger);
      const built = this.recordAction(columns, stage.record.size, trigger);
      record = built.layout;
      actions.push(built.action);
      used.push(...columns.map((c) => c.expr), ...(trigger ? [trigger] : []));
    }
    const action: Action = { emit: (read, probe) => actions.flatMap((a) => a.emit(read, probe)) };

    const needed = new Set<string>();
    for (const e of [...filters, ...used]) fieldsOf(e, needed);
    // Fields read when the call returns (members behind a pointer) make the query pair entry and return too.
    const perProbe = needed.has('probe');
    const sites = stage.sources.flatMap((s) => sitesOf((s.schema as BpfSourceSchema).bpf, false, new ProbeIds()));
    const atReturn = new Set([...needed].filter((n) => sites.some((site) => site.entryField(n)?.atReturn)));
    const paired = needed.has('ret') || needed.has('duration') || atReturn.size > 0;
    this.needsDuration = needed.has('duration');
    const entryFilters = paired ? filters.filter((f) => ![...fieldsOf(f)].some((n) => RETURN_FIELDS.has(n) || atReturn.has(n))) : filters;
    const exitFilters = paired ? filters.filter((f) => !entryFilters.includes(f)) : [];

    this.out.push(`// Generated by Fay for: ${stage.sources.map((s) => s.schema.point).join(', ')}`);
    this.out.push('', 'BEGIN', '{', `  printf("${MARK_READY}\\n");`, '}');
    this.stopProtocol();
    for (const source of stage.sources) {
      const bpf = (source.schema as BpfSourceSchema).bpf;
      for (const site of sitesOf(bpf, perProbe, this.ids)) {
        if (paired) this.pairedClauses(site, entryFilters, exitFilters, action, used);
        else this.singleClause(site, entryFilters, action);
      }
    }
    const dropCounter = ship ? '@fay_dropped' : undefined;
    if (ship) this.stateMaps.add('@fay_rs').add('@fay_rn');
    this.flushClauses(aggregate, dropCounter);
    if (record) this.recordClauses(record, stage.record?.trigger !== undefined);

    // Counted over the whole query: each probe point is within the cap alone, several may not be.
    const probes = [...this.attachPoints].filter((p) => !/^(interval|profile):/.test(p)).length;
    if (probes > MAX_KERNEL_PROBES) {
      throw new UsageError(`the query needs ${probes} kernel probes (entries and returns of every probe point); one query may attach at most ${MAX_KERNEL_PROBES}`, {
        hint: 'narrow the globs, or ask syscall:* (two probes for every system call) instead of the syscalls tracepoints one by one',
      });
    }
    const raw = stage.sources.map((s) => (s.schema as BpfSourceSchema).bpf).find((b) => b.kind === 'syscall' && b.raw);
    return {
      text: `${this.out.join('\n')}\n`,
      aggregate,
      ship,
      probeNames: this.ids.names,
      rawSyscallNames: raw?.kind === 'syscall' ? raw.raw?.names : undefined,
      clockOffsetNs: this.input.clockOffsetNs,
      windowed: this.windowed,
      dropCounter,
      record,
    };
  }

  /**
   * How the agent stops the program without losing output. A thread named
   * requestComm(token) calls kill(2), which fails harmlessly (no process has
   * the pid it names); from then on nothing more is flushed or shipped, and
   * the call prints a marker from the CPU it ran on. Aggregates are read from
   * the maps at exit, so one request and no flush in progress suffice. Shipped events need more:
   * bpftrace drops events it has not read when it exits, so the agent repeats
   * the request pinned to every CPU. A CPU's output buffer is in order: once
   * its marker is read, everything it emitted before was read too. Either
   * way bpftrace is idle when it gets SIGINT (a signal during a blocked write
   * would cost it the rest of its output).
   */
  private stopProtocol(): void {
    this.stateMaps.add('@fay_stop');
    this.clause([`tracepoint:syscalls:sys_enter_kill`], [`comm == "${requestComm(this.input.stopToken)}"`], [
      '@fay_stop = 1;',
      `printf("${MARK_DRAINED}%d\\n", cpu);`,
    ]);
  }

  private identity(site: ProbeSite): ProbeIdentity | undefined {
    return site.probeId === undefined ? undefined : { idExpr: site.probeId, idOf: site.probeIdOf };
  }

  private core(name: string): string | undefined {
    if (name === 'time') return `(nsecs + ${this.input.clockOffsetNs})`;
    return CORE_READINGS[name];
  }

  /** The site with the agent's cgroup scope added to its entry predicate (timers have no process to scope). */
  private scoped(site: ProbeSite): ProbeSite {
    const cgroup = this.input.options.cgroup;
    if (cgroup === undefined || site.entry.every((a) => a.startsWith('interval:'))) return site;
    const scope = `cgroup == cgroupid(${JSON.stringify(cgroup)})`;
    return { ...site, entryFilter: site.entryFilter ? `(${site.entryFilter}) && ${scope}` : scope };
  }

  private singleClause(unscoped: ProbeSite, filters: readonly Expr[], action: Action): void {
    const site = this.scoped(unscoped);
    const read: FieldReader = (name) => this.core(name) ?? readAs(site.entryField(name));
    const identity = this.identity(site);
    // A timer fires until bpftrace exits, which may be seconds after the stop (its probes come out
    // ~70 ms each): once stopped, its ticks are not the query's. (A map lookup a tick; events of
    // other probes, at any rate, are not charged one.)
    const timer = site.entry.every((a) => /^(interval|profile):/.test(a)) ? '!@fay_stop' : undefined;
    const predicate = [site.entryFilter, timer, ...filters.map((f) => toBpf(f, read, identity)), this.sampling];
    this.clause(site.entry, predicate, action.emit(read, identity));
  }

  private pairedClauses(unscoped: ProbeSite, entryFilters: readonly Expr[], exitFilters: readonly Expr[], action: Action, used: readonly Expr[]): void {
    const site = this.scoped(unscoped);
    const exit = site.exit;
    if (exit === undefined) throw new Error('a paired query reached a source without a return probe');
    const key = site.nested ? '[tid, $fay_d]' : '[tid]';
    this.stateMaps.add('@fay_t0');
    if (site.nested) this.stateMaps.add('@fay_depth');

    // Entry-side values the return side reads are saved per thread (and call depth).
    const entryOnly = new Set<string>();
    for (const e of [...exitFilters, ...used]) for (const f of fieldsOf(e)) if (site.entryField(f) && !this.core(f)) entryOnly.add(f);
    const saves: string[] = [];
    const deletes: string[] = [`delete(@fay_t0${key});`];
    const saved = new Set<string>();
    for (const name of entryOnly) {
      const reading = site.entryField(name)!;
      // Members behind one pointer save the pointer once.
      const value = reading.atReturn?.save ?? reading.raw;
      const map = this.savedMap(reading.atReturn ? value : name);
      if (saved.has(map)) continue;
      saved.add(map);
      saves.push(`${map}${key} = ${value};`);
      deletes.push(`delete(${map}${key});`);
    }

    const entryRead: FieldReader = (name) => this.core(name) ?? readAs(site.entryField(name));
    const identity = this.identity(site);
    const entryPredicate = [site.entryFilter, ...entryFilters.map((f) => toBpf(f, entryRead, identity)), this.sampling].filter(
      (p): p is string => p !== undefined,
    );
    const record = [`@fay_t0${key} = nsecs;`, ...saves];
    if (site.nested) {
      // Depth moves on every call, filtered or not, so that returns pair with their own entries.
      const body = ['$fay_d = @fay_depth[tid] + 1;', '@fay_depth[tid] = $fay_d;', ...guard(entryPredicate.slice(site.entryFilter ? 1 : 0), record)];
      this.clause(site.entry, site.entryFilter ? [site.entryFilter] : [], body);
    } else {
      this.clause(site.entry, entryPredicate, record);
    }

    const exitRead: FieldReader = (name) => {
      if (name === 'duration') return '$fay_dur';
      const core = this.core(name);
      if (core) return core;
      const reading = site.exitField(name);
      if (reading) return readAs(reading);
      const entry = site.entryField(name);
      if (!entry) return undefined;
      if (entry.atReturn) {
        const value = entry.atReturn.read(`${this.savedMap(entry.atReturn.save)}${key}`);
        return entry.type === 'str' && !entry.inline ? `str(${value})` : value;
      }
      const saved = `${this.savedMap(name)}${key}`;
      return entry.type === 'str' ? `str(${saved})` : saved;
    };
    const emit = guard(exitFilters.map((f) => toBpf(f, exitRead, identity)), action.emit(exitRead, identity));
    if (site.nested) {
      this.clause(exit, ['@fay_depth[tid]'], [
        '$fay_d = @fay_depth[tid];',
        '@fay_depth[tid] = $fay_d - 1;',
        '$fay_t = @fay_t0[tid, $fay_d];',
        'if ($fay_t) {',
        ...indent([...(this.needsDuration ? ['$fay_dur = nsecs - $fay_t;'] : []), ...emit, ...deletes]),
        '}',
        'if ($fay_d <= 1) { delete(@fay_depth[tid]); }',
      ]);
    } else {
      this.clause(exit, ['@fay_t0[tid]'], [...(this.needsDuration ? ['$fay_dur = nsecs - @fay_t0[tid];'] : []), ...emit, ...deletes]);
    }
  }

  private savedMap(field: string): string {
    let map = this.saved.get(field);
    if (map === undefined) {
      map = `@fay_e${this.saved.size}`;
      this.saved.set(field, map);
      this.stateMaps.add(map);
    }
    return map;
  }

  private clause(attach: readonly string[], predicate: readonly (string | undefined)[], body: readonly string[]): void {
    for (const point of attach) this.attachPoints.add(point);
    const parts = predicate.filter((p): p is string => Boolean(p)).map(unwrap);
    const when = parts.length === 0 ? '' : ` /${parts.map((p) => (parts.length > 1 ? `(${p})` : p)).join(' && ')}/`;
    this.out.push('', `${attach.join(',\n')}${when}`, '{', ...indent(body), '}');
  }

  private aggregateAction(keys: readonly Column[], aggregates: readonly AggregateSpec[]): { layout: AggregateLayout; action: Action } {
    // Group keys: constants on this machine drop out; the rest become printed key parts.
    const printed: { expr: Expr; decoding: KeyDecoding }[] = [];
    const keyLayouts: KeyColumnLayout[] = keys.map((k) => {
      if (k.expr.kind === 'Const') return { kind: 'const', value: k.expr.value };
      const decoding = decodingOf(k.expr);
      printed.push({ expr: k.expr, decoding });
      return { kind: 'printed', index: printed.length - 1, decoding, type: k.expr.type };
    });
    // bpftrace joins key parts with commas: at most one part may contain them. Others are interned to ids.
    const free = printed.map((p, i) => (p.decoding === 'str' || p.decoding === 'stack' ? i : -1)).filter((i) => i >= 0);
    const interned = free.slice(0, -1);
    const dictionaries: string[] = [];
    const internedIndex = new Map<number, number>();
    for (const index of interned) {
      const dictionary = `@fay_nm${dictionaries.length}`;
      internedIndex.set(index, dictionaries.length);
      dictionaries.push(dictionary);
      this.stateMaps.add(`@fay_id${dictionaries.length - 1}`).add('@fay_seq');
      printed[index] = { ...printed[index]!, decoding: { dictionary } };
      const layout = keyLayouts.find((k) => k.kind === 'printed' && k.index === index) as Extract<KeyColumnLayout, { kind: 'printed' }>;
      keyLayouts[keyLayouts.indexOf(layout)] = { ...layout, decoding: { dictionary } };
    }

    // A stack or a symbol is named when its map is printed, and loses its name once its process has
    // exited: such keys print each window's buffers once, never a cumulative map read again later.
    const namedAtPrint = printed.some((p) => p.expr.type === 'stack' || namesSymbol(p.expr));
    const extremes = aggregates.some((a) => a.function === 'min' || a.function === 'max');
    const rotation: Rotation = namedAtPrint ? 'all' : this.windowed && extremes ? 'extremes' : 'none';
    const ref = (base: string, rotates: boolean): MapRef => (rotates ? [`${base}_0`, `${base}_1`] : [base]);
    const additive = rotation === 'all';
    const countRef = ref('@fay_c', additive);
    const mapsOf: AggregateMaps[] = aggregates.map((a, i) => {
      switch (a.function) {
        case 'count':
          return { function: 'count', count: countRef };
        case 'sum':
          return { function: 'sum', sum: ref(`@fay_s${i}`, additive) };
        case 'avg':
          return { function: 'avg', sum: ref(`@fay_s${i}`, additive), count: countRef };
        case 'hist':
          return { function: 'hist', hist: ref(`@fay_h${i}`, additive) };
        case 'lhist':
          return {
            function: 'lhist',
            hist: ref(`@fay_h${i}`, additive),
            buckets: { min: a.params[0]!, max: a.params[1]!, step: a.params[2]! },
          };
        default:
          throw new Error(`${a.function} cannot be kept in a bpftrace map`);
        case 'min':
        case 'max':
          return { function: a.function, value: ref(`@fay_${a.function === 'min' ? 'lo' : 'hi'}${i}`, rotation !== 'none') };
      }
    });
    // A keyed map can fill up: every event that reaches the maps is counted beside them too, and the
    // groups' counts (a count, or a histogram's buckets; one is kept for that if there is neither)
    // say how many of them a group took.
    const histogram = mapsOf.find((m): m is Extract<AggregateMaps, { function: 'hist' | 'lhist' }> => m.function === 'hist' || m.function === 'lhist');
    const counting = aggregates.some((a) => a.function === 'count' || a.function === 'avg');
    const needsCount = counting || (printed.length > 0 && histogram === undefined);
    const seen: AggregateLayout['seen'] =
      printed.length === 0 ? undefined : { total: ref('@fay_seen', additive), counted: needsCount ? countRef : histogram!.hist };
    const writes = (needsCount ? 1 : 0) + aggregates.filter((a) => a.function !== 'count').length;

    const action: Action = {
      emit: (read, probe) => {
        const lines: string[] = rotation === 'none' ? [] : ['$fay_p = @fay_win % 2;'];
        const parts = printed.map((p, i) => {
          const value = toBpf(p.expr, read, probe);
          const dictionary = internedIndex.get(i);
          if (dictionary === undefined) {
            // A string held in a variable keys only the first map it is used in: bpftrace 0.17 gives
            // the next ones a garbage key ("\x01"), so strings are written out in each.
            if (writes > 1 && p.expr.type !== 'str' && !/^[a-z]+$/.test(value)) {
              lines.push(`$fay_k${i} = ${value};`);
              return `$fay_k${i}`;
            }
            return value;
          }
          lines.push(...internLines(dictionary, value));
          return `$fay_i${dictionary}`;
        });
        const key = parts.length === 0 ? '' : `[${parts.join(', ')}]`;
        const write = (target: MapRef, value: string, keyed = true) => {
          const at = keyed ? key : '';
          if (target.length === 1) lines.push(`${target[0]}${at} = ${value};`);
          else lines.push(`if ($fay_p == 0) { ${target[0]}${at} = ${value}; } else { ${target[1]}${at} = ${value}; }`);
        };
        if (seen) write(seen.total, 'count()', false);
        const args = new Map<string, string>();
        const argument = (a: AggregateSpec) => {
          const value = toBpf(a.argument!, read, probe);
          const repeated = aggregates.filter((b) => b.argument && toBpf(b.argument, read, probe) === value).length > 1;
          if (!repeated) return value;
          if (!args.has(value)) {
            args.set(value, `$fay_a${args.size}`);
            lines.push(`${args.get(value)!} = ${value};`);
          }
          return args.get(value)!;
        };
        if (needsCount) write(countRef, 'count()');
        aggregates.forEach((a, i) => {
          const maps = mapsOf[i]!;
          switch (maps.function) {
            case 'count':
              break;
            case 'sum':
            case 'avg':
              write(maps.sum, `sum(${argument(a)})`);
              break;
            case 'hist':
              write(maps.hist, `hist(${argument(a)})`);
              break;
            case 'lhist':
              write(maps.hist, `lhist(${argument(a)}, ${maps.buckets.min}, ${maps.buckets.max}, ${maps.buckets.step})`);
              break;
            case 'min':
            case 'max':
              write(maps.value, `${maps.function}(${argument(a)})`);
              break;
          }
        });
        return lines;
      },
    };
    const freePart = free.length === 0 ? -1 : free[free.length - 1]!;
    return {
      layout: { keys: keyLayouts, printedParts: printed.length, freePart, aggregates: mapsOf, dictionaries, rotation, ...(seen && { seen }) },
      action,
    };
  }

  private shipAction(unordered: readonly Column[]): { layout: ShipLayout; action: Action } {
    // A buffer (ntop's bytes) goes first in the tuple: after a string, bpftrace 0.17 lays it out wrong.
    const isBuffer = (c: Column) => c.expr.kind === 'Call' && c.expr.function === 'ntop';
    const values = [...unordered.filter(isBuffer), ...unordered.filter((c) => !isBuffer(c))];
    const layout: ShipLayout = {
      values: values.map(decodedColumn),
    };
    return {
      layout,
      action: {
        emit: (read, probe) => {
          // join() is a statement that prints: it goes just before the event, which holds a 0 in its
          // place; the decoder puts the text there (one program run writes both to its CPU's buffer).
          const joins: string[] = [];
          const parts = values.map((v) => {
            if (v.expr.kind === 'Call' && v.expr.function === 'ntop') return `buf((uint64)${toBpf(v.expr.args[0]!, read, probe)}, ${SOCKADDR_BYTES})`;
            if (v.expr.kind !== 'Call' || v.expr.function !== 'join') return toBpf(v.expr, read, probe);
            joins.push(`join(${toBpf(v.expr.args[0]!, read, probe)});`);
            return '0';
          });
          // A one-element tuple is not a tuple in bpftrace: pad it.
          if (parts.length < 2) parts.push('0');
          // A budget of events per second; increments race across CPUs, so it may let a few more through,
          // but every event it refuses is counted (per CPU, exactly) and reported.
          return [
            '$fay_sec = nsecs / 1000000000;',
            'if (@fay_rs != $fay_sec) { @fay_rs = $fay_sec; @fay_rn = 0; }',
            `if (@fay_rn < ${this.input.options.maxEventsPerSecond}) {`,
            '  @fay_rn = @fay_rn + 1;',
            `  if (!@fay_stop) { ${[...joins, `print((${parts.join(', ')}));`].join(' ')} }`,
            '} else {',
            '  @fay_dropped = count();',
            '}',
          ];
        },
      },
    };
  }

  /**
   * The flight recorder: each event goes into its CPU's ring (unless frozen);
   * an event that meets the trigger freezes every ring and prints them. The
   * agent re-arms the recorder once it has read the dump.
   */
  private recordAction(columns: readonly Column[], size: number, trigger: Expr | undefined): { layout: RecordLayout; action: Action } {
    const slots = size + RING_SLACK;
    this.stateMaps.add('@fay_ring').add('@fay_ri');
    if (trigger) this.stateMaps.add('@fay_frozen');
    const layout: RecordLayout = {
      ring: '@fay_ring',
      size,
      columns: columns.map(decodedColumn),
    };
    return {
      layout,
      action: {
        emit: (read, probe) => {
          const values = columns.map((c) => toBpf(c.expr, read, probe));
          const dump = trigger
            ? [
                `if (${toBpf(trigger, read, probe)}) {`,
                ...indent(['@fay_frozen = 1;', `printf("${MARK_DUMP}%llu\\n", nsecs);`, 'print(@fay_ring);', `printf("${MARK_END}\\n");`]),
                '}',
              ]
            : [];
          const write = [
            '$fay_r = @fay_ri[cpu];',
            `@fay_ring[cpu, $fay_r % ${slots}] = (nsecs, ${values.join(', ')});`,
            '@fay_ri[cpu] = $fay_r + 1;',
          ];
          // Only a recorder with a trigger ever freezes.
          return trigger ? ['if (!@fay_frozen) {', ...indent([...write, ...dump]), '}'] : write;
        },
      },
    };
  }

  /** Re-arming after a dump, and the dump at the end when there is no trigger. */
  private recordClauses(record: RecordLayout, triggered: boolean): void {
    if (triggered) {
      this.clause(['tracepoint:syscalls:sys_enter_kill'], [`comm == "${requestComm(this.input.rearmToken)}"`], ['@fay_frozen = 0;']);
      return;
    }
    const end = this.out.lastIndexOf('END');
    // The last dump goes before END clears the maps.
    this.out.splice(end + 2, 0, ...indent([`printf("${MARK_DUMP}end\\n");`, `print(${record.ring});`, `printf("${MARK_END}\\n");`]));
  }

  private flushClauses(aggregate: AggregateLayout | undefined, dropCounter: string | undefined): void {
    const period = this.input.options.flushPeriodMs;
    // The events seen are printed before the maps that count them: read a moment earlier, they never exceed them.
    const seen = aggregate?.seen ? [aggregate.seen.total, aggregate.seen.counted] : [];
    const refs = aggregate ? [...new Map([...seen, ...aggregate.aggregates.flatMap(mapRefsOf)].map((r) => [r[0], r])).values()] : [];
    const cumulative = [...refs.filter((r) => r.length === 1).map((r) => r[0]), ...(aggregate?.dictionaries ?? [])];
    if (dropCounter) cumulative.push(dropCounter);
    if (cumulative.length === 0 && refs.length === 0) {
      this.out.push('', 'END', '{', ...indent(this.clearAll([])), '}');
      return;
    }
    const buffers = (parity: 0 | 1) => refs.flatMap((r) => (r.length === 2 ? [r[parity]] : []));
    const flush = [`printf("${MARK_FLUSH}%llu\\n", nsecs);`, ...cumulative.map((m) => `print(${m});`), `printf("${MARK_END}\\n");`];
    const printRotated = (label: string, parity: 0 | 1, clear: boolean) => [
      `printf("${MARK_ROTATED}%llu\\n", ${label});`,
      ...buffers(parity).flatMap((b) => (clear ? [`print(${b});`, `clear(${b});`] : [`print(${b});`])),
      `printf("${MARK_END}\\n");`,
    ];
    const allMaps = [...cumulative, ...buffers(0), ...buffers(1)];

    if ((aggregate?.rotation ?? 'none') === 'none') {
      this.out.push('', `interval:ms:${period} /!@fay_stop/`, '{', ...indent(flush), '}');
      this.out.push('', 'END', '{', ...indent([...flush, ...this.clearAll(allMaps)]), '}');
      return;
    }
    // Windows close on even ticks; each window's buffers are printed and cleared half a period
    // later, when no event can still be writing to them.
    const half = Math.max(1, Math.round(period / 2));
    this.stateMaps.add('@fay_tick').add('@fay_win');
    this.out.push('', `interval:ms:${half} /!@fay_stop/`, '{', ...indent([
      '@fay_tick = @fay_tick + 1;',
      'if (@fay_tick % 2 == 0) {',
      ...indent(['@fay_win = @fay_win + 1;', ...flush]),
      '} else {',
      ...indent([
        '$fay_w = @fay_win;',
        'if ($fay_w % 2 == 1) {',
        ...indent(printRotated('$fay_w - 1', 0, true)),
        '} else { if ($fay_w > 0) {',
        ...indent(printRotated('$fay_w - 1', 1, true)),
        '} }',
      ]),
      '}',
    ]), '}');
    this.out.push('', 'END', '{', ...indent([
      ...flush,
      '$fay_w = @fay_win;',
      'if ($fay_w % 2 == 1) {',
      ...indent([...printRotated('$fay_w - 1', 0, false), ...printRotated('$fay_w', 1, false)]),
      '} else {',
      ...indent([...['if ($fay_w > 0) {', ...indent(printRotated('$fay_w - 1', 1, false)), '}'], ...printRotated('$fay_w', 0, false)]),
      '}',
      ...this.clearAll(allMaps),
    ]), '}');
  }

  /** Clears every map at exit, so that bpftrace's own exit dump prints nothing. */
  private clearAll(maps: readonly string[]): string[] {
    return [...new Set([...maps, ...this.stateMaps])].map((m) => `clear(${m});`);
  }
}

function internLines(dictionary: number, value: string): string[] {
  const id = `$fay_i${dictionary}`;
  // The value is written out each time: bpftrace 0.17 stores a string held in a variable as empty.
  return [
    `${id} = @fay_id${dictionary}[${value}];`,
    `if (${id} == 0) {`,
    // Per-CPU sequence numbers make ids unique without atomics: BPF programs do not nest on one CPU.
    ...indent([
      '@fay_seq[cpu] = @fay_seq[cpu] + 1;',
      `${id} = @fay_seq[cpu] * 4096 + cpu;`,
      `@fay_id${dictionary}[${value}] = ${id};`,
      `@fay_nm${dictionary}[${id}] = ${value};`,
    ]),
    '}',
  ];
}

/** Drops parentheses around a whole expression: `(a == b)` → `a == b`. */
function unwrap(text: string): string {
  if (!text.startsWith('(') || !text.endsWith(')')) return text;
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (depth === 0 && i < text.length - 1) return text;
  }
  return text.slice(1, -1);
}

function readAs(reading: FieldReading | undefined): string | undefined {
  if (reading === undefined) return undefined;
  return reading.type === 'str' && !reading.inline ? `str(${reading.raw})` : reading.raw;
}

function guard(conditions: readonly string[], body: readonly string[]): string[] {
  if (conditions.length === 0) return [...body];
  return [`if (${conditions.join(' && ')}) {`, ...indent(body), '}'];
}

function indent(lines: readonly string[]): string[] {
  return lines.map((l) => `  ${l}`);
}

/** How a printed value reads back: the probe field is printed as the probe's id; the rest as their type. */
function decodingOf(e: Expr): KeyDecoding {
  if (e.kind === 'Call' && e.function === 'join') return 'joined';
  if (e.kind === 'Call' && e.function === 'ntop') return 'sockaddr';
  return e.kind === 'Field' && e.name === 'probe' ? 'probe' : e.type;
}

function decodedColumn(c: Column): DecodedColumn {
  return { name: c.name, type: c.expr.type, decoding: decodingOf(c.expr) };
}
