import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { connect } from '../linq/fay.js';
import { runFay } from '../testing/cli.js';
import { stopProcess } from '../testing/kernel-state.js';
import { runWorkload } from '../testing/workload.js';

/**
 * A standing query on this machine alone, as the README shows it: `fay query --persist` starts
 * this machine's agent in the background (no server, no daemon set up by hand) and returns; `fay ps`
 * lists it, a history query asks what it kept, `fay stop` ends it.
 */
describe('a standing query on this machine, with no cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fay-local-'));
  const env = { ...process.env, FAY_STORE_DIR: join(dir, 'store'), FAY_RUN_DIR: join(dir, 'run') };
  let agentPid: number | undefined;
  after(async () => {
    await stopProcess(agentPid);
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns at once with its id, keeps counting without its client, answers history, and stops', async () => {
    const started = await runFay(['query', '--persist', 'ppid', 'syscall:getppid | where comm == "fay-local" | count() by comm every 1s'], { env });
    assert.equal(started.code, 0, started.stderr);
    agentPid = Number(/\(pid (\d+);/.exec(started.stderr)?.[1]);
    assert.ok(agentPid > 0, started.stderr);
    const id = started.lines.join('\n').trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    await runWorkload('fay-local', 'getppid', 4321);
    // Stored once its window closes (a period later): asked until it is, within a bound.
    let total = 0;
    const deadline = Date.now() + 15_000;
    while (total !== 4321 && Date.now() < deadline) {
      const history = await runFay(['query', '--json', 'stored:ppid | count() by comm'], { env });
      assert.equal(history.code, 0, history.stderr);
      const results = history.lines.map((l) => JSON.parse(l) as { type: string; rows?: { comm: string; count: number }[] }).filter((m) => m.type === 'result');
      total = results.at(-1)?.rows?.find((r) => r.comm === 'fay-local')?.count ?? 0;
    }
    assert.equal(total, 4321);

    // FayLINQ asks the same agent (it holds the store: this process could not open it).
    Object.assign(process.env, { FAY_STORE_DIR: env.FAY_STORE_DIR, FAY_RUN_DIR: env.FAY_RUN_DIR });
    const fay = await connect();
    const rows = await fay.stored<{ comm: string }>('ppid').where((e) => e.comm === 'fay-local').groupBy((e) => ({ comm: e.comm })).count();
    await fay.close();
    assert.deepEqual(rows, [{ comm: 'fay-local', count: 4321 }]);

    // fay store … goes through the agent, which holds the store.
    const ls = await runFay(['store', 'ls', '--json'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    const listed = ls.lines.map((l) => JSON.parse(l) as { name: string; rows: number });
    assert.deepEqual(listed.map((l) => l.name), ['ppid']);
    assert.ok(listed[0]!.rows > 0);
    const exported = await runFay(['store', 'export', 'ppid', '--parquet', 'out'], { env, cwd: dir });
    assert.equal(exported.code, 0, exported.stderr);
    const instance = await DuckDBInstance.create(':memory:');
    const db = await instance.connect();
    const read = await db.runAndReadAll(`SELECT count(*) FROM read_parquet('${join(dir, 'out')}/*/*/*.parquet')`);
    assert.equal(Number(read.getRows()[0]![0]), listed[0]!.rows, 'the export, to a path relative to the command, holds every row');
    db.closeSync();
    instance.closeSync();
    const refused = await runFay(['store', 'rm', 'ppid'], { env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`the standing query ${id} writes ppid[\\s\\S]*fay stop ${id} first`));

    const ps = await runFay(['ps'], { env });
    assert.match(ps.lines.join('\n'), new RegExp(`${id}\\s+standing\\s+1/1\\s+\\S+\\s+ppid\\s+\\d+`));
    const stop = await runFay(['stop', id], { env });
    assert.equal(stop.code, 0, stop.stderr);
    // fay stop asks; the agent lists the query until its probes are out and its end is kept.
    let after = await runFay(['ps'], { env });
    for (let i = 0; i < 50 && !/no query runs on this machine's agent/.test(after.stderr); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await runFay(['ps'], { env });
    }
    assert.match(after.stderr, /no query runs on this machine's agent/, after.lines.join('\n'));
    // A name that is not there lists those that are.
    const wrong = await runFay(['query', 'stored:ppd | count()'], { env });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /no stored log is named "ppd"[\s\S]*stored:ppid/);
    // Stopped, its log can go (through the agent, which still runs).
    const removed = await runFay(['store', 'rm', 'ppid'], { env });
    assert.equal(removed.code, 0, removed.stderr);
    assert.match((await runFay(['store', 'ls'], { env })).lines.join('\n'), /nothing is stored here/);
  });
});
