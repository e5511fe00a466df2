import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { textStream as sink } from '../testing/text-stream.js';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import { renderTop, TopSink } from './top.js';

describe('fay top', () => {
  it('rolls fay top up by process and by call, per second', async () => {
    const top: ResultMessage = {
      kind: 'result',
      startNs: 0,
      endNs: 2e9,
      complete: true,
      hosts: ['vm'],
      foldedGroups: 0,
      droppedEvents: 0,
      uncountedEvents: 0,
      columns: ['pid', 'comm', 'probe', 'calls'].map((name) => ({ name, role: 'key' as const })),
      rows: [
        [10, 'node', 'syscall:read', 400],
        [10, 'node', 'syscall:write', 200],
        [20, 'bash', 'syscall:read', 100],
      ],
    };
    const screen = renderTop(top, 5).join('\n');
    assert.match(screen, /350 calls\/s from 2 processes, 2 distinct calls/);
    assert.match(screen, /calls\/s {2}pid {2}comm\n {4}300 {3}10 {2}node\n {5}50 {3}20 {2}bash/);
    assert.match(screen, /calls\/s {2}syscall\n {4}250 {2}read\n {4}100 {2}write/);
    const out = sink();
    await new TopSink(false, 5, out.stream, sink().stream).export(top);
    assert.equal(out.text(), `${screen}\n\n`, 'on a pipe, each period is appended');
  });

});
