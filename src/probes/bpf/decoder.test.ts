import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { count, max } from '../../agg/basic.js';
import { hist } from '../../agg/histograms.js';
import type { AggregateKind } from '../../agg/aggregate.js';
import type { ProbePartial } from '../provider.js';
import { BpftraceOutputDecoder, parseBpftraceJson, parseEntries, splitKey } from './decoder.js';
import type { ProgramLayout } from './layout.js';

describe('reading bpftrace output', () => {
  it('splits printed keys around the one part that may hold commas', () => {
    assert.deepEqual(splitKey('12,a,b,c,7', 3, 1), ['12', 'a,b,c', '7']);
    assert.deepEqual(splitKey('a,b,3,4', 3, 0), ['a,b', '3', '4']);
    assert.deepEqual(splitKey('1,2,x,', 3, 2), ['1', '2', 'x,']);
    assert.deepEqual(splitKey('1,2', 2, -1), ['1', '2']);
    assert.deepEqual(splitKey('only,one', 1, 0), ['only,one']);
  });

  it("puts back the bytes above 0x7f that bpftrace writes as \\uffffffXX, and reads them as UTF-8", () => {
    // What bpftrace 0.17 printed for a file named /tmp/héllo‮ (é, and U+202E), verbatim.
    const line = '{"type": "map", "data": {"@": {"/tmp/h\\uffffffc3\\uffffffa9llo\\uffffffe2\\uffffff80\\uffffffae": 1}}}';
    assert.deepEqual(parseBpftraceJson(line), { type: 'map', data: { '@': { '/tmp/h\u00e9llo\u202e': 1 } } });
    assert.deepEqual(parseBpftraceJson('{"type": "printf", "data": "a\\u001b[2J"}'), { type: 'printf', data: 'a\x1b[2J' });
    // A cut-off sequence (a string truncated mid-character) reads as U+FFFD, not as bytes.
    assert.deepEqual(parseBpftraceJson('{"data": "x\\uffffffc3"}'), { data: 'x\ufffd' });
  });

  it('reads histogram buckets, including the open-ended ones without min or max', () => {
    const entries = parseEntries(
      [
        { max: -1, count: 2 },
        { min: 0, max: 0, count: 5 },
        { min: 1, max: 1, count: 0 },
        { min: 256, max: 511, count: 1 },
        { min: 1024, count: 6 },
      ],
      false,
    );
    assert.deepEqual([...(entries.get('') as Map<number, number>)], [[-1, 2], [0, 5], [9, 1], [11, 6]]);
  });

  it('turns cumulative maps into deltas and resolves interned strings', () => {
    const layout: ProgramLayout = {
      text: '',
      ship: undefined,
      probeNames: ['syscall:openat'],
      rawSyscallNames: undefined,
      clockOffsetNs: 1000,
      windowed: false,
      dropCounter: undefined,
      record: undefined,
      aggregate: {
        keys: [
          { kind: 'printed', index: 0, decoding: { dictionary: '@fay_nm0' }, type: 'str' },
          { kind: 'printed', index: 1, decoding: 'str', type: 'str' },
          { kind: 'const', value: 'h1' },
        ],
        printedParts: 2,
        freePart: 1,
        aggregates: [
          { function: 'count', count: ['@fay_c'] },
          { function: 'hist', hist: ['@fay_h1'] },
          { function: 'max', value: ['@fay_hi2'] },
        ],
        dictionaries: ['@fay_nm0'],
        rotation: 'none',
      },
    };
    const partials: ProbePartial[] = [];
    const decoder = new BpftraceOutputDecoder(layout, [count, hist, max] as AggregateKind[], { partial: (p) => partials.push(p), events: () => undefined, notice: () => undefined, dropped: () => undefined, dump: () => undefined, detaching: () => undefined, period: () => undefined }, 0, { maxGroups: 100, mapKeysMax: 4096 });
    decoder.startAt(5000);
    const flush = (ns: number, maps: Record<string, unknown>) => {
      decoder.line(JSON.stringify({ type: 'printf', data: `fay:flush ${ns}\n` }));
      for (const [name, value] of Object.entries(maps)) decoder.line(JSON.stringify({ type: 'map', data: { [name]: value } }));
      decoder.line(JSON.stringify({ type: 'printf', data: 'fay:end\n' }));
    };
    flush(9000, {
      '@fay_c': { '4096,/etc/a,b': 3 },
      '@fay_h1': { '4096,/etc/a,b': [{ min: 2, max: 3, count: 3 }] },
      '@fay_hi2': { '4096,/etc/a,b': 3 },
      '@fay_nm0': { 4096: 'x,y' },
    });
    flush(19000, {
      '@fay_c': { '4096,/etc/a,b': 5, '8192,': 1 },
      '@fay_h1': { '4096,/etc/a,b': [{ min: 2, max: 3, count: 4 }, { min: 4, max: 7, count: 1 }], '8192,': [{ min: 0, max: 0, count: 1 }] },
      '@fay_hi2': { '4096,/etc/a,b': 4, '8192,': 0 },
      '@fay_nm0': { 4096: 'x,y', 8192: 'z' },
    });
    assert.equal(partials.length, 2);
    assert.deepEqual([partials[0]!.startNs, partials[0]!.endNs, partials[1]!.startNs, partials[1]!.endNs], [5000, 10000, 10000, 20000]);
    const first = partials[0]!.table.finalize();
    assert.deepEqual(first.map((g) => g.key), [['x,y', '/etc/a,b', 'h1']]);
    assert.deepEqual(first[0]!.values.slice(0, 1), [3]);
    const second = partials[1]!.table.finalize();
    assert.deepEqual(
      second.map((g) => [g.key, g.values[0], (g.values[1] as { total: number }).total, g.values[2]]),
      [
        [['x,y', '/etc/a,b', 'h1'], 2, 2, 4],
        [['z', '', 'h1'], 1, 1, 0],
      ],
    );
  });
  it('stamps windows with the wall clock as it is at each flush, so that a step of it moves them along', () => {
    const layout: ProgramLayout = {
      text: '',
      ship: undefined,
      probeNames: ['syscall:getppid'],
      rawSyscallNames: undefined,
      clockOffsetNs: 1000,
      windowed: false,
      dropCounter: undefined,
      record: undefined,
      aggregate: { keys: [], printedParts: 0, freePart: 0, aggregates: [{ function: 'count', count: ['@fay_c'] }], dictionaries: [], rotation: 'none' },
    };
    let offset = 1000;
    const partials: ProbePartial[] = [];
    const sink = { partial: (p: ProbePartial) => partials.push(p), events: () => undefined, notice: () => undefined, dropped: () => undefined, dump: () => undefined, detaching: () => undefined, period: () => undefined };
    const decoder = new BpftraceOutputDecoder(layout, [count] as AggregateKind[], sink, 0, { maxGroups: 100, mapKeysMax: 4096, clockOffsetNs: () => offset });
    decoder.startAt(2000);
    const flush = (ns: number, n: number) => {
      decoder.line(JSON.stringify({ type: 'printf', data: `fay:flush ${ns}\n` }));
      decoder.line(JSON.stringify({ type: 'map', data: { '@fay_c': n } }));
      decoder.line(JSON.stringify({ type: 'printf', data: 'fay:end\n' }));
    };
    flush(9000, 3);
    offset = 4_000_000_000; // the wall clock stepped 4 s forward
    flush(19000, 5);
    offset = -50_000; // and back, past where the last window ended
    flush(29000, 6);
    assert.deepEqual(
      partials.map((p) => [p.startNs, p.endNs, p.table.finalize()[0]?.values[0]]),
      [
        [2000, 10000, 3],
        [10000, 4_000_019_000, 2],
        [4_000_019_000, 4_000_019_000, 1],
      ],
      'each window starts where the one before ended, and none ends before it starts',
    );
  });
});
