import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { localCluster } from '../../frontend/local-cluster.js';
import { EnvironmentError } from '../../errors.js';
import { runFay, startFay } from '../../testing/cli.js';
import { startNodeTarget, type NodeTarget } from '../../testing/node-target.js';
import { collect, rowsOf } from '../../testing/query.js';
import { INSPECTOR_PORT } from './attach.js';

const cluster = localCluster('testhost');

/** The pid behind the inspector listening on the port, or undefined when none listens. */
async function inspectorHolder(): Promise<string | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`, { signal: AbortSignal.timeout(500) });
    return (await response.text()).length > 0 ? 'open' : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves once `test` holds, checking every 20 ms; rejects after `timeoutMs` (a bound on the wait, not a wait). */
async function until(test: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!(await test())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

describe('attaching leaves nothing behind, even when Fay is killed in the middle', () => {
  let app: NodeTarget;
  before(async () => {
    app = await startNodeTarget('app.cjs');
  });
  after(() => app?.stop());

  /**
   * Starts a query on the target and kills it outright in the middle of its attach: the moment the
   * target's inspector is open (before Fay's first word there), or once the pid is checked.
   */
  async function killedWhileAttaching(when: 'opened' | 'checked'): Promise<void> {
    const fay = startFay(['query', '--json', `js:pid=${app.pid}:./lib.cjs#query | count()`], { env: { ...process.env, FAY_DEBUG_ATTACH: '1' } });
    if (when === 'opened') await until(async () => (await inspectorHolder()) !== undefined, 10_000, 'the inspector opening');
    else await until(async () => Promise.resolve(fay.stderr().includes('checked')), 10_000, 'the pid check');
    fay.child.kill('SIGKILL');
    await fay.exit;
  }

  it('the next query clears the inspector a killed Fay left open, and counts exactly', async () => {
    await killedWhileAttaching('opened');
    const result = await collect(cluster.run(`js:pid=${app.pid}:./lib.cjs#query | count()`, { providerOptions: { node: { keepEditsMs: 0 } } }), () => app.run('query', 6));
    assert.deepEqual(rowsOf(result.final), [{ count: 6 }]);
    await until(async () => (await inspectorHolder()) === undefined, 3000, 'the inspector closing after the query');
  });

  it('the target closes the inspector a killed Fay left open by itself, with no other Fay to do it', async () => {
    await killedWhileAttaching('checked');
    // The target sees Fay's process gone at its next tick (it checks every second), or its lease lapse (15 s).
    const took = await until(async () => (await inspectorHolder()) === undefined, 20_000, 'the target closing its inspector');
    assert.ok(took < 20_000);
    // And nothing Fay would have installed is left running: the next query counts from zero.
    const result = await collect(cluster.run(`js:pid=${app.pid}:./lib.cjs#query | count()`, { providerOptions: { node: { keepEditsMs: 0 } } }), () => app.run('query', 2));
    assert.deepEqual(rowsOf(result.final), [{ count: 2 }]);
  });

  it('refuses a process that does not answer the inspector in time, plainly, and leaves it as it was', async () => {
    // The program keeps its JavaScript busy for 3 s; Fay waits 500 ms for each answer.
    const spinning = app.run('spin', 3000);
    const { code, stderr } = await runFay(['query', '-d', '1s', `js:pid=${app.pid}:./lib.cjs#query | count()`], { env: { ...process.env, FAY_INSPECTOR_TIMEOUT_MS: '500' } });
    await spinning;
    assert.equal(code, 3, stderr);
    assert.match(stderr, new RegExp(`process ${app.pid} did not answer the inspector \\(Runtime\\.evaluate\\) within 0\\.5 s: its JavaScript is busy or stopped`));
    assert.match(stderr, /whatever Fay installed there comes out by itself, and its inspector closes/);
    assert.doesNotMatch(stderr, /internal error/);
    // Once it answers again: nothing of that attach is left, and the next query counts exactly.
    await until(async () => (await inspectorHolder()) === undefined, 20_000, 'the inspector closing');
    const result = await collect(cluster.run(`js:pid=${app.pid}:./lib.cjs#query | count()`, { providerOptions: { node: { keepEditsMs: 0 } } }), () => app.run('query', 3));
    assert.deepEqual(rowsOf(result.final), [{ count: 3 }]);
    assert.equal((JSON.parse(await app.run('state', 0)) as { querySourceOriginal: boolean }).querySourceOriginal, true);
  });

  it('says whose inspector holds the port, and how to free it, when it is not a Fay leftover', async () => {
    // The port is free (the queries before closed what they opened), then another process debugs on it.
    await until(async () => (await inspectorHolder()) === undefined, 10_000, 'the port being free');
    const debugged = spawn(process.execPath, [`--inspect=127.0.0.1:${INSPECTOR_PORT}`, '-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    debugged.stderr.setEncoding('utf8').on('data', (d: string) => (said += d));
    try {
      await until(() => Promise.resolve(said.includes('Debugger listening')), 10_000, 'the other process listening');
      await assert.rejects(
        collect(cluster.run(`js:pid=${app.pid}:./lib.cjs#query | count()`), () => Promise.resolve()),
        (error: unknown) => {
          assert.ok(error instanceof EnvironmentError, String(error));
          assert.match(error.message, new RegExp(`port ${INSPECTOR_PORT} is held by the inspector of process ${debugged.pid}, not ${app.pid}`));
          assert.match(error.hint ?? '', /a debugger \(or a process started with --inspect\) holds it: stop that first/);
          assert.match(error.hint ?? '', new RegExp(`fay release "js:pid=${debugged.pid}" closes it`));
          return true;
        },
      );
    } finally {
      debugged.kill();
      await new Promise((r) => debugged.once('exit', r));
    }
  });

  it('lists Node.js processes without signalling them, and refuses to list the functions of every one at once', async () => {
    const stderrBefore = app.stderr().length;
    const listed = await runFay(['probes', 'js:*']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.lines.some((l) => l.startsWith(`js:pid=${app.pid}:*`)), listed.lines.join('\n'));
    const every = await runFay(['probes', 'js:*:*']);
    assert.equal(every.code, 2);
    assert.match(every.stderr, /listing functions attaches to each process it lists/);
    assert.match(every.stderr, /fay probes "js:\*" lists the Node\.js processes without touching them/);
    // An unknown pid's hint points at the listing that signals nothing.
    const unknown = await runFay(['query', 'js:pid=999999999:fs.readFile | count()']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /fay probes "js:\*" lists the Node\.js processes here \(without touching them\)/);
    assert.doesNotMatch(unknown.stderr, /js:\*:\*/);
    // A signalled process would have opened its inspector, and said so on stderr.
    await app.run('query', 1);
    assert.equal(app.stderr().slice(stderrBefore), '');
  });
});
