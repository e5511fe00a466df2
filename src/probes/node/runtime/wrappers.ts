import type { BuiltinTarget, EditedFunction, ProbeHandler, ProbeReport } from './contract.js';
import { DETACHED, hooks, R } from './hooks.js';
import { clock, commonJsCache, filePath, mod, probes, utilTypes, type RuntimeSession } from './state.js';

/**
 * Probes that are wrappers, not live edits: built-ins (never live-edited), and a function V8 will
 * not edit, on the property that exports it.
 */

/** The handler of each of a session's probes, by name (the code generator's factory applied). */
export type HandlerFor = (probeName: string) => ProbeHandler;
/** Makes a probe of a session live on a reserved id. */
export type AddProbe = (fid: number, name: string, async: boolean, handler: ProbeHandler, awaits?: boolean) => void;

/**
 * A getter that only reads a name, as bundlers write exports (esbuild: `get: () => transpileModule`;
 * tsc and babel: `get: function () { return m.foo; }` reads a property, which may run code: not those).
 * Calling it runs nothing but that read.
 */
const READS_A_NAME = /^(?:\(\)\s*=>\s*[A-Za-z_$][\w$]*|function\s*[\w$]*\s*\(\)\s*\{\s*return\s+[A-Za-z_$][\w$]*;?\s*\})$/;

type Owner = Record<PropertyKey, unknown>;

/** Reserves function ids for instrumentation. */
export function reserve(n: number): number {
  const base = probes.length;
  for (let i = 0; i < n; i++) {
    probes.push(null);
    hooks.push(DETACHED);
  }
  return base;
}

/** Entry and return around a call (wrappers of built-ins, which are not live-edited). */
export function aroundCall(fid: number, args: unknown[], body: () => unknown, self?: unknown): unknown {
  const probe = probes[fid];
  if (!probe || probe.disabled || R.busy) return body();
  const { run } = hooks[fid]!;
  const start = clock.now();
  let result: unknown;
  try {
    result = body();
  } catch (error) {
    run(args, undefined, true, error, Math.round((clock.now() - start) * 1e6), self);
    throw error;
  }
  if (probe.async && result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    // An async function's own promise is never seen by its caller, so a mirror changes nothing;
    // it settles with the same value or reason, once the settle time is taken.
    return (result as Promise<unknown>).then(
      (value) => {
        run(args, value, false, undefined, Math.round((clock.now() - start) * 1e6), self);
        return value;
      },
      (error: unknown) => {
        run(args, undefined, true, error, Math.round((clock.now() - start) * 1e6), self);
        throw error;
      },
    );
  }
  run(args, result, false, undefined, Math.round((clock.now() - start) * 1e6), self);
  return result;
}

/** The value an accessor property exports, where its getter only reads a name (READS_A_NAME); else undefined. */
export function exportedThrough(descriptor: PropertyDescriptor | undefined): unknown {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- a getter that only reads a name: it uses no this
  const get = descriptor?.get;
  if (typeof get !== 'function' || utilTypes.isProxy(get) || !READS_A_NAME.test(Function.prototype.toString.call(get))) return undefined;
  try {
    return get();
  } catch {
    return undefined;
  }
}

/** Where a function is exported: a data property, a getter that can be redefined, or why no wrapper can go there. */
export type ExportPlace = { owner: Owner; key: string; descriptor?: PropertyDescriptor; refusal?: undefined } | { refusal: string };

/**
 * Where a CommonJS module exports the function with this source (found by its text, up to two
 * objects below module.exports, through data properties, never a proxy, at most 10,000 keys an
 * object; and through getters that only read a name, as bundlers export a namespace), or undefined.
 */
export function exportOf(url: string, text: string): ExportPlace | undefined {
  const path = filePath(url);
  if (path === undefined) return undefined;
  const exported = commonJsCache()?.[path]?.exports;
  // Not arrays or typed arrays: their elements are no place for an export, and may be millions.
  const searchable = (v: unknown): v is Owner =>
    v !== null && (typeof v === 'object' || typeof v === 'function') && !utilTypes.isProxy(v) && !Array.isArray(v) && !ArrayBuffer.isView(v);
  const sourceOf = (f: unknown) => (typeof f === 'function' && !utilTypes.isProxy(f) ? Function.prototype.toString.call(f) : undefined);
  // Breadth first: the exports themselves, then what they hold, then what that holds. A module of
  // 8,000 exported functions is then one pass over its exports (each function's own properties
  // and prototype searched first took ~60 ms there, in one stop).
  const seen = new Set<unknown>();
  let level: unknown[] = [exported];
  for (let depth = 0; depth <= 2 && level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const owner of level) {
      if (!searchable(owner) || seen.has(owner)) continue;
      seen.add(owner);
      for (const key of Object.getOwnPropertyNames(owner).slice(0, 10000)) {
        const descriptor = Object.getOwnPropertyDescriptor(owner, key);
        const value: unknown = descriptor && 'value' in descriptor ? descriptor.value : undefined;
        if (sourceOf(value) === text) return { owner, key };
        if (sourceOf(exportedThrough(descriptor)) === text) {
          return descriptor!.configurable
            ? { owner, key, descriptor }
            : { refusal: `its export ${key} is a getter that cannot be redefined (non-configurable, as bundlers define exports), so no wrapper can go there either` };
        }
        if (depth < 2 && searchable(value)) next.push(value);
      }
    }
    level = next;
  }
  return undefined;
}

/**
 * Wraps a function V8 will not live-edit (`why`) on the property that exports it; its report, or
 * undefined if the property will not take it.
 */
export function wrapExport(
  place: { owner: Owner; key: string; descriptor?: PropertyDescriptor },
  f: EditedFunction,
  why: string,
  session: RuntimeSession,
  handlerFor: HandlerFor,
  addProbe: AddProbe,
): ProbeReport | undefined {
  const { owner, key, descriptor } = place;
  const wrapped = descriptor ? wrapGetter(session, { owner, key, descriptor }, f, handlerFor, addProbe) : wrapProperty(session, { owner, key, own: true }, f, handlerFor, addProbe);
  if (!wrapped) return undefined;
  return {
    name: f.name,
    probed: true,
    note: `${why}: a wrapper on its export ${key} ` + 'counts the calls through the exports, not those from inside its module or through references taken before the attach',
  };
}

/** Where a built-in is: its owner and key, and whether the owner has it as its own property; or why it is not there. */
export function resolveBuiltin(target: BuiltinTarget): { owner: Owner; key: string; own: boolean } | string {
  let owner: unknown;
  if (target.module) {
    try {
      owner = mod(target.module);
    } catch {
      return `no built-in module ${target.module}`;
    }
  } else {
    owner = (globalThis as Owner)[target.global ?? ''];
    if (owner === undefined) return `no global ${target.global}`;
  }
  for (const step of target.path) {
    const next = owner === null || owner === undefined ? undefined : (owner as Owner)[step];
    if (next === undefined || next === null) return `${step} not found`;
    owner = next;
  }
  const found = owner as Owner;
  if (typeof found[target.key] !== 'function') return `${target.key} is not a function`;
  return { owner: found, key: target.key, own: Object.prototype.hasOwnProperty.call(found, target.key) };
}

/**
 * Puts the wrapper of a new probe (`probe`: its name, exit, async) on a property ({ owner, key,
 * own }) and keeps the original for detach. Whether it took: not on a frozen object or a read-only property.
 */
export function wrapProperty(
  session: RuntimeSession,
  { owner, key, own }: { owner: Owner; key: string; own: boolean },
  probe: { name: string; exit: boolean; async: boolean },
  handlerFor: HandlerFor,
  addProbe: AddProbe,
): boolean {
  const fid = reserve(1);
  const original = owner[key] as (...args: unknown[]) => unknown;
  const wrapper = makeWrapper(fid, original, probe.exit);
  try {
    owner[key] = wrapper;
  } catch {
    // Verified below.
  }
  if (owner[key] !== wrapper) return false;
  session.wraps.push({ owner, key, own, original, wrapper });
  addProbe(fid, probe.name, probe.async || isAsync(original), handlerFor(probe.name));
  return true;
}

/** As wrapProperty, for an export that a getter gives (it becomes a getter of the wrapper); the getter comes back at detach. */
function wrapGetter(
  session: RuntimeSession,
  { owner, key, descriptor }: { owner: Owner; key: string; descriptor: PropertyDescriptor },
  probe: { name: string; exit: boolean; async: boolean },
  handlerFor: HandlerFor,
  addProbe: AddProbe,
): boolean {
  const original = exportedThrough(descriptor);
  if (typeof original !== 'function') return false;
  const fid = reserve(1);
  const wrapper = makeWrapper(fid, original as (...args: unknown[]) => unknown, probe.exit);
  try {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the setter goes back as it was, unbound
    Object.defineProperty(owner, key, { get: () => wrapper, set: descriptor.set, enumerable: descriptor.enumerable, configurable: true });
  } catch {
    return false;
  }
  if (owner[key] !== wrapper) return false;
  session.wraps.push({ owner, key, own: true, original, wrapper, descriptor });
  addProbe(fid, probe.name, probe.async || isAsync(original), handlerFor(probe.name));
  return true;
}

function makeWrapper(fid: number, original: (...args: unknown[]) => unknown, exit: boolean): (...args: unknown[]) => unknown {
  const wrapper = exit
    ? function (this: unknown, ...args: unknown[]) {
        return new.target
          ? aroundCall(fid, args, () => Reflect.construct(original, args, new.target))
          : aroundCall(fid, args, () => Reflect.apply(original, this, args), this);
      }
    : function (this: unknown) {
        // eslint-disable-next-line prefer-rest-params -- the arguments object itself: no array is made for a call
        const args = arguments;
        hooks[fid]!.run(args, undefined, false, undefined, 0, new.target ? undefined : this);
        const result: unknown = new.target ? Reflect.construct(original, args, new.target) : Reflect.apply(original, this, args);
        return result;
      };
  try {
    Object.defineProperty(wrapper, 'name', { value: original.name });
    Object.defineProperty(wrapper, 'length', { value: original.length });
  } catch {
    // Cosmetic only.
  }
  return wrapper;
}

function isAsync(fn: unknown): boolean {
  return Object.prototype.toString.call(fn) === '[object AsyncFunction]';
}
