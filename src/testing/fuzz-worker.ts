/**
 * Runs a stretch of the fuzz corpus through Fay's real front end, planner and code generators (what
 * `fay explain` runs, against this machine's tracepoints and processes), in a worker thread whose
 * heap is capped: an input that needs more memory ends the worker, and the test names the input.
 * Says each input before it tries it, then how it ended and how long it took.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { localCluster } from '../frontend/local-cluster.js';
import { FayError } from '../errors.js';
import { fuzzInputs } from './fuzz.js';

export interface FuzzOutcome {
  readonly index: number;
  /** plan: it planned and compiled; user: a FayError (its exit code); internal: anything else thrown. */
  readonly outcome: 'plan' | 'user' | 'internal';
  readonly exitCode?: number;
  readonly message?: string;
  readonly ms: number;
}

const { seed, count } = workerData as { seed: number; count: number };
const cluster = localCluster('fuzz-host');
let index = -1;
for (const input of fuzzInputs(seed, count)) {
  index++;
  parentPort!.postMessage({ starting: index });
  const started = performance.now();
  let outcome: FuzzOutcome;
  try {
    cluster.explain(input.text);
    outcome = { index, outcome: 'plan', ms: performance.now() - started };
  } catch (error) {
    const ms = performance.now() - started;
    outcome =
      error instanceof FayError
        ? { index, outcome: 'user', exitCode: error.exitCode, ms }
        : { index, outcome: 'internal', message: error instanceof Error ? (error.stack ?? error.message) : String(error), ms };
  }
  parentPort!.postMessage(outcome);
}
