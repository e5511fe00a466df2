import type { KeptAggregate } from '../codegen.js';
import type { Insertion } from '../functions.js';

/**
 * What the agent and the runtime inside a traced process agree on: the runtime's version, the
 * config an attach sends, the handler factory the code generator writes, the hooks instrumented
 * code calls and what comes back. Types only, and two constants: both sides import this file.
 */

/** The runtime's version: a process holding another one gets this one (see main.ts). Change it with every change to runtime/. */
export const RUNTIME_VERSION = 26;

/** The URL of Fay's own code in a target (what the agent evaluates, the hooks the runtime compiles): its frames in profiles and stacks say it. */
export const OWN_URL = 'fay:runtime';

/** Safe projections of a value for handlers: they never call the program's code (no getters, no proxies, no toString). */
export interface HandlerHelpers {
  text(value: unknown): string;
  type(value: unknown): string;
  length(value: unknown): number;
  number(value: unknown): number;
  message(error: unknown): string;
  /** A value down a path of own data properties. */
  path(value: unknown, steps: readonly string[]): unknown;
  timeNs(): number;
  log2(value: number): number;
  readonly pid: number;
  readonly comm: string;
  readonly host: string;
}

/** One group of a session's aggregates: its key and its aggregates' states. */
export interface GroupEntry {
  key: unknown[];
  s: unknown[];
}

/** A session's aggregates and shipped rows since the last flush, which handlers write. */
export interface SessionState {
  groups: Map<string, GroupEntry>;
  rows: unknown[][];
  dropped: number;
  folded: number;
  /** Moves at each flush: a handler's cached group is stale once it does. */
  epoch: number;
  maxGroups: number;
  maxRows: number;
}

/** What a probe does with one call: its arguments (when the plan reads them), return value or exception, and duration in ns. */
/** A handler of finished calls: `self` is the call's `this` where the probe reads it (not in an arrow function or a constructor). */
export type ProbeHandler = (args: ArrayLike<unknown> | undefined, ret: unknown, threw: boolean, error: unknown, ns: number, self?: unknown) => void;

/** The code generator's output (codegen.ts): given the helpers and the session's state, a handler per probe name. */
export type HandlerFactory = (helpers: HandlerHelpers, state: SessionState) => (probeName: string) => ProbeHandler;

/**
 * An open synchronous call: its depth (a number); an async call: an object that outlives its
 * caller's frame; undefined: the probe was off when the call began.
 */
export type CallFrame = number | AsyncFrame | undefined;

export interface AsyncFrame {
  args: ArrayLike<unknown> | undefined;
  start: number;
  done: boolean;
  /** Counts its awaits. */
  step: number;
}

/**
 * The hooks of one probe: live-edited code calls them as `__fay$.h[fid].<hook>` (functions.ts
 * writes the calls; the letters keep the inserted text short, which V8's live edit diffs).
 */
export interface ProbeHooks {
  /** Runs the probe for one finished call. */
  run: ProbeHandler;
  /** Ends the synchronous frames still open (between turns of the event loop, an exception ended them). */
  endAll(): void;
  /** Entry-only probes: called first thing in an instrumented function. */
  e(args: ArrayLike<unknown> | undefined, self?: unknown): void;
  /** Begins a call's frame. */
  b(args: ArrayLike<unknown> | undefined, self?: unknown): CallFrame;
  /** A return: hands the value through and ends the frame. */
  r<T>(frame: CallFrame, value: T): T;
  /** A throw statement: hands the exception through and ends the frame. */
  t<T>(frame: CallFrame, error: T): T;
  /** An await in an async function: hands its operand through, watched. */
  a(frame: CallFrame, value: unknown): unknown;
}

/** A built-in function to wrap: where it is (a built-in module or a global, then a path of properties) and its key. */
export interface BuiltinTarget {
  name: string;
  module?: string;
  global?: string;
  path: readonly string[];
  key: string;
  exit: boolean;
  async: boolean;
}

/** One function of a script's edit. */
export interface EditedFunction {
  name: string;
  async: boolean;
  awaits: boolean;
  /** Why V8 would silently not apply its edit (it gets a wrapper on its export, or is reported). */
  unedited?: string;
  start: number;
  end: number;
  /** Its source, to find its export by (absent when long: then read from the script). */
  text?: string;
  exit: boolean;
  insertions: Insertion[];
}

/**
 * The live edit of one script the agent computed from its pristine source: its length (to check the
 * script is still what was read), how many functions it has (an edit's cost grows with them), and
 * each function with where it is, which the runtime needs to see what V8 will edit.
 */
export interface ScriptEdit {
  url: string;
  length: number;
  functionCount: number;
  functions: EditedFunction[];
}

/** Where a paired probe reads one of its fields: a path of own data properties of one end's message, or a header of a message's HTTP message. */
export interface PairField {
  /** `start`, `middle`, `end`, or the name of one of the pair's notes. */
  readonly from: string;
  readonly path: readonly string[];
  /** Read instead where this one is undefined or null (another framework's place for the same thing). */
  readonly or?: PairField;
  /** A string read before this one's, where both are strings (a mounted router's base path). */
  readonly prefix?: PairField;
  /** The value at `path` is an HTTP message: read this header from its rawHeaders (never its headers getter). */
  readonly header?: string;
  /** Only the text before a `?` (a URL's path without its query). */
  readonly beforeQuery?: boolean;
  /** The text after a `scheme://` (an origin's host and port). */
  readonly afterScheme?: boolean;
}

/**
 * Two diagnostics_channel channels paired into one event per pair: a message on `start` and the
 * message on `end` whose `key` property is the same object (an HTTP request), like an entry and its
 * return. The event's fields are read from either end; its duration is the time between them.
 */
export interface PairSpec {
  /** The probe's name, e.g. http:server. */
  readonly probe: string;
  readonly start: string;
  /** A channel between them whose message about the same object fields may read too (undici's response headers). */
  readonly middle?: string;
  readonly end: string;
  /** A channel that ends the pair with an error instead (its message's `error`): the event says threw, and the error. */
  readonly error?: string;
  readonly key: string;
  /** Channels of frameworks that say more about the same object (fastify's handler names its route), for fields to read. */
  readonly notes?: readonly PairNote[];
  readonly fields: Readonly<Record<string, PairField>>;
}

/** A framework's channel whose message about a pair's object is kept for its fields: the object is at `keyPath` of the message. */
export interface PairNote {
  readonly name: string;
  readonly channel: string;
  readonly keyPath: readonly string[];
}

/** What one attach installs in a process (sent as JSON with `__fay$.open(config, factory)`). */
export interface InstallConfig {
  session: string;
  /** The agent's socket and this attach's token, to connect back with; absent in a worker (it relays). */
  token?: string;
  socket?: string;
  pid: number;
  comm: string;
  host: string;
  maxGroups: number;
  maxRows: number;
  /** Whether handlers read the arguments. */
  args: boolean;
  /** Whether handlers read the call's `this`. */
  self: boolean;
  kept: readonly KeptAggregate[];
  pauseNoticeMs: number;
  maxPauseMs: number;
  keepEditsMs: number;
  builtins: readonly BuiltinTarget[];
  edits: ScriptEdit[];
  filters: readonly (string | null)[];
  channels: readonly { name: string; probe: string }[];
  pairs: readonly PairSpec[];
  profile?: { hz: number; probe: string };
  /** In a worker: the channel its main thread's session relays on. */
  relay?: string;
}

/** Whether each function a query named is probed in a process, and if not, why. */
export interface ProbeReport {
  readonly name: string;
  readonly probed: boolean;
  readonly reason?: string;
  readonly note?: string;
}

/** A stop of a process's JavaScript by a step of the attach (the debugger turning on, an edit, …), and how long. */
export interface AttachStall {
  readonly what: string;
  readonly ms: number;
}

/** How an attach stopped a process, as the process saw it. */
export interface AttachStalls {
  /** The steps of Fay's that stop the program, measured each, longest first. */
  readonly steps: readonly AttachStall[];
  /** The garbage collections meanwhile, ms each (the program's or the attach's allocations may cause them). */
  readonly gcs: readonly number[];
  /** The longest the event loop was held up meanwhile, whatever held it (ms, ±5). */
  readonly heldMs: number;
}
