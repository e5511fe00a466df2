import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { globToRegExp } from '../../plan/expr.js';
import { NODE_DEFAULTS } from './options.js';
import { runtimeScript } from './runtime-script.js';
import { RUNTIME_VERSION, type AttachStalls, type BuiltinTarget, type InstallConfig, type ProbeReport, type ScriptEdit } from './runtime/contract.js';

export type { AttachStall, AttachStalls, ProbeReport } from './runtime/contract.js';
import { closestNames, didYouMean } from '../../errors.js';
import { attach, AttachError, NoMatchingFunctionError, type Attachment } from './attach.js';
import type { AgentChannel, TargetConnection } from './channel.js';
import { findFunctions, instrumentation, tracksAwaits, unedited, type ScriptFunction } from './functions.js';
import type { InspectorClient } from './inspector-client.js';
import type { KeptAggregate } from './codegen.js';
import type { NodeProcess } from './processes.js';
import { ANONYMOUS, describePattern, fileInPoint, namesFunction, PAIRS, scriptMatcher, type FunctionPattern } from './sources.js';

const RUNTIME = runtimeScript();

/** What one attach installs: the handler factory, and settings shared by every process. */
export interface InstallPlan {
  readonly session: string;
  readonly patterns: readonly FunctionPattern[];
  readonly handlers: string;
  readonly exit: boolean;
  /** Whether handlers read the arguments. */
  readonly args: boolean;
  /** Whether handlers read the call's `this` (default: no). */
  readonly self?: boolean;
  /** The aggregates the probe's hooks keep themselves (see NodeProgram.kept); empty: a handler runs. */
  readonly kept: readonly KeptAggregate[];
  readonly host: string;
  readonly maxGroups: number;
  readonly maxRows: number;
  /** A live edit that stops the target this long or longer (ms) is reported. */
  readonly pauseNoticeMs: number;
  /** A script whose live edit is estimated to stop the target longer than this (ms) is not edited. */
  readonly maxPauseMs: number;
  /** How long the live edits stay in the target after the query, inert, for the next query to take over (ms); 0: out at the end. */
  readonly keepEditsMs: number;
}

/** Script URL → source, as read in the target. */
type Sources = Record<string, string>;

function scriptPath(url: string): string {
  return url.startsWith('file://') ? fileURLToPath(url) : url;
}

/**
 * Expands built-in patterns in the target: the function-valued data properties whose names match,
 * and the names of all of them (for suggestions).
 */
async function builtinTargets(
  client: InspectorClient,
  pattern: Extract<FunctionPattern, { kind: 'builtin' }>,
  exit: boolean,
): Promise<{ targets: BuiltinTarget[]; functions: string[] }> {
  const owner = [
    pattern.module ? `process.getBuiltinModule(${JSON.stringify(pattern.module)})` : `globalThis[${JSON.stringify(pattern.global)}]`,
    ...pattern.path.map((p) => `[${JSON.stringify(p)}]`),
  ].join('?.');
  // Descriptors only: listing must not run getters in the target. A pattern without wildcards also
  // reaches an inherited method (http.Server.prototype.emit is EventEmitter's): it is wrapped on the owner.
  const exact = /[*?]/.test(pattern.key) ? null : pattern.key;
  const keys = await client.evaluate<string[] | null>(
    `(() => { const o = ${owner}; if (o === null || typeof o !== 'object' && typeof o !== 'function') return null;` +
      ' const fn = (d) => d && typeof d.value === "function";' +
      ' const own = Object.getOwnPropertyNames(o).filter((k) => fn(Object.getOwnPropertyDescriptor(o, k)));' +
      ` const exact = ${JSON.stringify(exact)};` +
      ' if (exact !== null && !own.includes(exact)) for (let p = Object.getPrototypeOf(o); p; p = Object.getPrototypeOf(p)) {' +
      ' const d = Object.getOwnPropertyDescriptor(p, exact); if (d) { if (fn(d)) own.push(exact); break; } }' +
      ' return own; })()',
  );
  const prefix = [pattern.module ?? pattern.global, ...pattern.path].join('.');
  if (keys === null) throw new AttachError(`${prefix} is not an object in this process`);
  const match = globToRegExp(pattern.key);
  const targets = keys
    .filter((k) => match.test(k))
    .sort()
    .map((key) => ({
      name: `js:${prefix}.${key}`,
      ...(pattern.module ? { module: pattern.module } : { global: pattern.global! }),
      path: pattern.path,
      key,
      exit,
      async: false,
    }));
  return { targets, functions: keys };
}

/** A function's text goes with its edit up to this long (longer ones are looked up in the script, if the process reads it). */
const MAX_FUNCTION_TEXT = 256 * 1024;

/** How many functions one attach may probe. */
const MAX_FUNCTIONS = 4096;


/** Where the runtime connects back to the agent for one attach: the agent's channel (its socket), and the attach's token. */
interface AgentLink {
  readonly channel: AgentChannel;
  readonly token: string;
  /** The process's pid here (in a container's pid namespace it knows itself by another). */
  readonly pid: number;
}

/**
 * What the runtime says of a script the patterns name: its source; or (a file) its length and hash,
 * for the agent to read the file; or (turning the debugger on would stop the process too long) why
 * it cannot say more: the agent reads the file as it is, and nothing is edited.
 */
type ScriptDescription = string | { readonly length: number; readonly hash: string } | { readonly why: string };

/**
 * A script's source as the process runs it: read from its file (through /proc/<pid>/root, which is
 * also a container's root) when the file's length and SHA-256 are what V8 reported, so that a large
 * script does not travel through the inspector (serialising 9 MB stopped the program ~150 ms); else
 * asked of the runtime. Undefined when neither has it.
 */
async function sourceOf(client: InspectorClient, pid: number, url: string, described: ScriptDescription): Promise<string | undefined> {
  if (typeof described === 'string') return described;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  try {
    const text = await readFile(`/proc/${pid}/root${path}`, 'utf8');
    // Unchecked: exports are found by their functions' text, which the process's own must match.
    if ('why' in described) return text;
    if (text.length === described.length && createHash('sha256').update(text, 'utf8').digest('hex') === described.hash) return text;
  } catch {
    // Gone, or not readable here: asked of the process.
  }
  if ('why' in described) return undefined;
  return (await client.evaluate<string | null>(`__fay$.source(${JSON.stringify(url)})`, { awaitPromise: true })) ?? undefined;
}

/**
 * Attaches and reads the sources of the scripts the patterns' files name (scriptFilters), installing
 * the runtime first if the process does not hold this version yet. The runtime (~75 KB) is sent only
 * then: passing it through the inspector cost ~1.2 ms at 30 KB, asking whether it is there ~0.2 ms.
 * With a link, the runtime connects back to the agent meanwhile.
 */
async function attachReading(
  pid: number,
  filters: readonly (string | null)[],
  maxPauseMs: number,
  link?: AgentLink,
): Promise<{ attachment: Attachment<Record<string, ScriptDescription> | null>; sources: Sources }> {
  const runtimeLink = link && { socket: link.channel.path, token: link.token, pid: link.pid };
  const read = `__fay$.scriptsOf(${JSON.stringify(filters)}, ${runtimeLink ? JSON.stringify(runtimeLink) : 'undefined'}, ${maxPauseMs})`;
  // The first expression goes with the pid check: the scripts, if the runtime is there.
  // An attach that installs probes watches what stops the process meanwhile, for its report.
  const attachment = await attach<Record<string, ScriptDescription> | null>(pid, `(globalThis.__fay$?.version === ${RUNTIME_VERSION} ? ${read} : null)`, {
    channel: link?.channel,
    watchStops: link !== undefined,
  });
  try {
    let described = attachment.first;
    if (described === null) {
      // Installing says why it cannot (a string) instead of throwing.
      const installed = await attachment.client.evaluate<{ refused: string } | { scripts: Record<string, ScriptDescription> }>(
        `Promise.resolve((${RUNTIME})(null)).then((installed) => typeof installed === 'string' ? { refused: installed } : ${read}.then((scripts) => ({ scripts })))`,
        { awaitPromise: true },
      );
      if ('refused' in installed) {
        throw new AttachError(`process ${pid}: ${installed.refused}`, { hint: 'try again when the queries of that Fay have ended' });
      }
      described = installed.scripts;
    }
    const sources: Sources = {};
    for (const [url, script] of Object.entries(described)) {
      const source = await sourceOf(attachment.client, pid, url, script);
      if (source !== undefined) sources[url] = source;
    }
    return { attachment, sources };
  } catch (error) {
    await attachment.release();
    throw error;
  }
}

type UserPattern = Extract<FunctionPattern, { kind: 'user' }>;

/** What the runtime reads for these patterns: a regular expression's source per file, null for the application's scripts. */
function scriptFilters(patterns: readonly UserPattern[]): (string | null)[] {
  return [...new Set(patterns.map((p) => scriptMatcher(p.file)?.source ?? null))];
}

/** Whether a script at a path is one the pattern names (its matcher built once). */
function scriptTest(pattern: UserPattern): (path: string) => boolean {
  const file = scriptMatcher(pattern.file);
  return file ? (path) => file.test(path) : (path) => !path.includes('/node_modules/');
}

/**
 * Finds the user functions the patterns name in the sources the runtime read
 * in-process (one debugger pass), as they were before any other query's probes edited them.
 */
function userFunctions(sources: Sources, patterns: readonly UserPattern[], maxFunctions = MAX_FUNCTIONS) {
  const found: { url: string; source: string; path: string; fn: ScriptFunction; functionCount: number }[] = [];
  const skipped: ProbeReport[] = [];
  /** Per pattern that named nothing: the functions of the scripts its file names, and the scripts that would not parse. */
  const misses = new Map(patterns.map((p) => [p, { names: new Set<string>(), unparsed: [] as string[] }]));
  const names = new Map(patterns.map((p) => [p, globToRegExp(p.name)]));
  const files = new Map(patterns.map((p) => [p, scriptTest(p)]));
  for (const [url, source] of Object.entries(sources)) {
    const path = scriptPath(url);
    const mine = patterns.filter((p) => files.get(p)!(path));
    const functions = findFunctions(source);
    if (typeof functions === 'string') {
      for (const p of mine) misses.get(p)?.unparsed.push(`${path}: ${functions}`);
      continue;
    }
    for (const fn of functions) {
      const matching = mine.filter((p) => namesFunction(names.get(p)!, p.name, fn.name));
      for (const p of mine) misses.get(p)?.names.add(fn.name);
      for (const p of matching) misses.delete(p);
      if (matching.length === 0) continue;
      if (fn.generator) skipped.push({ name: `js:${path}#${fn.name}`, probed: false, reason: 'generators are not probed' });
      else found.push({ url, source, path, fn, functionCount: functions.length });
    }
  }
  if (found.length > maxFunctions) throw new AttachError(`the pattern matches ${found.length} functions; narrow it to at most ${maxFunctions}`);
  return { found, skipped, misses };
}

/** The live edits of the functions found, by script ("@fid" marks where each probe id goes: the runtime hands them out). */
function editsOf(found: ReturnType<typeof userFunctions>['found'], plan: InstallPlan): Map<string, ScriptEdit> {
  const edits = new Map<string, ScriptEdit>();
  for (const f of found) {
    const edit = edits.get(f.url) ?? { url: f.url, length: f.source.length, functionCount: f.functionCount, functions: [] };
    edit.functions.push({
      name: `js:${f.path}#${f.fn.name}`,
      async: f.fn.async,
      awaits: plan.exit && tracksAwaits(f.fn),
      unedited: unedited(f.fn),
      start: f.fn.span.start,
      end: f.fn.span.end,
      // Its text finds its export where it is not edited, without the process reading its script.
      ...(f.fn.span.end - f.fn.span.start <= MAX_FUNCTION_TEXT && { text: f.source.slice(f.fn.span.start, f.fn.span.end) }),
      exit: plan.exit,
      insertions: instrumentation(f.fn, '@fid', plan.exit, plan.args, plan.self ?? false),
    });
    edits.set(f.url, edit);
  }
  return edits;
}

/**
 * The live edits for scripts a process loaded after the attach (its runtime sends their sources):
 * the query's functions in them, as the attach would have edited them.
 */
export function lateEdits(plan: InstallPlan, sources: Sources): ScriptEdit[] {
  const userPatterns = plan.patterns.filter((p): p is UserPattern => p.kind === 'user');
  return [...editsOf(userFunctions(sources, userPatterns).found, plan).values()];
}

/**
 * Why a user pattern named no function: no script its file names (with the closest scripts, from
 * `scripts`, every script the process's debugger listed), a script that would not parse, or no
 * function of that name there (with the closest names).
 */
function whyNoFunction(pattern: UserPattern, miss: { names: Set<string>; unparsed: string[] }, scripts: readonly string[]): string {
  const where = pattern.file === undefined ? "the application's scripts" : `"${pattern.file}"`;
  if (miss.unparsed.length > 0) return `cannot read the functions of ${miss.unparsed.join('; ')}`;
  if (pattern.file !== undefined && !scripts.some(scriptTest(pattern))) {
    const base = pattern.file.slice(pattern.file.lastIndexOf('/') + 1);
    const baseOf = (path: string) => path.slice(path.lastIndexOf('/') + 1);
    const close = new Set(closestNames(base, scripts.map(baseOf)));
    const stem = base.replace(/\.[^.]*$/, '');
    const similar = scripts.filter((path) => close.has(baseOf(path)) || (stem.length > 0 && baseOf(path).startsWith(stem))).slice(0, 3);
    return similar.length > 0
      ? `no script of the process matches ${where}; did you mean ${similar.join(', ')}?`
      : `no script of the process matches ${where} (a script is there once it has been required or imported)`;
  }
  const suggestion = didYouMean(pattern.name, miss.names);
  return `no function named ${pattern.name} in ${where}${suggestion ? `; ${suggestion}` : ''}`;
}

/**
 * Attaches to one process and installs the query's probes: the runtime, wrappers on
 * built-ins, live edits of user functions, and the connection back to this agent.
 * The inspector closes behind the probes: `released` resolves once it has and the port is free.
 */
export async function install(
  target: NodeProcess,
  plan: InstallPlan,
  channel: AgentChannel,
  onNotice: (message: string) => void,
): Promise<{ connection: TargetConnection; reports: ProbeReport[]; stalls: AttachStalls; released: Promise<void> }> {
  const userPatterns = plan.patterns.filter((p): p is UserPattern => p.kind === 'user');
  const expected = channel.expect(onNotice);
  // Awaited only once the probes are on; if installing fails first, nobody waits for it.
  expected.connection.catch(() => undefined);
  let attached: Awaited<ReturnType<typeof attachReading>>;
  try {
    attached = await attachReading(target.pid, scriptFilters(userPatterns), plan.maxPauseMs, { channel, token: expected.token, pid: target.pid });
  } catch (error) {
    expected.cancel();
    throw error;
  }
  const { attachment, sources } = attached;
  try {
    const { client } = attachment;
    const { found, skipped, misses } = userFunctions(sources, userPatterns);
    /** Each pattern that named nothing here, and why. */
    const unmatched: { pattern: FunctionPattern; why: () => Promise<string> }[] = [];
    let scripts: Promise<string[]> | undefined;
    for (const [pattern, miss] of misses) {
      unmatched.push({ pattern, why: async () => whyNoFunction(pattern, miss, await (scripts ??= client.evaluate<string[]>('__fay$.scripts()'))) });
    }

    const builtins: BuiltinTarget[] = [];
    for (const p of plan.patterns) {
      if (p.kind !== 'builtin') continue;
      const { targets, functions } = await builtinTargets(client, p, plan.exit);
      builtins.push(...targets);
      if (targets.length > 0) continue;
      const suggestion = didYouMean(p.key, functions);
      const owner = [p.module ?? p.global, ...p.path].join('.');
      unmatched.push({ pattern: p, why: () => Promise.resolve(`${owner} has no function named ${p.key}${suggestion ? `; ${suggestion}` : ''}`) });
    }

    const edits = editsOf(found, plan);
    // Channels and the profiler need no search: they are there in every process.
    const channels = plan.patterns.flatMap((p) => (p.kind === 'channel' ? [{ name: p.name, probe: `dc:${p.name}` }] : []));
    const pairs = plan.patterns.flatMap((p) => (p.kind === 'pair' ? [PAIRS[p.name]!] : []));
    const profile = plan.patterns.find((p): p is Extract<FunctionPattern, { kind: 'profile' }> => p.kind === 'profile');
    const reasons = await Promise.all(
      unmatched.map(async (u) => (plan.patterns.length > 1 ? `${describePattern(u.pattern)}: ` : '') + (await u.why())),
    );
    const hint = `fay probes "js:pid=${target.pid}:*" lists what can be probed there`;
    if (builtins.length === 0 && edits.size === 0 && channels.length === 0 && pairs.length === 0 && !profile) {
      const why = [...reasons, ...skipped.map((s) => `${s.name}: ${s.reason ?? ''}`)].join('; ');
      throw new NoMatchingFunctionError(`no function in process ${target.pid} matches ${plan.patterns.map(describePattern).join(', ')}${why ? `: ${why}` : ''}`, { hint });
    }
    // The others are probed: each pattern that named nothing is said, never counted as zero silently.
    for (const reason of reasons) onNotice(`${reason} (${hint})`);

    const config: InstallConfig = {
      session: plan.session,
      token: expected.token,
      socket: channel.path,
      pid: target.pid,
      comm: target.comm,
      host: plan.host,
      maxGroups: plan.maxGroups,
      maxRows: plan.maxRows,
      args: plan.args,
      self: plan.self ?? false,
      kept: plan.kept,
      pauseNoticeMs: plan.pauseNoticeMs,
      maxPauseMs: plan.maxPauseMs,
      keepEditsMs: plan.keepEditsMs,
      builtins,
      edits: [...edits.values()],
      filters: scriptFilters(userPatterns),
      channels,
      pairs,
      profile: profile ? { hz: profile.hz, probe: `profile:js:${profile.hz}hz` } : undefined,
    };
    // The runtime is there: the attach installed it.
    const { reports, stalls } = await client.evaluate<{ reports: ProbeReport[]; stalls: AttachStalls }>(
      `__fay$.open(${JSON.stringify(config)}, ${plan.handlers}).then((reports) => ({ reports, stalls: __fay$.attachStalls() }))`,
      // Each script's edit may stop the process up to --max-pause (twice: an edit in two steps): it is waited for.
      { awaitPromise: true, timeoutMs: 15_000 + 2 * plan.maxPauseMs * edits.size },
    );
    const connection = await expected.connection;
    // The probes are on: the inspector closes behind them (~1.5 ms), and this process's next attach waits for that.
    return { connection, reports: [...reports, ...skipped], stalls, released: attachment.release() };
  } catch (error) {
    expected.cancel();
    await attachment.release();
    throw error;
  }
}


/** What `fay release` did in one process: how many functions' kept edits went, and the scripts whose edits stay (too long to take out). */
export interface Released {
  readonly functions: number;
  readonly left: readonly { readonly url: string; readonly ms: number; readonly figures: string }[];
}

/**
 * Takes the live edits that ended queries left in a process (see keepEditsMs) out now, its workers'
 * too, each as long as that stops the process no longer than `maxPauseMs`; or null where no Fay
 * runtime is installed. A runtime of an older version answers with a number, and takes all out.
 */
export async function releaseKept(target: NodeProcess, maxPauseMs: number): Promise<Released | null> {
  const attachment = await attach<Released | number | null>(target.pid, `globalThis.__fay$?.dropKeptEdits ? globalThis.__fay$.dropKeptEdits(${maxPauseMs}) : null`);
  await attachment.release();
  const answer = attachment.first;
  return typeof answer === 'number' ? { functions: answer, left: [] } : answer;
}

/** What `fay probes` lists of a process's own code: its functions, and the packages in node_modules that `*` leaves out. */
export interface ProcessFunctions {
  readonly points: readonly string[];
  /** Package name (as node_modules has it: `fastify`, `@scope/name`) → scripts of it the process has loaded; only when no file was named. */
  readonly packages: ReadonlyMap<string, number>;
}

/** The package a script path is in, by its last node_modules directory; undefined for the application's own. */
function packageOf(path: string): string | undefined {
  const at = path.lastIndexOf('/node_modules/');
  if (at < 0) return undefined;
  const parts = path.slice(at + '/node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') && parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts.length > 1 ? parts[0] : undefined;
}

/**
 * Lists what can be probed in a process: the functions of its application's scripts (or, with a
 * file part, of the scripts it names, node_modules included: `fastify/lib/*`), or with a built-in
 * pattern (`fs.*`, `JSON.*`) that module's or global's functions matching it.
 */
export async function listFunctions(target: NodeProcess, pattern?: FunctionPattern): Promise<ProcessFunctions> {
  if (pattern?.kind === 'builtin') {
    // Built-ins need no runtime: their properties are read through the inspector.
    const attachment = await attach(target.pid);
    try {
      const { targets } = await builtinTargets(attachment.client, pattern, false);
      return { points: targets.map((t) => `js:pid=${target.pid}:${t.name.slice('js:'.length)}`), packages: new Map() };
    } finally {
      await attachment.release();
    }
  }
  const file = pattern?.kind === 'user' ? pattern.file : undefined;
  // The runtime reads the live sources (it installs no probe by itself).
  const { attachment, sources } = await attachReading(target.pid, [scriptMatcher(file)?.source ?? null], NODE_DEFAULTS.maxEditPauseMs);
  try {
    const every = [
      { kind: 'user' as const, file, name: '*' },
      { kind: 'user' as const, file, name: `${ANONYMOUS}*` },
    ];
    const { found } = userFunctions(sources, every, Infinity);
    const packages = new Map<string, number>();
    if (file === undefined) {
      for (const path of await attachment.client.evaluate<string[]>('__fay$.scripts()')) {
        const name = packageOf(path);
        if (name !== undefined) packages.set(name, (packages.get(name) ?? 0) + 1);
      }
    }
    return { points: found.map((f) => `js:pid=${target.pid}:${fileInPoint(f.path)}#${f.fn.name}`), packages };
  } finally {
    await attachment.release();
  }
}
