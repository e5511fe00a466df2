import type { AggregateSpec } from './logical.js';
import type { Expr, ValueType } from './expr.js';

/** One field an event source offers. */
export interface FieldSpec {
  readonly name: string;
  readonly type: ValueType;
  readonly description: string;
  /** `ns`: a duration in nanoseconds, which results show as a time (1.23ms). */
  readonly unit?: Unit;
  /** What the address this field holds points to, where a function reads it: an array of strings (execve's argv) for join(), a socket address for ntop(). */
  readonly pointsTo?: 'strings' | 'sockaddr';
}

/** The unit of a field's values, where results show them in it. */
export type Unit = 'ns';

/**
 * What a provider can do inside the probe. Each method returns why something
 * cannot run there, or undefined when it can; the planner moves what cannot
 * to the machine stage and explain prints the reason.
 */
export interface ProbeCapabilities {
  /** Why this predicate or value expression cannot be evaluated where the event fires. */
  cannotEvaluate(e: Expr): string | undefined;
  /** Why this aggregate cannot be kept in the probe. */
  cannotAggregate(aggregate: AggregateSpec): string | undefined;
  /** Why this expression cannot be a group key in the probe. */
  cannotGroupBy(e: Expr): string | undefined;
}

/** A probe point resolved on this machine: its canonical text, provider and fields. */
export interface SourceSchema {
  /** Canonical probe point, e.g. `syscall:openat` or `tracepoint:kmem:kmalloc`. */
  readonly point: string;
  /** The provider that runs it, e.g. `bpf`. */
  readonly provider: string;
  readonly fields: ReadonlyMap<string, FieldSpec>;
  /** Fields not listed in advance (a message's own fields), looked up by name; undefined when there are none. */
  readonly fieldFor?: (name: string) => FieldSpec | undefined;
  readonly capabilities: ProbeCapabilities;
  /**
   * The `probe` field of every event of this point, where the point names exactly one probe (no
   * glob): `count() by probe` then shows it with 0 when it never fired, so that zero is an answer.
   */
  readonly probeName?: string;
}

/** Why a probe point could not be resolved, with the nearest valid names. */
export interface ResolveFailure {
  readonly reason: string;
  readonly suggestions?: readonly string[];
  readonly hint?: string;
  /** Unavailable here (kernel policy, missing tool) rather than misspelled. */
  readonly unavailable?: boolean;
}

/** Resolves probe points to schemas. Implemented by the providers; injected into the binder. */
export interface ProbeCatalog {
  resolve(point: string): SourceSchema | ResolveFailure;
}

export function isResolveFailure(r: SourceSchema | ResolveFailure): r is ResolveFailure {
  return 'reason' in r;
}

/** Functions FayQL expressions may call, their argument and result types. */
export interface FunctionSpec {
  readonly args: readonly ValueType[];
  readonly result: ValueType;
  readonly description: string;
  /** Its argument is a field that holds the address of this (FieldSpec.pointsTo), as `example` says. */
  readonly reads?: { readonly pointsTo: NonNullable<FieldSpec['pointsTo']>; readonly example: string };
  /** Its value is a symbol's name, found in user space when the probe's output is read. */
  readonly symbol?: true;
}

export const FUNCTIONS: Readonly<Record<string, FunctionSpec>> = {
  now: { args: [], result: 'int', description: 'wall-clock time when the query started, in ns since the epoch' },
  str: { args: ['int'], result: 'str', description: 'the NUL-terminated string at an address in the traced process' },
  usym: { args: ['int'], result: 'str', symbol: true, description: 'the function of the traced process at a code address (its symbol), e.g. a thread start routine' },
  ksym: { args: ['int'], result: 'str', symbol: true, description: 'the kernel function at a code address (its symbol)' },
  join: {
    args: ['int'],
    result: 'str',
    reads: { pointsTo: 'strings', example: "an array of strings, such as execve's args.argv or args.envp" },
    description: "an array of strings (execve's args.argv, args.envp): its first 16, joined by spaces",
  },
  ntop: {
    args: ['int'],
    result: 'str',
    reads: { pointsTo: 'sockaddr', example: "a socket address, such as connect's args.uservaddr" },
    description: "a socket address (connect's args.uservaddr, a struct sockaddr *) as text: 127.0.0.1:80, [::1]:443; empty for other families",
  },
};

/** Whether a function's value is a symbol's name (usym, ksym). */
export function namesSymbolFunction(name: string): boolean {
  return Object.hasOwn(FUNCTIONS, name) && FUNCTIONS[name]!.symbol === true;
}
