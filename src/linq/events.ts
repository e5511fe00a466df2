/**
 * The events each provider gives a FayLINQ lambda, as types, so that an editor
 * completes `e.duration` and `e.args.filename`. They describe the fields a
 * query may read; lambdas are never run on them. Numbers are integers
 * (nanoseconds for `time` and `duration`).
 */

/** Fields every event has. */
export interface BaseEvent {
  readonly time: number;
  readonly host: string;
  readonly probe: string;
  readonly pid: number;
  readonly tid: number;
  readonly comm: string;
}

/** Fields every kernel event has. */
export interface KernelEvent extends BaseEvent {
  readonly cpu: number;
  readonly uid: number;
  readonly kstack: string;
  readonly ustack: string;
}

/** A system call, entry paired with return; `args` by name (known calls below) and by position. */
export interface SyscallEvent<Args = Readonly<Record<string, number | string>>> extends KernelEvent {
  readonly args: Args & { readonly [position: number]: number };
  readonly ret: number;
  readonly duration: number;
}

/** Named arguments of common system calls (strings for `char *`). */
export interface SyscallArgs {
  openat: { dfd: number; filename: string; flags: number; mode: number };
  openat2: { dfd: number; filename: string; how: number; usize: number };
  open: { filename: string; flags: number; mode: number };
  read: { fd: number; buf: number; count: number };
  write: { fd: number; buf: number; count: number };
  pread64: { fd: number; buf: number; count: number; pos: number };
  pwrite64: { fd: number; buf: number; count: number; pos: number };
  close: { fd: number };
  execve: { filename: string; argv: number; envp: number };
  connect: { fd: number; uservaddr: number; addrlen: number };
  accept4: { fd: number; upeer_sockaddr: number; upeer_addrlen: number; flags: number };
  sendto: { fd: number; buff: number; len: number; flags: number; addr: number; addr_len: number };
  recvfrom: { fd: number; ubuf: number; size: number; flags: number; addr: number; addr_len: number };
  unlinkat: { dfd: number; pathname: string; flag: number };
  newfstatat: { dfd: number; filename: string; statbuf: number; flag: number };
  statx: { dfd: number; filename: string; flags: number; mask: number; buffer: number };
  mmap: { addr: number; len: number; prot: number; flags: number; fd: number; off: number };
  getppid: Record<string, never>;
  getpid: Record<string, never>;
  nanosleep: { rqtp: number; rmtp: number };
  clock_nanosleep: { which_clock: number; flags: number; rqtp: number; rmtp: number };
}

/** The argument type of `fay.syscalls(name)`: known for the calls above, by name and position otherwise. */
export type ArgsOfSyscall<Name extends string> = Name extends keyof SyscallArgs ? SyscallArgs[Name] : Readonly<Record<string, number | string>>;

/** A tracepoint; `args` are the fields of its format (known ones below). */
export interface TracepointEvent<Args = Readonly<Record<string, number | string>>> extends KernelEvent {
  readonly args: Args;
}

/** Fields of common tracepoints. */
export interface TracepointArgs {
  'kmem:kmalloc': { call_site: number; ptr: number; bytes_req: number; bytes_alloc: number; gfp_flags: number };
  'kmem:kfree': { call_site: number; ptr: number };
  'sched:sched_switch': { prev_comm: string; prev_pid: number; prev_prio: number; prev_state: number; next_comm: string; next_pid: number; next_prio: number };
  'sched:sched_process_exec': { filename: string; pid: number; old_pid: number };
  'sched:sched_process_exit': { comm: string; pid: number; prio: number };
  'block:block_rq_issue': { dev: number; sector: number; nr_sector: number; bytes: number; rwbs: string; comm: string };
}

export type ArgsOfTracepoint<Name extends string> = Name extends keyof TracepointArgs ? TracepointArgs[Name] : Readonly<Record<string, number | string>>;

/** A native function's call, entry paired with return. */
export interface UprobeEvent extends KernelEvent {
  readonly args: readonly number[];
  readonly ret: number;
  readonly duration: number;
}

/** A CPU sample. */
export type ProfileEvent = KernelEvent;

/**
 * A JavaScript value read through safe projections: as text (a string's first
 * 64 characters, a number, a boolean, otherwise its type), or one of these.
 */
export type JsValue = string & {
  readonly type: string;
  readonly length: number;
  readonly number: number;
};

/**
 * A value's property, read with the same safe projections (own data properties only: never a
 * getter, never through a proxy), nested fields by path up to 8 deep: `e.args[0].headers.host`.
 */
export type JsField = JsValue & { readonly [field: string]: JsField };

/** A JavaScript function's call, entry paired with its return (or its settling). */
export interface JsEvent extends BaseEvent {
  readonly argc: number;
  readonly args: readonly JsField[];
  readonly ret: JsField;
  readonly duration: number;
  readonly threw: boolean;
  readonly error: string;
}

/** A message's field, read with the same safe projections; nested fields by path. */
export type DcField = JsField;

/** A diagnostics_channel message. */
export interface DcEvent extends BaseEvent {
  readonly channel: string;
  readonly msg: { readonly [field: string]: DcField };
}

/** A CPU sample of a Node.js process's JavaScript thread. */
export interface JsProfileEvent extends BaseEvent {
  readonly jsstack: string;
}

/** A row of a stored log (fay query --persist): the fields `R` its query kept, when and where it was collected. */
export type StoredEvent<R extends object = Readonly<Record<string, number | string | boolean>>> = R & {
  /** The event's time, or its window's start (a windows log), ns since the epoch. */
  readonly time: number;
  /** The machine that collected it. */
  readonly host: string;
};
