import type { QuerySettings } from '../agent/run-settings.js';
import type { QueryMessage } from './cluster-stage.js';

export interface RunOptions extends QuerySettings {
  /** Stop this long after the probes are attached. Without it, the query runs until stop(). */
  readonly durationMs?: number;
}

/**
 * How a run ended: stopped (Ctrl-C, fay stop), its duration, its limit of events, every host's
 * probes finished by themselves, or ended because every host's probes failed or finished and some failed.
 */
export type StopReason = 'stopped' | 'duration' | 'limit' | 'finished' | 'failed';

/** A running query as its reader sees it: on this machine or across a cluster. */
export interface QueryHandle extends AsyncIterable<QueryMessage> {
  /** Resolves when the probes are attached (everywhere that answered); rejects if none could be. */
  readonly attached: Promise<void>;
  /** Resolves with why the run ended, once everything is detached and delivered. */
  readonly ended: Promise<StopReason>;
  stop(reason?: StopReason): Promise<void>;
}
