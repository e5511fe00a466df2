import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InspectorClient } from './inspector-client.js';

describe('the inspector client, against a real Node.js inspector', () => {
  let target: ChildProcess;
  let url: string;
  before(async () => {
    // Its own inspector on a free port: the attach tests hold 9229.
    target = spawn(process.execPath, ['--inspect=127.0.0.1:0', '-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      let err = '';
      target.stderr!.on('data', (d: Buffer) => {
        err += String(d);
        const found = /ws:\/\/\S+/.exec(err);
        if (found) resolve(found[0]);
      });
      target.once('exit', () => reject(new Error(`the target exited: ${err}`)));
    });
  });
  after(() => target.kill());

  it('evaluates over a connection of its own', async () => {
    const client = await InspectorClient.connect(url);
    assert.equal(await client.evaluate<number>('6 * 7'), 42);
    assert.equal(await client.evaluate<number>('process.pid'), target.pid);
    client.close();
    await client.closed;
  });

  it('uses the connection it is given, and a new one when that one was closed meanwhile', async () => {
    const { port } = new URL(url);
    const open = () =>
      new Promise<ReturnType<typeof connect>>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => resolve(socket));
      });
    const given = await open();
    const onGiven = await InspectorClient.connect(url, given);
    assert.equal(await onGiven.evaluate<string>('"on the given connection"'), 'on the given connection');
    onGiven.close();
    await onGiven.closed;
    assert.equal(given.destroyed, true, 'the given connection is the one that closed');

    const closed = await open();
    closed.destroy();
    const fresh = await InspectorClient.connect(url, closed);
    assert.equal(await fresh.evaluate<number>('1 + 1'), 2);
    fresh.close();
    await fresh.closed;
  });

  it('rejects every call still waiting when the connection closes', async () => {
    const client = await InspectorClient.connect(url);
    const waiting = client.evaluate('new Promise(() => {})', { awaitPromise: true });
    client.close();
    await assert.rejects(waiting, /the inspector connection closed/);
  });
});
