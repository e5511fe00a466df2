import { emptyKept, probes, type PartialMessage, type RuntimeSession } from './state.js';

/** What a session's probes gathered since the last flush, for the agent (or, in a worker, for the main thread). */

/**
 * The session's partial of a period: its groups and rows, taken (the next period starts empty),
 * what was dropped or folded, the probes that are sampled from now on (over the cap of calls a
 * second), and the async calls still pending.
 */
export function flush(session: RuntimeSession, period: number, capPerSecond: number, seconds: number): PartialMessage {
  const S = session.state;
  const cfg = session.config;
  // Between turns of the event loop no synchronous call is running: frames still open were ended by an exception.
  for (const fid of session.fids) {
    const probe = probes[fid];
    if (!probe) continue;
    probe.hooks.endAll();
  }
  if (cfg.kept.length > 0) keptGroup(session);
  const groups = [...S.groups.values()];
  S.groups = new Map();
  S.epoch++;
  const rows = S.rows;
  S.rows = [];
  const dropped = S.dropped;
  S.dropped = 0;
  const folded = S.folded;
  S.folded = 0;
  // A probe called more often than the cap is sampled next period, and says so.
  const sampling: PartialMessage['sampling'] = [];
  for (const fid of session.fids) {
    const probe = probes[fid];
    // Keeping aggregates in the hooks costs less than checking whether to sample would save.
    if (!probe || cfg.kept.length > 0) continue;
    const rate = (probe.calls - probe.seen) / Math.max(seconds, 1e-3);
    probe.seen = probe.calls;
    const every = capPerSecond > 0 && rate > capPerSecond ? Math.ceil(rate / capPerSecond) : 1;
    // While sampling, small swings of the rate keep the step (and say nothing): within a factor of 1.5.
    const steady = every > 1 && probe.every > 1 && every <= probe.every * 1.5 && every * 1.5 >= probe.every;
    if (every === probe.every || steady) continue;
    sampling.push({ name: probe.name, every, rate: Math.round(rate) });
    probe.every = every;
  }
  // Calls of async functions not settled yet: still pending, or, in one whose awaits are not
  // handed over (see a()), rejected through an await, which live-edited code cannot see (it has no catch).
  const pending: PartialMessage['pending'] = [];
  for (const fid of session.fids) {
    const probe = probes[fid];
    if (probe && probe.pending > 0) pending.push({ name: probe.name, calls: probe.pending, awaitsSeen: probe.awaits });
  }
  const published = session.channels.length === 0 ? undefined : Object.fromEntries(session.channels.map((c) => [c.probe, probes[c.fid]?.calls ?? 0]));
  const inFlight = session.pairs.length === 0 ? undefined : Object.fromEntries(session.pairs.map((p) => [p.pair.probe, p.inFlight]));
  return { type: 'partial', period, groups, rows, dropped, folded, sampling, pending, ...(published && { published }), ...(inFlight && { inFlight }) };
}

/**
 * Probes whose hooks keep their aggregates: the calls since the last flush, their durations'
 * sum, extremes and buckets, summed over the session's probes, are the one group's states.
 */
function keptGroup(session: RuntimeSession): void {
  let calls = 0;
  const all = emptyKept();
  for (const fid of session.fids) {
    const probe = probes[fid];
    if (!probe) continue;
    calls += probe.calls - probe.seen;
    probe.seen = probe.calls;
    // Emptied in place: the probe's hooks hold this object.
    const k = probe.kept;
    if (!k) continue;
    all.sum += k.sum;
    all.min = Math.min(all.min, k.min);
    all.max = Math.max(all.max, k.max);
    k.hist.forEach((n, i) => (all.hist[i]! += n));
    k.sum = 0;
    k.min = Infinity;
    k.max = -Infinity;
    k.hist.fill(0);
  }
  if (calls === 0) return;
  const state = { count: calls, sum: all.sum, min: all.min, max: all.max, avg: [all.sum, calls], hist: all.hist };
  session.state.groups.set('', { key: [], s: session.config.kept.map((k) => state[k]) });
}
