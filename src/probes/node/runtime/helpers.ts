import type { HandlerHelpers, InstallConfig } from './contract.js';
import { clock, log2, ownPath, utilTypes, wallNow } from './state.js';

/** Proxies first: Array.isArray throws on a revoked one. */
const isArray = (v: unknown): v is unknown[] => typeof v === 'object' && v !== null && !utilTypes.isProxy(v) && Array.isArray(v);

/** A value as a short text, without calling anything of it. */
function text(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length > 64 ? v.slice(0, 64) : v;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(v);
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return 'symbol';
    case 'function':
      return 'function';
    default:
      return v === null ? 'null' : isArray(v) ? 'array' : 'object';
  }
}

/** The wall clock (ms) at the monotonic clock's zero: performance.timeOrigin, moved when the wall clock steps. */
let wallAtZeroMs = clock.timeOrigin;

/**
 * The wall clock in ns, to the µs: the monotonic clock plus where the wall clock stood at its zero.
 * A process lives for weeks; when its wall clock is stepped (NTP, a virtual machine resumed),
 * performance.timeOrigin still says where it stood at the start, so its times would be off by the
 * step from every other host's: a drift past a ms from Date.now() takes Date.now() again.
 */
function wallTimeNs(): number {
  const now = clock.now();
  const drift = wallAtZeroMs + now - wallNow();
  if (drift < -0.5 || drift > 1.5) wallAtZeroMs = wallNow() + 0.5 - now;
  return Math.round((wallAtZeroMs + now) * 1e6);
}

/** Safe projections of a value for a session's handlers: they never call user code (no getters, no proxies, no toString). */
export function handlerHelpers(cfg: InstallConfig): HandlerHelpers {
  return {
    text,
    type: (v) => (v === null ? 'null' : isArray(v) ? 'array' : typeof v),
    length: (v) => (typeof v === 'string' || isArray(v) ? v.length : 0),
    number: (v) => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : typeof v === 'bigint' ? Number(v) : 0),
    message: (e) => {
      if (e !== null && typeof e === 'object' && !utilTypes.isProxy(e)) {
        const d = Object.getOwnPropertyDescriptor(e, 'message');
        if (d && 'value' in d && typeof d.value === 'string') return d.value.slice(0, 200);
      }
      return text(e);
    },
    path: ownPath,
    timeNs: wallTimeNs,
    log2,
    pid: cfg.pid,
    comm: cfg.comm,
    host: cfg.host,
  };
}
