import { namesSymbolFunction, type ProbeCapabilities } from '../../plan/catalog.js';
import { compileExpr } from '../../plan/evaluate.js';
import { expr, isGlob, type Expr } from '../../plan/expr.js';
import type { AggregateSpec } from '../../plan/logical.js';

/** How a field reads in the bpftrace clause being generated; undefined when it does not exist there. */
export type FieldReader = (name: string) => string | undefined;

/** How the `probe` field reads in this clause, and the id of each probe point name. */
export interface ProbeIdentity {
  /** A bpftrace expression giving this clause's probe id (an integer). */
  readonly idExpr: string;
  /** Probe point name → id; a name not listed is not a probe of this query. */
  readonly idOf: (name: string) => number | undefined;
}

/** Whether a glob is a plain prefix match ("abc*"), which bpftrace can do with strncmp. */
function prefixOf(pattern: string): string | undefined {
  if (!pattern.endsWith('*')) return undefined;
  const prefix = pattern.slice(0, -1);
  return isGlob(prefix) ? undefined : prefix;
}

function literalProblem(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000b-\u001f\u007f]/.test(value) || value.length > 63
    ? 'strings with control characters or over 63 bytes are not bpftrace literals'
    : undefined;
}

/** What the kernel side of Fay (bpftrace 0.17) can run where the event fires. */
export const BPF_CAPABILITIES: ProbeCapabilities = {
  cannotEvaluate(e: Expr): string | undefined {
    switch (e.kind) {
      case 'Const':
        return typeof e.value === 'string' ? literalProblem(e.value) : undefined;
      case 'Field':
      case 'Column':
        return undefined;
      case 'Match': {
        if (namesSymbol(e.operand)) return SYMBOL_COMPARISON;
        if (e.operand.type === 'stack') return 'bpftrace names a stack\'s frames only when it prints it: its frames are matched in the agent';
        if (isProbeField(e.operand)) return 'the probe name can be compared with == in the kernel, not matched';
        if (isGlob(e.pattern) && prefixOf(e.pattern) === undefined) {
          return `bpftrace 0.17 matches only exact strings and prefixes ("abc*") in the kernel, not "${e.pattern}"`;
        }
        return literalProblem(e.pattern) ?? this.cannotEvaluate(e.operand);
      }
      case 'Binary':
        if (namesSymbol(e.left) || namesSymbol(e.right)) return SYMBOL_COMPARISON;
        if (isProbeField(e.left) || isProbeField(e.right)) {
          const other = isProbeField(e.left) ? e.right : e.left;
          if ((e.operator !== '==' && e.operator !== '!=') || other.kind !== 'Const') {
            return 'the probe name can only be compared with == or != to a probe point name';
          }
          return undefined;
        }
        return this.cannotEvaluate(e.left) ?? this.cannotEvaluate(e.right);
      case 'Negate':
      case 'Not':
        return this.cannotEvaluate(e.operand);
      case 'Call':
        if (e.function === 'join') return JOINED;
        if (e.function === 'ntop') return SOCKET_ADDRESS;
        return e.args.map((a) => this.cannotEvaluate(a)).find((r) => r !== undefined);
    }
  },
  cannotAggregate(aggregate: AggregateSpec): string | undefined {
    return KERNEL_AGGREGATES[aggregate.function];
  },
  cannotGroupBy(_e: Expr): string | undefined {
    return undefined;
  },
};

/** Why bpftrace cannot keep an aggregate in a kernel map, or undefined when it can. */
const KERNEL_AGGREGATES: Readonly<Record<AggregateSpec['function'], string | undefined>> = {
  count: undefined,
  sum: undefined,
  min: undefined,
  max: undefined,
  avg: undefined,
  hist: undefined,
  lhist: undefined,
  stddev: 'bpftrace has no variance, and a kernel sum of squares overflows 64 bits past 3 s in ns',
  quantiles: 'bpftrace has no quantile sketch',
  distinct: 'bpftrace cannot count distinct values without keeping every one',
  topk: 'bpftrace cannot rank values inside the kernel',
  first: 'bpftrace keeps no order of events across CPUs',
  last: 'bpftrace keeps no order of events across CPUs',
  sample: 'whole events are sampled by the agent',
};

const JOINED = "bpftrace's join() prints its strings rather than giving a value: the probe ships them with the event and the agent reads them";

const SOCKET_ADDRESS = 'bpftrace 0.17 cannot choose between an IPv4 and an IPv6 text in the kernel: the probe ships the address\'s bytes with the event and the agent writes them out';

const SYMBOL_COMPARISON = 'bpftrace names a symbol (usym, ksym) only when it prints it, so the name cannot be compared in the kernel';

/** Whether an expression reads a symbol's name (usym, ksym). */
export function namesSymbol(e: Expr): boolean {
  switch (e.kind) {
    case 'Call':
      return namesSymbolFunction(e.function) || e.args.some(namesSymbol);
    case 'Negate':
    case 'Not':
    case 'Match':
      return namesSymbol(e.operand);
    case 'Binary':
      return namesSymbol(e.left) || namesSymbol(e.right);
    default:
      return false;
  }
}

function isProbeField(e: Expr): boolean {
  return e.kind === 'Field' && e.name === 'probe';
}

/** A bpftrace string literal. */
export function bpfString(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n').replaceAll('\t', '\\t')}"`;
}

/**
 * Replaces fields that are constant on this machine (host) by their value and
 * folds operations on constants, so the probe never compares two literals.
 */
export function foldConstants(e: Expr, constants: ReadonlyMap<string, string | number>): Expr {
  const fold = (x: Expr): Expr => foldConstants(x, constants);
  let result: Expr;
  switch (e.kind) {
    case 'Field': {
      const value = constants.get(e.name);
      return value === undefined ? e : expr.const(value, e.type, e.span);
    }
    case 'Const':
    case 'Column':
      return e;
    case 'Negate':
      result = expr.negate(fold(e.operand), e.span);
      break;
    case 'Not':
      result = expr.not(fold(e.operand), e.span);
      break;
    case 'Match':
      result = expr.match(fold(e.operand), e.pattern, e.span);
      break;
    case 'Binary':
      result = expr.binary(e.operator, fold(e.left), fold(e.right), e.span);
      break;
    case 'Call':
      return expr.call(e.function, e.args.map(fold), e.type, e.span);
  }
  const operands = result.kind === 'Binary' ? [result.left, result.right] : [(result as { operand: Expr }).operand];
  if (operands.every((o) => o.kind === 'Const')) return expr.const(compileExpr(result)({}), result.type, e.span);
  return result;
}

/** Compiles a (folded) plan expression to bpftrace. Throws on what the capabilities refuse: that is a planner bug. */
export function toBpf(e: Expr, field: FieldReader, probe: ProbeIdentity | undefined): string {
  const go = (x: Expr) => toBpf(x, field, probe);
  switch (e.kind) {
    case 'Const':
      if (typeof e.value === 'string') return bpfString(e.value);
      if (typeof e.value === 'boolean') return e.value ? '1' : '0';
      return Number.isSafeInteger(e.value) ? String(e.value) : BigInt(Math.trunc(e.value)).toString();
    case 'Field': {
      if (e.name === 'probe' && probe) return probe.idExpr;
      const read = field(e.name);
      if (read === undefined) throw new Error(`field ${e.name} has no bpftrace reading in this clause`);
      return read;
    }
    case 'Column':
      throw new Error('columns do not exist in the probe');
    case 'Negate':
      return `(0 - ${go(e.operand)})`;
    case 'Not':
      return `!(${go(e.operand)})`;
    case 'Match': {
      const operand = go(e.operand);
      if (!isGlob(e.pattern)) return `(${operand} == ${bpfString(e.pattern)})`;
      const prefix = prefixOf(e.pattern);
      if (prefix === undefined) throw new Error(`glob ${e.pattern} cannot run in bpftrace`);
      if (prefix === '') return '1';
      return `(strncmp(${operand}, ${bpfString(prefix)}, ${Buffer.byteLength(prefix)}) == 0)`;
    }
    case 'Binary': {
      if (probe && (isProbeField(e.left) || isProbeField(e.right))) {
        const other = (isProbeField(e.left) ? e.right : e.left) as Extract<Expr, { kind: 'Const' }>;
        const id = probe.idOf(String(other.value));
        if (id === undefined) return e.operator === '==' ? '0' : '1';
        return `(${probe.idExpr} ${e.operator} ${id})`;
      }
      const op = e.operator === 'and' ? '&&' : e.operator === 'or' ? '||' : e.operator;
      return `(${go(e.left)} ${op} ${go(e.right)})`;
    }
    case 'Call':
      if (e.function === 'str' || namesSymbolFunction(e.function)) return `${e.function}(${go(e.args[0]!)})`;
      throw new Error(`function ${e.function} has no bpftrace form`);
  }
}
