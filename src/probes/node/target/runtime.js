// Fay's runtime inside a traced Node.js process. The agent evaluates this function
// expression through the inspector with a JSON config and a handler factory that its
// code generator produced from the checked plan; no text a user wrote is evaluated.
// It must stand alone: no imports, only globals and process.getBuiltinModule.
(function faySetup(config, makeHandlers) {
  'use strict';
  const VERSION = 1;
  const G = globalThis;
  let runtime = G.__fay$;
  if (!runtime || runtime.version !== VERSION) {
    runtime = createRuntime();
    Object.defineProperty(G, '__fay$', { value: runtime, configurable: true, enumerable: false, writable: false });
  }
  return config === null ? runtime.version : runtime.open(config, makeHandlers);

  function createRuntime() {
    const mod = (name) => process.getBuiltinModule(name);
    const clock = G.performance;
    // Captured before any probe can wrap them, so that the runtime's own use is never counted.
    const toJson = JSON.stringify;
    const fromJson = JSON.parse;
    /** fid → live probe, or null once detached (instrumented code then passes straight through). */
    const probes = [];
    const sessions = new Map();
    let nextFid = 1;
    /**
     * One in-process inspector session for the runtime's whole life: within a session a script keeps
     * its id across live edits, whereas a new session also lists the stale versions each edit leaves.
     */
    let debug;
    /** url → script id, as this session first saw it. */
    const scriptIds = new Map();
    /** Set while a handler runs: calls it makes to probed functions are not probed again. */
    let inHandler = false;

    function run(probe, self, args, ret, threw, error, ms) {
      if (probe.disabled || inHandler) return;
      probe.calls++;
      if (probe.every > 1 && probe.calls % probe.every !== 0) return;
      inHandler = true;
      try {
        probe.handler(args, ret, threw, error, ms);
      } catch (e) {
        // A probe that throws is switched off and reported; the traced call goes on unchanged.
        probe.disabled = true;
        probe.session.notice(`probe ${probe.name} threw and was disabled: ${e && e.message ? e.message : String(e)}`);
      } finally {
        inHandler = false;
      }
    }

    /** Ends the frames above `frame` on its probe's stack: calls that a callee's exception ended. */
    function unwind(probe, frame) {
      const stack = probe.stack;
      while (stack.length > 0) {
        const top = stack.pop();
        if (top === frame) return;
        finish(top, undefined, true, undefined);
      }
    }

    function finish(frame, value, threw, error) {
      frame.done = true;
      run(frame.probe, frame.self, frame.args, value, threw, error, clock.now() - frame.start);
    }

    const rt = {
      version: VERSION,
      /** Entry-only probes: called first thing in an instrumented function. */
      e(fid, self, args) {
        const probe = probes[fid];
        if (probe) run(probe, self, args, undefined, false, undefined, 0);
      },
      /** Begins a frame for a probe that needs the return side (live-edited code). */
      b(fid, self, args) {
        const probe = probes[fid];
        if (!probe || probe.disabled || inHandler) return undefined;
        const frame = { probe, self, args, start: clock.now(), done: false };
        // Synchronous frames nest strictly; an async function's frame outlives its caller's.
        if (!probe.async) probe.stack.push(frame);
        return frame;
      },
      /** A return: hands the value through, and ends the frame. */
      r(frame, value) {
        if (frame !== undefined && !frame.done) {
          if (!frame.probe.async) unwind(frame.probe, frame);
          finish(frame, value, false, undefined);
        }
        return value;
      },
      /** A throw statement: hands the exception through, and ends the frame. */
      t(frame, error) {
        if (frame !== undefined && !frame.done) {
          if (!frame.probe.async) unwind(frame.probe, frame);
          finish(frame, undefined, true, error);
        }
        return error;
      },
      /** Entry and return around a call (wrappers of built-ins, which are not live-edited). */
      x(fid, self, args, body) {
        const probe = probes[fid];
        if (!probe || probe.disabled || inHandler) return body();
        const start = clock.now();
        let result;
        try {
          result = body();
        } catch (error) {
          run(probe, self, args, undefined, true, error, clock.now() - start);
          throw error;
        }
        if (probe.async && result !== null && typeof result === 'object' && typeof result.then === 'function') {
          // An async function's own promise is never seen by its caller, so a mirror changes nothing;
          // it settles with the same value or reason, once the settle time is taken.
          return result.then(
            (value) => {
              run(probe, self, args, value, false, undefined, clock.now() - start);
              return value;
            },
            (error) => {
              run(probe, self, args, undefined, true, error, clock.now() - start);
              throw error;
            },
          );
        }
        run(probe, self, args, result, false, undefined, clock.now() - start);
        return result;
      },
      /** The current source of each script (by url), for the agent to find functions in. */
      async sources(urls) {
        const session = await debugging();
        const out = {};
        try {
          for (const url of urls) {
            const scriptId = scriptIds.get(url);
            if (scriptId !== undefined) out[url] = (await post(session, 'Debugger.getScriptSource', { scriptId })).scriptSource;
          }
        } finally {
          await post(session, 'Debugger.disable');
        }
        return out;
      },
      /** Reserves function ids for the instrumentation the agent is about to write. */
      reserve(n) {
        const base = nextFid;
        nextFid += n;
        return base;
      },
      open,
      sessions,
    };
    return rt;

    async function open(cfg, factory) {
      const session = {
        id: cfg.session,
        fids: [],
        wraps: [],
        edits: [],
        socket: undefined,
        state: { groups: new Map(), rows: [], dropped: 0, folded: 0 },
        closed: false,
        notice(message) {
          send({ type: 'notice', message });
        },
      };
      sessions.set(session.id, session);
      const S = session.state;
      S.maxGroups = cfg.maxGroups;
      S.maxRows = cfg.maxRows;
      const handlerFor = factory(helpers(cfg), S);
      const report = [];

      // Built-ins: wrap the property, verify it took, keep the original.
      for (const target of cfg.builtins) {
        const found = resolveBuiltin(target);
        if (typeof found === 'string') {
          report.push({ name: target.name, probed: false, reason: found });
          continue;
        }
        const fid = rt.reserve(1);
        const original = found.owner[found.key];
        const wrapper = makeWrapper(fid, original, target.exit);
        try {
          found.owner[found.key] = wrapper;
        } catch {
          // Frozen or read-only: verified below.
        }
        if (found.owner[found.key] !== wrapper) {
          report.push({ name: target.name, probed: false, reason: 'its object is frozen or the property is read-only' });
          continue;
        }
        session.wraps.push({ owner: found.owner, key: found.key, original, wrapper });
        addProbe(fid, target.name, target.async || isAsync(original), handlerFor(target.name));
        report.push({
          name: target.name,
          probed: true,
          note: 'a wrapper on the property: references taken before the attach (e.g. destructured at load) call the original and are not counted',
        });
      }
      if (session.wraps.length > 0) {
        try {
          mod('module').syncBuiltinESMExports();
        } catch {
          // Older Node.js: ES modules keep the original bindings.
        }
      }

      // User code: live edits the agent computed, applied through an in-process inspector session
      // so that they can be undone here even if the agent disappears.
      if (cfg.edits.length > 0) {
        const inspector = await debugging();
        try {
          for (const edit of cfg.edits) {
            const scriptId = scriptIds.get(edit.url);
            const scriptSource = scriptId === undefined ? '' : (await post(inspector, 'Debugger.getScriptSource', { scriptId })).scriptSource;
            if (scriptId === undefined || scriptSource.length !== edit.length) {
              for (const f of edit.functions) report.push({ name: f.name, probed: false, reason: 'its script changed since it was read' });
              continue;
            }
            // All at once; if V8 refuses, one function at a time, keeping those it accepts.
            const apply = async (functions) => {
              let edited = scriptSource;
              const insertions = functions.flatMap((f) => f.insertions).sort((a, b) => b.offset - a.offset);
              for (const insertion of insertions) edited = edited.slice(0, insertion.offset) + insertion.text + edited.slice(insertion.offset);
              const result = await post(inspector, 'Debugger.setScriptSource', { scriptId, scriptSource: edited }).catch((e) => ({ error: e }));
              if (!result.error && (!result.status || result.status === 'Ok')) return undefined;
              return result.error ? String(result.error.message || result.error) : result.status;
            };
            let accepted = edit.functions;
            if ((await apply(accepted)) !== undefined) {
              accepted = [];
              for (const f of edit.functions) {
                const refused = await apply([...accepted, f]);
                if (refused === undefined) accepted.push(f);
                else report.push({ name: f.name, probed: false, reason: `V8 refused the live edit: ${refused}` });
              }
              if (accepted.length > 0 && accepted.length < edit.functions.length) await apply(accepted);
            }
            if (accepted.length > 0) session.edits.push({ scriptId, original: scriptSource });
            for (const f of accepted) {
              addProbe(f.fid, f.name, f.async, handlerFor(f.name));
              report.push({ name: f.name, probed: true });
            }
          }
        } finally {
          await post(inspector, 'Debugger.disable');
        }
      }

      function addProbe(fid, name, async, handler) {
        probes[fid] = { name, async, handler, session, disabled: false, calls: 0, every: 1, seen: 0, stack: [] };
        session.fids.push(fid);
      }

      // The channel to the agent: partials on request; if it closes, everything is undone.
      const net = mod('net');
      session.socket = net.connect({ path: cfg.socket });
      session.socket.setNoDelay(true);
      session.socket.unref();
      let buffer = '';
      session.socket.on('data', (chunk) => {
        buffer += chunk.toString('utf8');
        let at;
        while ((at = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, at);
          buffer = buffer.slice(at + 1);
          let message;
          try {
            message = fromJson(line);
          } catch {
            continue;
          }
          if (message.type === 'flush') send(flush(message.period, message.capPerSecond, message.seconds));
          else if (message.type === 'detach') detach('detach');
        }
      });
      session.socket.on('error', () => undefined);
      session.socket.on('close', () => detach('the agent disconnected'));
      send({ type: 'hello', token: cfg.token, session: session.id, pid: process.pid });
      return report;

      function send(message) {
        if (session.socket && !session.socket.destroyed) session.socket.write(`${toJson(message)}\n`);
      }

      function flush(period, capPerSecond, seconds) {
        // Between turns of the event loop no synchronous call is running: frames still open were ended by an exception.
        for (const fid of session.fids) {
          const probe = probes[fid];
          if (!probe) continue;
          while (probe.stack.length > 0) finish(probe.stack.pop(), undefined, true, undefined);
        }
        const groups = [...S.groups.values()];
        S.groups = new Map();
        const rows = S.rows;
        S.rows = [];
        const dropped = S.dropped;
        S.dropped = 0;
        const folded = S.folded;
        S.folded = 0;
        // A probe called more often than the cap is sampled next period, and says so.
        const sampling = [];
        for (const fid of session.fids) {
          const probe = probes[fid];
          if (!probe) continue;
          const rate = (probe.calls - probe.seen) / Math.max(seconds, 1e-3);
          probe.seen = probe.calls;
          const every = capPerSecond > 0 && rate > capPerSecond ? Math.ceil(rate / capPerSecond) : 1;
          if (every !== probe.every) sampling.push({ name: probe.name, every, rate: Math.round(rate) });
          probe.every = every;
        }
        return { type: 'partial', period, groups, rows, dropped, folded, sampling };
      }

      function detach(reason) {
        if (session.closed) return;
        session.closed = true;
        for (const fid of session.fids) probes[fid] = null;
        for (const w of session.wraps) {
          // Only put the original back if nobody replaced our wrapper since.
          if (w.owner[w.key] === w.wrapper) {
            try {
              w.owner[w.key] = w.original;
            } catch {
              // Left in place: it passes straight through now.
            }
          }
        }
        if (session.wraps.length > 0) {
          try {
            mod('module').syncBuiltinESMExports();
          } catch {
            // As above.
          }
        }
        const undo = session.edits.length > 0 ? revert(session) : Promise.resolve();
        undo.finally(() => {
          sessions.delete(session.id);
          if (reason === 'detach') {
            send({ type: 'detached' });
            session.socket.end();
          }
        });
      }
    }

    async function revert(session) {
      const inspector = await debugging();
      try {
        for (const edit of session.edits) {
          await post(inspector, 'Debugger.setScriptSource', { scriptId: edit.scriptId, scriptSource: edit.original }).catch(() => undefined);
        }
      } finally {
        await post(inspector, 'Debugger.disable');
      }
    }

    /** The runtime's inspector session with the debugger enabled (disable it again when done). */
    async function debugging() {
      if (debug === undefined) {
        debug = new (mod('inspector').Session)();
        debug.connect();
        debug.on('Debugger.scriptParsed', (message) => {
          const { url, scriptId } = message.params;
          if (url && !scriptIds.has(url)) scriptIds.set(url, scriptId);
        });
      }
      await post(debug, 'Debugger.enable');
      return debug;
    }

    function post(inspectorSession, method, params) {
      return new Promise((resolve, reject) => {
        inspectorSession.post(method, params || {}, (error, result) => (error ? reject(error) : resolve(result || {})));
      });
    }

    function resolveBuiltin(target) {
      let owner;
      if (target.module) {
        try {
          owner = mod(target.module);
        } catch {
          return `no built-in module ${target.module}`;
        }
      } else {
        owner = G[target.global];
        if (owner === undefined) return `no global ${target.global}`;
      }
      for (const step of target.path) {
        const next = owner === null || owner === undefined ? undefined : owner[step];
        if (next === undefined || next === null) return `${step} not found`;
        owner = next;
      }
      const value = owner[target.key];
      if (typeof value !== 'function') return `${target.key} is not a function`;
      return { owner, key: target.key };
    }

    function makeWrapper(fid, original, exit) {
      const wrapper = exit
        ? function (...args) {
            return new.target
              ? rt.x(fid, undefined, args, () => Reflect.construct(original, args, new.target))
              : rt.x(fid, this, args, () => Reflect.apply(original, this, args));
          }
        : function () {
            const probe = probes[fid];
            if (probe) run(probe, this, arguments, undefined, false, undefined, 0);
            return new.target ? Reflect.construct(original, arguments, new.target) : Reflect.apply(original, this, arguments);
          };
      try {
        Object.defineProperty(wrapper, 'name', { value: original.name });
        Object.defineProperty(wrapper, 'length', { value: original.length });
      } catch {
        // Cosmetic only.
      }
      return wrapper;
    }

    function isAsync(fn) {
      return Object.prototype.toString.call(fn) === '[object AsyncFunction]';
    }

    /** Safe projections of a value: they never call user code (no getters, no proxies, no toString). */
    function helpers(cfg) {
      const types = mod('util').types;
      const text = (v) => {
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
      };
      // Proxies first: Array.isArray throws on a revoked one.
      const isArray = (v) => typeof v === 'object' && v !== null && !types.isProxy(v) && Array.isArray(v);
      const type = (v) => (v === null ? 'null' : isArray(v) ? 'array' : typeof v);
      const length = (v) => (typeof v === 'string' || isArray(v) ? v.length : 0);
      const number = (v) => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : typeof v === 'bigint' ? Number(v) : 0);
      const message = (e) => {
        if (e !== null && typeof e === 'object' && !types.isProxy(e)) {
          const d = Object.getOwnPropertyDescriptor(e, 'message');
          if (d && 'value' in d && typeof d.value === 'string') return d.value.slice(0, 200);
        }
        return text(e);
      };
      return {
        text,
        type,
        length,
        number,
        message,
        timeNs: () => Math.round((clock.timeOrigin + clock.now()) * 1e6),
        pid: cfg.pid,
        comm: cfg.comm,
        host: cfg.host,
      };
    }
  }
});
