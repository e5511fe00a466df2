import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { Profile } from 'pprof-format';
import type { ResultMessage } from '../cluster/cluster-stage.js';
import { parseFrame, pprofOf, PprofSink } from './pprof.js';
import { Writable } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** pprof profiles of counted stacks, decoded again with pprof-format: frames, functions and values right. */

function decode(bytes: Uint8Array): { samples: { frames: string[]; value: number[] }[]; types: string[]; period: number } {
  const profile = Profile.decode(gunzipSync(bytes));
  const s = (i: number | bigint) => profile.stringTable.strings[Number(i)]!;
  const fn = new Map(profile.function.map((f) => [Number(f.id), f]));
  const loc = new Map(profile.location.map((l) => [Number(l.id), l]));
  return {
    samples: profile.sample.map((sample) => ({
      frames: sample.locationId.map((id) => {
        const line = loc.get(Number(id))!.line[0]!;
        const f = fn.get(Number(line.functionId))!;
        return `${s(f.name)}|${s(f.filename)}|${Number(line.line)}`;
      }),
      value: sample.value.map(Number),
    })),
    types: profile.sampleType.map((t) => `${s(t.type)}/${s(t.unit)}`),
    period: Number(profile.period),
  };
}

describe('pprof profiles', () => {
  it('reads a frame as its function, file and line: JavaScript, native, and names alone', () => {
    assert.deepEqual(parseFrame('burn (app.cjs:19)'), { name: 'burn', file: 'app.cjs', line: 19 });
    assert.deepEqual(parseFrame('process.stdin.on(data) (serve-commands.cjs:8:3)'), { name: 'process.stdin.on(data)', file: 'serve-commands.cjs', line: 8 });
    assert.deepEqual(parseFrame('    spin_loop+20'), { name: 'spin_loop', file: '', line: 0 });
    assert.deepEqual(parseFrame('do_syscall_64+0x5d (vmlinux)'), { name: 'do_syscall_64', file: 'vmlinux', line: 0 });
    assert.deepEqual(parseFrame('(idle)'), { name: '(idle)', file: '', line: 0 });
  });

  it('writes each stack a sample, leaf first, one location per frame and one function per name', () => {
    const bytes = pprofOf(['main (a.js:1);work (a.js:5);burn (a.js:9) 30', 'main (a.js:1);work (a.js:5) 10', '(idle) 5', 'bad 0'], { timeNs: 1e18, durationNs: 2e9, periodNs: 5_025_125 });
    const p = decode(bytes);
    assert.deepEqual(p.types, ['samples/count', 'cpu/nanoseconds']);
    assert.equal(p.period, 5_025_125);
    assert.deepEqual(p.samples, [
      { frames: ['burn|a.js|9', 'work|a.js|5', 'main|a.js|1'], value: [30, 30 * 5_025_125] },
      { frames: ['work|a.js|5', 'main|a.js|1'], value: [10, 10 * 5_025_125] },
      { frames: ['(idle)||0'], value: [5, 5 * 5_025_125] },
    ]);
  });

  it("adds up a query's windows, leaves out a sliding window that overlaps, and writes the file at the end", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fay-pprof-'));
    const said: string[] = [];
    const err = new Writable({ write: (c: Buffer, _e, cb) => (said.push(c.toString()), cb()) });
    const sink = new PprofSink(join(dir, 'p.pb.gz'), undefined, err);
    const window = (startS: number, endS: number, rows: [string, number][]): ResultMessage => ({
      kind: 'result', columns: [{ name: 'ustack', role: 'key' }, { name: 'count', role: 'aggregate', function: 'count' }], rows,
      startNs: startS * 1e9, endNs: endS * 1e9, complete: true, hosts: ['h'], foldedGroups: 0, droppedEvents: 0, uncountedEvents: 0,
    });
    await sink.export(window(0, 1, [['b+1\na+2', 4]]));
    await sink.export({ ...window(0.5, 1.5, [['b+1\na+2', 100]]) });
    await sink.export(window(1, 2, [['b+1\na+2', 3], ['c+1\na+2', 1]]));
    await sink.export({ ...window(2, 3, [['b+1\na+2', 50]]), complete: false });
    await sink.shutdown();
    const p = decode(readFileSync(join(dir, 'p.pb.gz')));
    assert.deepEqual(p.samples, [{ frames: ['b||0', 'a||0'], value: [7] }, { frames: ['c||0', 'a||0'], value: [1] }]);
    assert.match(said.join(''), /wrote .*p\.pb\.gz: 8 samples in 2 stacks/);
    rmSync(dir, { recursive: true, force: true });
  });
});
