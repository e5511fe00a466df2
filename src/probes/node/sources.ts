import { builtinModules } from 'node:module';
import type { FieldSpec, ProbeCapabilities, ResolveFailure, SourceSchema } from '../../plan/catalog.js';
import { globToRegExp, type Expr } from '../../plan/expr.js';
import type { AggregateSpec } from '../../plan/logical.js';
import type { PairSpec } from './runtime/contract.js';
import { nodeProcess, parseSelector, type ProcessSelector } from './processes.js';

/** What a js: pattern names: a built-in module's or global's function, or functions in the process's own scripts. */
export type FunctionPattern =
  | {
      readonly kind: 'builtin';
      /** `fs` for fs.readFile*, undefined for a global such as JSON. */
      readonly module: string | undefined;
      readonly global: string | undefined;
      /** Properties from the module or global to the owner object, e.g. ['Server', 'prototype']. */
      readonly path: readonly string[];
      /** The function's property name, a glob. */
      readonly key: string;
    }
  | {
      readonly kind: 'user';
      /**
       * The script's path, or its last components, a glob (`./lib/db.js` and `lib/db.js`: a path ending
       * with /lib/db.js; `lib/*.js`); undefined: every script of the application (not node_modules).
       */
      readonly file: string | undefined;
      /** The function's name as functions.ts names it, a glob. */
      readonly name: string;
    }
  /** A diagnostics_channel channel: one event per message published on it. */
  | { readonly kind: 'channel'; readonly name: string }
  /** Two channels paired into one event with a duration (PAIRS: http:server, http:client). */
  | { readonly kind: 'pair'; readonly name: string }
  /** CPU samples of the JavaScript thread, through the inspector's Profiler. */
  | { readonly kind: 'profile'; readonly hz: number };

export interface NodeSource {
  readonly point: string;
  readonly selector: ProcessSelector;
  readonly pattern: FunctionPattern;
}

export interface NodeSourceSchema extends SourceSchema {
  readonly node: NodeSource;
}

/** Globals whose functions can be probed by name, e.g. JSON.parse. */
const GLOBALS = new Set(['JSON', 'Math', 'Reflect', 'Object', 'Array', 'Promise', 'Date', 'Buffer', 'process', 'console', 'globalThis', 'URL', 'String', 'Number']);

/** A pattern as the user wrote it, for messages. */
export function describePattern(p: FunctionPattern): string {
  switch (p.kind) {
    case 'builtin':
      return [p.module ?? p.global, ...p.path, p.key].join('.');
    case 'user':
      return `${p.file ? `${p.file}#` : ''}${p.name}`;
    case 'channel':
      return `dc:${p.name}`;
    case 'pair':
      return p.name;
    case 'profile':
      return `profile:js:${p.hz}hz`;
  }
}

/**
 * Which script paths a user pattern's file part names: the path's last components match the glob
 * (`*` crosses slashes); undefined: every script of the application.
 */
export function scriptMatcher(file: string | undefined): RegExp | undefined {
  return file === undefined ? undefined : globToRegExp(`*/${file.replace(/^\.?\/+/, '')}`);
}

/** A pattern's file part as written in a probe point: quoted where it holds what would end the point (a space, | or ,). */
export function fileInPoint(path: string): string {
  return /[\s|,"]/.test(path) ? JSON.stringify(path) : path;
}

const unquoted = (text: string) => /^"(.*)"$/s.exec(text)?.[1] ?? text;

export function parsePattern(written: string): FunctionPattern | string {
  // Quotes keep a path with spaces in one probe point: "/srv/my app/db.js"#query, or the whole pattern.
  const text = unquoted(written);
  // A file ends at the first # that does not begin a private name (Cart.prototype.#total).
  const hash = /(?<!\.)#/.exec(text)?.index;
  if (hash !== undefined) {
    const file = unquoted(text.slice(0, hash));
    const name = text.slice(hash + 1);
    if (name === '') return `"${text}" names a file but no function: add #name`;
    return { kind: 'user', file: /^(\.\/)?\**$/.test(file) ? undefined : file, name };
  }
  const parts = text.split('.');
  const first = parts[0]!;
  const module = builtinModules.includes(first) ? first : undefined;
  const global = module === undefined && GLOBALS.has(first) ? first : undefined;
  if (module !== undefined || global !== undefined) {
    if (parts.length < 2) return `"${text}" names a module, not a function in it, e.g. ${first}.readFile*`;
    return { kind: 'builtin', module, global, path: parts.slice(1, -1), key: parts[parts.length - 1]! };
  }
  return { kind: 'user', file: undefined, name: text };
}

/** Safe projections of a JavaScript value: what js: probes can read of arguments and return values. */
function projections(base: string, what: string): FieldSpec[] {
  return [
    { name: base, type: 'str', description: `${what} as text: strings (first 64 characters), numbers, booleans; otherwise its type` },
    { name: `${base}.type`, type: 'str', description: `typeof ${what} (null and array told apart)` },
    { name: `${base}.length`, type: 'int', description: `length of ${what} if a string or an array, else 0` },
    { name: `${base}.number`, type: 'int', description: `${what} if a finite number (truncated), else 0` },
  ];
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'time', type: 'int', description: 'when the call returned (or began, for entry-only probes), ns since the epoch' },
  { name: 'host', type: 'str', description: 'the machine the process runs on' },
  { name: 'probe', type: 'str', description: 'the function probed, e.g. js:fs.readFileSync' },
  { name: 'pid', type: 'int', description: 'process id' },
  { name: 'tid', type: 'int', description: 'thread id (the process id on the main thread)' },
  { name: 'comm', type: 'str', description: 'process name' },
  { name: 'argc', type: 'int', description: 'how many arguments the call passed' },
  ...Array.from({ length: 8 }, (_, i) => projections(`args[${i}]`, `argument ${i}`)).flat(),
  ...projections('ret', 'the return value (an async function’s settled value)'),
  { name: 'duration', type: 'int', description: 'ns from call to return (for an async function: to settling)', unit: 'ns' },
  { name: 'threw', type: 'bool', description: 'whether the call threw (or the async function rejected)' },
  { name: 'error', type: 'str', description: 'the message of what it threw, else empty' },
];

const CORE = FIELDS.filter((f) => ['time', 'host', 'probe', 'pid', 'tid', 'comm'].includes(f.name));

const CHANNEL_FIELDS: readonly FieldSpec[] = [
  ...CORE,
  { name: 'channel', type: 'str', description: 'the diagnostics_channel the message was published on' },
];

/** `msg.a.b` reads own data properties of the message (never getters); `.type`, `.length`, `.number` project the value. */
function messageField(name: string): FieldSpec | undefined {
  const match = /^msg((?:\.[A-Za-z_$][\w$]*)+)$/.exec(name);
  // msg.type is the message's own field: a projection is a later step's.
  return match ? pathField(name, match[1]!.slice(1).split('.'), false, 'a field of the published message (own data properties only)') : undefined;
}

/** How many properties deep a field reads below an argument, the return value or a message. */
export const MAX_FIELD_DEPTH = 8;

/**
 * `args[0].url`, `args[1].headers.host`, `ret.rows.length`: own data properties below an argument or
 * the return value (never a getter, never through a proxy), at most MAX_FIELD_DEPTH deep; a last
 * step `.type`, `.length` or `.number` projects the value as on `args[0]` itself.
 */
function nestedField(name: string): FieldSpec | undefined {
  const match = /^(args\[[0-7]\]|ret|this)((?:\.[A-Za-z_$][\w$]*)+)$/.exec(name);
  if (!match) return undefined;
  const of = match[1] === 'ret' ? 'the return value' : match[1] === 'this' ? "the call's this (a method's object; none in an arrow function or a constructor)" : match[1];
  return pathField(name, match[2]!.slice(1).split('.'), true, `a property of ${of} (own data properties only, never a getter or a proxy)`);
}

/**
 * A field down a path of own data properties: a last step `type`, `length` or `number` projects
 * what is before it (also the first step, where `projectsFirst`); undefined past MAX_FIELD_DEPTH.
 */
function pathField(name: string, steps: readonly string[], projectsFirst: boolean, description: string): FieldSpec | undefined {
  const last = steps[steps.length - 1]!;
  const projection = ['type', 'length', 'number'].includes(last) && (projectsFirst || steps.length > 1) ? last : undefined;
  if (steps.length - (projection ? 1 : 0) > MAX_FIELD_DEPTH) return undefined;
  return { name, type: projection === 'length' || projection === 'number' ? 'int' : 'str', description };
}

const PROFILE_FIELDS: readonly FieldSpec[] = [
  ...CORE,
  { name: 'jsstack', type: 'stack', description: 'the JavaScript stack of a CPU sample, innermost frame first' },
  {
    name: 'jsframe',
    type: 'str',
    description: 'the innermost frame of a sample: the function running, so count() by jsframe is self time; (idle), (program) and (garbage collector) are time outside JavaScript',
  },
];

/** Aggregates an in-process probe keeps itself. */
const KEPT = new Set(['count', 'sum', 'min', 'max', 'avg', 'hist', 'lhist']);

const FRAMES_NAMED_BY_AGENT = "a profile's frames are named by the agent, as js: probes name functions: compared there, on the samples the process ships";

/** Whether an expression is a profile's stack or frame as such (grouping by one stays in the process; comparing goes to the agent). */
function isFrameField(e: Expr): boolean {
  return e.kind === 'Field' && (e.name === 'jsstack' || e.name === 'jsframe');
}

/** What a JavaScript probe can run inside the traced process. */
export const NODE_CAPABILITIES: ProbeCapabilities = {
  cannotEvaluate(e: Expr): string | undefined {
    switch (e.kind) {
      case 'Call':
        return `${e.function}() reads kernel or native memory; JavaScript probes read values through safe projections`;
      case 'Negate':
      case 'Not':
        return NODE_CAPABILITIES.cannotEvaluate(e.operand);
      case 'Match':
        if (isFrameField(e.operand)) return FRAMES_NAMED_BY_AGENT;
        return NODE_CAPABILITIES.cannotEvaluate(e.operand);
      case 'Binary':
        if (isFrameField(e.left) || isFrameField(e.right)) return FRAMES_NAMED_BY_AGENT;
        return NODE_CAPABILITIES.cannotEvaluate(e.left) ?? NODE_CAPABILITIES.cannotEvaluate(e.right);
      default:
        return undefined;
    }
  },
  cannotAggregate(a: AggregateSpec): string | undefined {
    return KEPT.has(a.function) ? undefined : `an in-process probe keeps only ${[...KEPT].join(', ')}`;
  },
  cannotGroupBy(): string | undefined {
    return undefined;
  },
};

/**
 * The diagnostics_channel channels Node.js 20 publishes on itself (and its bundled undici's, and the
 * tracing:* channels of its TracingChannels). A name outside them is a library's, or a typo: a query
 * on one that no message came on says so when it ends.
 */
export const NODE_CHANNELS: readonly string[] = [
  'http.client.request.start',
  'http.client.request.error',
  'http.client.response.finish',
  'http.server.request.start',
  'http.server.response.finish',
  'net.client.socket',
  'net.server.socket',
  'udp.socket',
  'worker_threads',
  'undici:request:create',
  'undici:request:bodySent',
  'undici:request:headers',
  'undici:request:trailers',
  'undici:request:error',
  'undici:client:sendHeaders',
  'undici:client:beforeConnect',
  'undici:client:connected',
  'undici:client:connectError',
];

/** Whether Node.js itself publishes on a channel of this name. */
export function nodeDefinesChannel(name: string): boolean {
  return NODE_CHANNELS.includes(name) || name.startsWith('tracing:') || name.startsWith('undici:');
}

/**
 * The paired probes: an HTTP request's start and its end, matched by the request object (Node.js
 * publishes both on diagnostics_channel; undici, which fetch() is, three). Their fields, read where they are: the method and URL of
 * the request, the status of the response, the Host header (hostname) from the raw headers (the headers
 * property is a getter, which nothing here runs).
 */
export const PAIRS: Readonly<Record<string, PairSpec>> = {
  'http:server': {
    probe: 'http:server',
    start: 'http.server.request.start',
    end: 'http.server.response.finish',
    key: 'request',
    fields: {
      method: { from: 'start', path: ['request', 'method'] },
      url: { from: 'start', path: ['request', 'url'] },
      path: { from: 'start', path: ['request', 'url'], beforeQuery: true },
      status: { from: 'end', path: ['response', 'statusCode'] },
      hostname: { from: 'start', path: ['request'], header: 'host' },
      // fastify names the route on its handler's channel; express (its router) on the request, under
      // the base path of the router it is mounted on.
      route: {
        from: 'fastify',
        path: ['route', 'url'],
        or: { from: 'end', path: ['request', 'route', 'path'], prefix: { from: 'end', path: ['request', 'baseUrl'] } },
      },
    },
    notes: [{ name: 'fastify', channel: 'tracing:fastify.request.handler:start', keyPath: ['request', 'raw'] }],
  },
  'http:client': {
    probe: 'http:client',
    start: 'http.client.request.start',
    end: 'http.client.response.finish',
    error: 'http.client.request.error',
    key: 'request',
    fields: {
      method: { from: 'start', path: ['request', 'method'] },
      url: { from: 'start', path: ['request', 'path'] },
      path: { from: 'start', path: ['request', 'path'], beforeQuery: true },
      status: { from: 'end', path: ['response', 'statusCode'] },
      hostname: { from: 'start', path: ['request', 'host'] },
    },
  },
  // Requests through undici, which fetch() is: created, their response's headers (the status), then done.
  'http:undici': {
    probe: 'http:undici',
    start: 'undici:request:create',
    middle: 'undici:request:headers',
    end: 'undici:request:trailers',
    error: 'undici:request:error',
    key: 'request',
    fields: {
      method: { from: 'start', path: ['request', 'method'] },
      url: { from: 'start', path: ['request', 'path'] },
      path: { from: 'start', path: ['request', 'path'], beforeQuery: true },
      status: { from: 'middle', path: ['response', 'statusCode'] },
      hostname: { from: 'start', path: ['request', 'origin'], afterScheme: true },
    },
  },
};

/** A paired probe's fields (what PAIRS reads) as the language sees them. */
const PAIR_FIELDS: readonly FieldSpec[] = [
  ...CORE,
  { name: 'method', type: 'str', description: 'the request method, GET, POST …' },
  { name: 'url', type: 'str', description: 'the request target: path and query (first 64 characters)' },
  { name: 'path', type: 'str', description: 'the request path, without its query' },
  { name: 'status', type: 'int', description: 'the response status code' },
  { name: 'hostname', type: 'str', description: 'the host asked for: the Host header on a server, the host connected to by a client (host is the machine, as everywhere)' },
  { name: 'route', type: 'str', description: 'http:server only: the route template that took the request, /users/:id, where the framework names it (fastify, express); else empty' },
  { name: 'duration', type: 'int', description: 'ns from the request start to the response finish (or the error)', unit: 'ns' },
  { name: 'threw', type: 'bool', description: 'whether the request failed (a client\'s: refused, reset, aborted) instead of finishing; its status is then 0' },
  { name: 'error', type: 'str', description: 'the message of the error that ended the request, else empty' },
];

/** The fields a pair reads from its messages (PairSpec.fields), as opposed to those every pair has. */
const READ_BY_PAIRS: ReadonlySet<string> = new Set(Object.values(PAIRS).flatMap((p) => Object.keys(p.fields)));

/** `<selector>:<target>` or `<target>` alone (every Node.js process), as dc: and http: points take them; a string: why the selector is wrong. */
function optionalSelector(rest: string): { selector: ProcessSelector | string; target: string } {
  const explicit = /^(pid=\d+|comm=[^:]+|\*):(.+)$/.exec(rest);
  return explicit ? { selector: parseSelector(explicit[1]!), target: explicit[2]! } : { selector: { kind: 'all' }, target: rest };
}

/** `http:server`, `http:client` or `http:undici` (every Node.js process), or with a selector: `http:pid=4242:server`. */
export function resolvePairPoint(point: string): NodeSourceSchema | ResolveFailure {
  const rest = point.slice('http:'.length);
  const { selector, target } = optionalSelector(rest);
  const name = `http:${target}`;
  if (typeof selector === 'string') return { reason: selector };
  if (!Object.hasOwn(PAIRS, name)) {
    return { reason: `${name} is not a paired probe`, suggestions: Object.keys(PAIRS), hint: 'http:server pairs each request a Node.js server takes with its response; http:client each request it makes with node:http, http:undici with fetch() or undici' };
  }
  if (selector.kind === 'pid' && nodeProcess(selector.pid) === undefined) return { reason: `no Node.js process has pid ${selector.pid}` };
  return {
    point,
    provider: 'node',
    // The fields every pair has, and those this pair reads (route: http:server's only).
    fields: new Map(PAIR_FIELDS.filter((f) => !READ_BY_PAIRS.has(f.name) || Object.hasOwn(PAIRS[name]!.fields, f.name)).map((f) => [f.name, f])),
    capabilities: NODE_CAPABILITIES,
    probeName: name,
    node: { point, selector, pattern: { kind: 'pair', name } },
  };
}

/** `dc:<channel>` (every Node.js process) or `dc:<selector>:<channel>`; channel names may hold colons. */
export function resolveChannelPoint(point: string): NodeSourceSchema | ResolveFailure {
  const rest = point.slice('dc:'.length);
  const { selector, target: channel } = optionalSelector(rest);
  if (typeof selector === 'string') return { reason: selector };
  if (channel === '') return { reason: 'a diagnostics_channel probe point names a channel, e.g. dc:http.client.request.start' };
  if (selector.kind === 'pid' && nodeProcess(selector.pid) === undefined) return { reason: `no Node.js process has pid ${selector.pid}` };
  return {
    point,
    provider: 'node',
    fields: new Map(CHANNEL_FIELDS.map((f) => [f.name, f])),
    fieldFor: messageField,
    capabilities: NODE_CAPABILITIES,
    probeName: `dc:${channel}`,
    node: { point, selector, pattern: { kind: 'channel', name: channel } },
  };
}

/** `profile:js:<selector>:<N>hz`: CPU samples of JavaScript, with their stacks. */
export function resolveProfilePoint(point: string): NodeSourceSchema | ResolveFailure {
  const match = /^profile:js:([^:]+):(\d+)hz$/.exec(point);
  if (!match) return { reason: 'a JavaScript CPU profile is profile:js:<selector>:<N>hz, e.g. profile:js:pid=1234:99hz' };
  const selector = parseSelector(match[1]!);
  if (typeof selector === 'string') return { reason: selector };
  const hz = Number(match[2]);
  if (!(hz >= 1 && hz <= 10000)) return { reason: 'the sampling rate is from 1 to 10000 hz' };
  if (selector.kind === 'pid' && nodeProcess(selector.pid) === undefined) return { reason: `no Node.js process has pid ${selector.pid}` };
  return {
    point,
    provider: 'node',
    fields: new Map(PROFILE_FIELDS.map((f) => [f.name, f])),
    capabilities: NODE_CAPABILITIES,
    node: { point, selector, pattern: { kind: 'profile', hz } },
  };
}

/** Resolves `js:<selector>:<pattern>`: the selector and pattern are checked here; functions are found when attaching. */
export function resolveJsPoint(point: string): NodeSourceSchema | ResolveFailure {
  const rest = point.slice('js:'.length);
  const colon = rest.indexOf(':');
  if (colon <= 0) {
    return { reason: `a JavaScript probe point is js:<selector>:<function>, e.g. js:pid=1234:fs.readFile* or js:comm=node:./lib/db.js#query*` };
  }
  const selector = parseSelector(rest.slice(0, colon));
  if (typeof selector === 'string') return { reason: selector };
  if (selector.kind === 'pid' && nodeProcess(selector.pid) === undefined) {
    return { reason: `no Node.js process has pid ${selector.pid}`, hint: 'fay probes "js:*" lists the Node.js processes here (without touching them)' };
  }
  const pattern = parsePattern(rest.slice(colon + 1));
  if (typeof pattern === 'string') return { reason: pattern };
  return {
    point,
    provider: 'node',
    fields: new Map(FIELDS.map((f) => [f.name, f])),
    fieldFor: nestedField,
    capabilities: NODE_CAPABILITIES,
    node: { point, selector, pattern },
  };
}

/**
 * How a function with no name is named: by where it starts, `anonymous@12` (its line), or
 * `anonymous@12:30` (line and column, where several such functions start on one line).
 */
export const ANONYMOUS = 'anonymous@';

/**
 * Whether a pattern's name part (a glob, as a regular expression, and its text) names a function:
 * functions with no name are named by their place only for patterns that start with `anonymous`,
 * as a shell's * leaves out dotfiles (`*` means the named functions, not every callback).
 */
export function namesFunction(glob: RegExp, text: string, name: string): boolean {
  return glob.test(name) && (!name.startsWith(ANONYMOUS) || namesAnonymous(text));
}

/** Whether a pattern's name part reaches the functions with no name. */
export function namesAnonymous(text: string): boolean {
  return text.startsWith('anonymous');
}
