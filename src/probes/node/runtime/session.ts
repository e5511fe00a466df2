import type { HandlerFactory, InstallConfig, ProbeReport, ScriptEdit } from './contract.js';
import { linkToAgent } from './agent-link.js';
import { exclusive } from './debugger.js';
import { detach } from './detach.js';
import { handlerHelpers } from './helpers.js';
import { DETACHED, hooks, makeHooks } from './hooks.js';
import { applyEdits } from './live-edit.js';
import { probesOff, send } from './outbox.js';
import { flush } from './partials.js';
import { openPairs } from './pairs.js';
import { samples, startProfile } from './profile.js';
import { readSources } from './scripts.js';
import { emptyKept, fromJson, links, mod, moduleCount, NativePromise, probes, scriptIds, sessions, toJson, type PartialMessage, type Probe, type RuntimeSession } from './state.js';
import { channelNamed, mergeReports, openInWorkers, relay, withThreads, workerPartials, type FlushMessage } from './workers.js';
import { reserve, resolveBuiltin, wrapProperty, type AddProbe } from './wrappers.js';

/** Opens one attach's session: installs its probes (wrappers, live edits, channels, a profile), connects to the agent, and reports on each function. */
export async function openSession(cfg: InstallConfig, factory: HandlerFactory): Promise<ProbeReport[]> {
  const session: RuntimeSession = {
    id: cfg.session,
    /** How long taking its edits out may stop the process (its query's --max-pause). */
    maxPauseMs: cfg.maxPauseMs,
    fids: [],
    wraps: [],
    edits: [],
    channels: [],
    pairs: [],
    socket: undefined,
    /** In a worker: the channel to the main thread's session, which relays (see openInWorkers()). */
    relay: undefined,
    /** In the main thread: the session's workers (see openInWorkers()). */
    threads: undefined,
    /** The scripts there were at the attach, and how many CommonJS modules (see lookForScripts()); those sent for edits since. */
    known: undefined,
    asked: new Set<string>(),
    modules: 0,
    looking: undefined,
    state: { groups: new Map(), rows: [], dropped: 0, folded: 0, epoch: 0, maxGroups: cfg.maxGroups, maxRows: cfg.maxRows },
    closed: false,
    config: cfg,
    notice(message) {
      send(session, { type: 'notice', message });
    },
    /** Sends the agent scripts loaded after the attach (this thread's or, relayed, a worker's): it answers with their edits. */
    askEdits(sources) {
      send(session, { type: 'scripts', sources });
    },
    detach: (reason) => detach(session, reason),
  };
  sessions.set(session.id, session);
  const dc = mod<typeof import('node:diagnostics_channel')>('diagnostics_channel');
  // The workers' config, as the agent sent it (applying the edits below changes cfg.edits).
  const relayed = cfg.relay ? undefined : toJson({ ...cfg, relay: `fay:${cfg.session}`, token: undefined, socket: undefined });
  const handlerFor = factory(handlerHelpers(cfg), session.state);
  const report: ProbeReport[] = [];
  const addProbe: AddProbe = (fid, name, async, handler, awaits = false) => {
    const probe: Probe = { name, async, awaits, handler, session, disabled: false, calls: 0, every: 1, seen: 0, depth: 0, starts: [], args: [], selves: [], pending: 0, kept: cfg.kept.length > 0 ? emptyKept() : undefined, hooks: DETACHED };
    probes[fid] = probe;
    // Its own hooks: hooks[fid] goes back to DETACHED when the probe goes off, before its last read.
    hooks[fid] = probe.hooks = makeHooks(probe, cfg.kept, cfg.args, cfg.self);
    session.fids.push(fid);
  };

  // Built-ins: wrap the property, verify it took, keep the original.
  for (const target of cfg.builtins) {
    const found = resolveBuiltin(target);
    if (typeof found === 'string') {
      report.push({ name: target.name, probed: false, reason: found });
      continue;
    }
    if (!wrapProperty(session, found, target, handlerFor, addProbe)) {
      report.push({ name: target.name, probed: false, reason: 'its object is frozen or the property is read-only' });
      continue;
    }
    // A built-in module's own export: its ES modules' imports get the wrapper too (syncBuiltinESMExports, below).
    const imported = target.module !== undefined && target.path.length === 0 ? "; ES modules' imports of it are counted" : '';
    report.push({
      name: target.name,
      probed: true,
      note: found.own
        ? `a wrapper on the property: references taken before the attach by CommonJS code (e.g. destructured at load) call the original and are not counted${imported}`
        : 'an inherited method, wrapped on this object: only calls through it (e.g. on its instances) are counted',
    });
  }
  if (session.wraps.length > 0) {
    try {
      mod<typeof import('node:module')>('module').syncBuiltinESMExports();
    } catch {
      // Older Node.js: ES modules keep the original bindings.
    }
  }

  // User code: live edits the agent computed, applied through an in-process inspector session
  // so that they can be undone here even if the agent disappears.
  if (cfg.edits.length > 0) await exclusive(() => applyEdits(cfg, session, report, handlerFor, addProbe));

  // diagnostics_channel: one event per message, the message as args[0].
  for (const channel of cfg.channels) {
    const fid = reserve(1);
    addProbe(fid, channel.probe, false, handlerFor(channel.probe));
    const listener = (message: unknown) => hooks[fid]!.run([message], undefined, false, undefined, 0);
    dc.subscribe(channel.name, listener);
    session.channels.push({ name: channel.name, probe: channel.probe, fid, listener });
    report.push({ name: channel.probe, probed: true });
  }
  // Pairs of channels (an HTTP request and its response): one event per pair, with its duration.
  openPairs(session, cfg.pairs ?? [], handlerFor, addProbe, report);

  // CPU samples of this thread, through an inspector session of its own.
  await startProfile(session, cfg, handlerFor, addProbe, report);

  // Scripts that load later are looked for where the query names files (in each thread: a worker's
  // go to the agent through the main thread's session, and their edits come back the same way).
  if (cfg.filters && cfg.filters.length > 0) {
    session.known = new Set(scriptIds.keys());
    session.modules = moduleCount();
  }

  // The channel to the agent, opened while the agent read the sources: partials on request; if it
  // closes, everything is undone. A worker's session talks to the main thread's instead.
  if (cfg.relay) {
    session.relay = channelNamed(cfg.relay);
    session.relay.onmessage = ({ data }: { data: unknown }) => receive(data);
  } else {
    const token = cfg.token ?? '';
    const socket = links.get(token) ?? linkToAgent({ socket: cfg.socket ?? '', token, pid: cfg.pid });
    session.socket = socket;
    links.delete(token);
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let at: number;
      while ((at = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        let message: unknown;
        try {
          message = fromJson(line);
        } catch {
          continue;
        }
        receive(message);
      }
    });
    socket.on('close', () => void detach(session, 'the agent disconnected'));
  }
  // A process that exits while probed sends what it counted since the last flush with its last
  // breath (a write to a Unix socket goes out at once); one killed by a signal cannot.
  session.onExit = () => {
    if (session.closed) return;
    probesOff(session);
    // Nothing about sampling: there is no next period for it to apply to.
    send(session, { ...flush(session, 0, 0, 1), sampling: [], type: 'exiting' });
  };
  process.on('exit', session.onExit);
  // Worker threads get the session's probes too: the main thread's runtime installs them there.
  if (relayed !== undefined && !session.closed) return mergeReports([report, await openInWorkers(session, relayed, factory)]);
  return report;

  /** A flush or a detach, from the agent (or, in a worker, from the main thread's session). */
  function receive(data: unknown): void {
    if (data === null || typeof data !== 'object') return;
    const message = data as { type?: unknown; final?: boolean; edits?: unknown };
    if (message.type === 'flush') {
      const asked = message as FlushMessage;
      if (!message.final) lookForScripts();
      // The query's last flush: its probes go off as it is read, so that no call is counted
      // after it (a call between it and the detach would be counted and never sent).
      const theirs = session.threads ? workerPartials(session, asked) : NativePromise.resolve([]);
      const reply = (partials: readonly PartialMessage[]) => {
        if (asked.final) probesOff(session);
        const own = flush(session, asked.period, asked.capPerSecond, asked.seconds);
        send(session, session.relay ? own : withThreads(own, partials));
      };
      NativePromise.all([theirs, samples(session)]).then(
        ([partials]) => reply(partials),
        () => reply([]),
      );
    } else if (message.type === 'detach') void detach(session, 'detach');
    else if (message.type === 'edits' && Array.isArray(message.edits)) {
      // The edits of every thread's late scripts come through the main thread: each thread applies
      // those of the scripts it asked about (a module loaded in two threads is edited in each).
      if (session.threads && !session.threads.closed) relay(session, message);
      const mine = (message.edits as (ScriptEdit | null)[]).filter((edit): edit is ScriptEdit => edit !== null && typeof edit === 'object' && session.asked.delete(edit.url));
      if (mine.length > 0) lateEdits(mine);
    }
  }

  /**
   * Scripts loaded since the attach (or the last look) that the query's files name: their sources
   * go to the agent, which sends their edits back. Looked for when a read comes and more CommonJS
   * modules are loaded than before (counting them costs microseconds; listing the scripts takes
   * the debugger, a few ms): an ES module that loads alone is not seen.
   */
  function lookForScripts(): void {
    if (!session.known || session.closed || session.looking) return;
    const modules = moduleCount();
    if (modules === session.modules) return;
    session.modules = modules;
    const known = session.known;
    session.looking = exclusive(() => readSources(cfg.filters, known, session.maxPauseMs))
      .then((sources) => {
        for (const url of Object.keys(sources)) {
          known.add(url);
          session.asked.add(url);
        }
        if (Object.keys(sources).length > 0 && !session.closed) session.askEdits(sources);
      })
      .catch(() => undefined)
      .finally(() => (session.looking = undefined));
  }

  /** Applies the edits the agent made for scripts loaded after the attach, and says what they probe. */
  function lateEdits(edits: ScriptEdit[]): void {
    const late: ProbeReport[] = [];
    void exclusive(() => (session.closed ? undefined : applyEdits({ ...cfg, edits }, session, late, handlerFor, addProbe)))
      .then(() => {
        const probed = late.filter((r) => r.probed).map((r) => r.name);
        if (probed.length > 0) session.notice(`${probed.join(', ')}: loaded after the attach, probed from now on`);
        for (const r of late) if (!r.probed) session.notice(`${r.name}: loaded after the attach, not probed: ${r.reason}`);
      })
      .catch((error: unknown) => session.notice(`scripts loaded after the attach are not probed: ${error instanceof Error ? error.message : String(error)}`));
  }
}
