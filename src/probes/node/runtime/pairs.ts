import type { PairField, PairSpec, ProbeReport } from './contract.js';
import { hooks } from './hooks.js';
import { clock, mod, ownPath, utilTypes, type RuntimeSession } from './state.js';
import { reserve, type AddProbe, type HandlerFor } from './wrappers.js';

/**
 * Paired probes: a message on one channel and the message on another about the same object (an
 * HTTP request's start and its response's finish) become one event, with the fields of both and
 * the time between them, as a function's entry and its return do. A start whose end never came is
 * in flight: counted, and said when the query ends, never dropped without a word.
 */

/** A header of an HTTP message, from its rawHeaders (an own array of name, value, …): its headers property is a getter. */
function header(message: unknown, name: string): unknown {
  const raw = ownPath(message, ['rawHeaders']);
  if (!Array.isArray(raw) || utilTypes.isProxy(raw)) return undefined;
  for (let i = 0; i + 1 < raw.length && i < 200; i += 2) {
    const key: unknown = raw[i];
    if (typeof key === 'string' && key.toLowerCase() === name) return raw[i + 1] as unknown;
  }
  return undefined;
}

/** The messages a pair's fields read: its start, middle and end, and its notes by name. */
type Messages = Readonly<Record<string, unknown>>;

function read(field: PairField, messages: Messages): unknown {
  const at = ownPath(Object.hasOwn(messages, field.from) ? messages[field.from] : undefined, field.path);
  let value = field.header === undefined ? at : header(at, field.header);
  if ((value === undefined || value === null) && field.or !== undefined) return read(field.or, messages);
  if (field.beforeQuery && typeof value === 'string' && value.includes('?')) value = value.slice(0, value.indexOf('?'));
  if (field.afterScheme && typeof value === 'string' && value.includes('://')) value = value.slice(value.indexOf('://') + 3);
  if (field.prefix !== undefined && typeof value === 'string') {
    const before = read(field.prefix, messages);
    if (typeof before === 'string') value = before + value;
  }
  return value;
}

/** Subscribes a session's pairs: each finished pair runs its probe once, its fields as args[0], its duration as the call's. */
export function openPairs(session: RuntimeSession, pairs: readonly PairSpec[], handlerFor: HandlerFor, addProbe: AddProbe, report: ProbeReport[]): void {
  const dc = mod<typeof import('node:diagnostics_channel')>('diagnostics_channel');
  for (const pair of pairs) {
    const fid = reserve(1);
    addProbe(fid, pair.probe, false, handlerFor(pair.probe));
    /** key object → when it started and its message; a WeakMap, so that an abandoned start holds nothing alive. */
    const started = new WeakMap<object, { at: number; message: unknown; middle?: unknown; notes?: Record<string, unknown> }>();
    const state = { pair, inFlight: 0 };
    const onStart = (message: unknown) => {
      const key = ownPath(message, [pair.key]);
      if (key === null || typeof key !== 'object' || started.has(key)) return;
      started.set(key, { at: clock.now(), message });
      state.inFlight++;
    };
    const onMiddle = (message: unknown) => {
      const key = ownPath(message, [pair.key]);
      const begun = key !== null && typeof key === 'object' ? started.get(key) : undefined;
      if (begun !== undefined) begun.middle = message;
    };
    /** Ends a pair: by its end's message, or by an error (the error channel's message). */
    const ended = (message: unknown, failed: boolean) => {
      const key = ownPath(message, [pair.key]);
      const begun = key !== null && typeof key === 'object' ? started.get(key) : undefined;
      if (begun === undefined) return;
      started.delete(key as object);
      state.inFlight--;
      const fields: Record<string, unknown> = {};
      const messages: Messages = { ...begun.notes, start: begun.message, middle: begun.middle, end: failed ? undefined : message };
      for (const [name, field] of Object.entries(pair.fields)) fields[name] = read(field, messages);
      hooks[fid]!.run([fields], undefined, failed, failed ? ownPath(message, ['error']) : undefined, Math.round((clock.now() - begun.at) * 1e6));
    };
    const onEnd = (message: unknown) => ended(message, false);
    const onError = (message: unknown) => ended(message, true);
    dc.subscribe(pair.start, onStart);
    dc.subscribe(pair.end, onEnd);
    session.channels.push({ name: pair.start, probe: pair.probe, fid, listener: onStart }, { name: pair.end, probe: pair.probe, fid, listener: onEnd });
    if (pair.error !== undefined) {
      dc.subscribe(pair.error, onError);
      session.channels.push({ name: pair.error, probe: pair.probe, fid, listener: onError });
    }
    if (pair.middle !== undefined) {
      dc.subscribe(pair.middle, onMiddle);
      session.channels.push({ name: pair.middle, probe: pair.probe, fid, listener: onMiddle });
    }
    for (const note of pair.notes ?? []) {
      const onNote = (message: unknown) => {
        const key = ownPath(message, note.keyPath);
        const begun = key !== null && typeof key === 'object' ? started.get(key) : undefined;
        if (begun !== undefined) (begun.notes ??= {})[note.name] = message;
      };
      dc.subscribe(note.channel, onNote);
      session.channels.push({ name: note.channel, probe: pair.probe, fid, listener: onNote });
    }
    session.pairs.push(state);
    report.push({ name: pair.probe, probed: true });
  }
}
