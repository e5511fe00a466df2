import type { HandlerHelpers, InstallConfig } from './contract.js';
import { clock, log2, ownPath, utilTypes } from './state.js';

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
    timeNs: () => Math.round((clock.timeOrigin + clock.now()) * 1e6),
    log2,
    pid: cfg.pid,
    comm: cfg.comm,
    host: cfg.host,
  };
}
