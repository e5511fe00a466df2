import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SERVED_FLAGS, thinRequest } from './thin-query.js';

/** Which command lines the command hands to this machine's agent (the rest it runs itself). */
describe('thin-query: what fay query hands to the agent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fay-thin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // No config file: one may name a cluster.
  const env = { FAY_CONFIG: join(dir, 'none.json') };
  const request = (...argv: string[]) => thinRequest(argv, env);

  it('takes fay query --json with the flags the agent runs, in every spelling', () => {
    assert.deepEqual(request('query', '--json', 'syscall:getppid | count()'), { text: 'syscall:getppid | count()', flags: { json: true } });
    assert.deepEqual(request('query', '-e', '10ms', '--json', '-d', '1s', 'q'), { text: 'q', flags: { every: '10ms', json: true, duration: '1s' } });
    assert.deepEqual(request('query', '--every=10ms', '--duration=2s', '--backend', 'native', '--json', 'q'), { text: 'q', flags: { every: '10ms', duration: '2s', backend: 'native', json: true } });
    assert.deepEqual(request('query', '--json', '--max-groups', '10', '--max-events=5', '--', '-1 | count()'), { text: '-1 | count()', flags: { json: true, maxGroups: '10', maxEvents: '5' } });
    assert.deepEqual(request('query', '--json', '--max-memory', '1M', '--max-calls', '9', '--max-pause', '5ms', '--keep-edits', '0', 'q')?.flags, { json: true, maxMemory: '1M', maxCalls: '9', maxPause: '5ms', keepEdits: '0' });
    // Every flag it takes is one the agent runs.
    for (const name of Object.keys(request('query', '--json', '-e', '1s', '-d', '1s', '--backend', 'auto', 'q')!.flags)) assert.ok(SERVED_FLAGS.has(name), name);
  });

  it('leaves the command to run it itself: another command, no --json, a flag it does not take, a flag twice, no query or two', () => {
    for (const argv of [
      ['explain', '--json', 'q'],
      ['query', 'q'],
      ['query', '--json', '--folded', 'q'],
      ['query', '--json', '--refresh', '1s', 'q'],
      ['query', '--json', '--cluster', 'nats://x', 'q'],
      ['query', '--json', '--persist', 'log', 'q'],
      ['query', '--json', '-e10ms', 'q'],
      ['query', '--json=true', 'q'],
      ['query', '--json', '-e', '1s', '-e', '2s', 'q'],
      ['query', '--json'],
      ['query', '--json', 'a', 'b'],
      ['query', '--json', '--', 'a', 'b'],
      ['query', '--json', '-e'],
    ]) {
      assert.equal(request(...argv), undefined, argv.join(' '));
    }
  });

  it('leaves it to the command when the query names a path relative to the command\'s directory', () => {
    assert.equal(request('query', '--json', 'uprobe:./a.out:main | count()'), undefined);
    assert.equal(request('query', '--json', 'js:pid=4:../lib/db.js#query | count()'), undefined);
    assert.ok(request('query', '--json', 'uprobe:/usr/bin/node:uv_fs_open | count()'));
    assert.ok(request('query', '--json', 'syscall:openat | where args.filename == "/etc/x.d/y" | count()'));
  });

  it('leaves it to the command with FAY_NO_AGENT=1, or a config file (which may name a cluster)', () => {
    assert.equal(thinRequest(['query', '--json', 'q'], { ...env, FAY_NO_AGENT: '1' }), undefined);
    const config = join(dir, 'config.json');
    writeFileSync(config, '{}');
    assert.equal(thinRequest(['query', '--json', 'q'], { FAY_CONFIG: config }), undefined);
  });
});
