import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { QueryMessage } from '../cluster/cluster-stage.js';
import { EnvironmentError } from '../errors.js';
import { foldedLines } from './folded-stacks.js';
import type { OutputSink } from './sink.js';

/**
 * A count by a stack as a pprof profile (gzipped protobuf, what `go tool pprof`, Parca and
 * Pyroscope read): each stack a sample, its count the value (`samples`, and `cpu` in nanoseconds
 * when the sampling rate is known), each distinct frame a location with its function: the name, and
 * the file and line where the frame says them (`burn (app.cjs:19)`, `spin_loop+20`).
 */

/** A frame's function, file and line, as a stack's text gives them. */
export function parseFrame(frame: string): { name: string; file: string; line: number } {
  const text = frame.trim();
  // JavaScript: name (file:line) or name (file:line:column).
  const js = /^(.*) \((.+?):(\d+)(?::\d+)?\)$/.exec(text);
  if (js) return { name: js[1]!, file: js[2]!, line: Number(js[3]) };
  // Native: symbol+offset, maybe with its module in parentheses.
  const native = /^(.+?)\+(?:0x[0-9a-f]+|\d+)(?: \((.+)\))?$/i.exec(text);
  if (native) return { name: native[1]!, file: native[2] ?? '', line: 0 };
  return { name: text, file: '', line: 0 };
}

/** The profile of the stacks counted: `lines` as foldedLines gives them (outermost frame first, then the count). */
export function pprofOf(lines: readonly string[], options: { timeNs: number; durationNs: number; periodNs?: number }): Uint8Array {
  const strings = new StringTable();
  const functions = new Map<string, PprofFunction>();
  const locations = new Map<string, Location>();
  const samples: Sample[] = [];
  const locationOf = (frame: string): Location => {
    let location = locations.get(frame);
    if (location) return location;
    const { name, file, line } = parseFrame(frame);
    const key = `${name}\u0000${file}`;
    let fn = functions.get(key);
    if (!fn) {
      fn = new PprofFunction({ id: functions.size + 1, name: strings.dedup(name), systemName: strings.dedup(name), filename: strings.dedup(file) });
      functions.set(key, fn);
    }
    location = new Location({ id: locations.size + 1, line: [new Line({ functionId: fn.id, line })] });
    locations.set(frame, location);
    return location;
  };
  for (const folded of lines) {
    const space = folded.lastIndexOf(' ');
    const count = Number(folded.slice(space + 1));
    if (!(count > 0)) continue;
    // pprof lists a sample's locations leaf first.
    const frames = folded.slice(0, space).split(';').reverse();
    const value = options.periodNs === undefined ? [count] : [count, count * options.periodNs];
    samples.push(new Sample({ locationId: frames.map((f) => locationOf(f).id), value }));
  }
  const sampleType = [new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') })];
  if (options.periodNs !== undefined) sampleType.push(new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') }));
  const profile = new Profile({
    sampleType,
    sample: samples,
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
    timeNanos: options.timeNs,
    durationNanos: options.durationNs,
    ...(options.periodNs !== undefined && { periodType: new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') }), period: options.periodNs }),
  });
  return gzipSync(profile.encode());
}

/**
 * Writes the stacks a query counted to a pprof file when it ends: the whole run's (windows that
 * follow each other added up; a sliding window that overlaps the last one taken is left out, so
 * that no sample counts twice). Says on standard error what it wrote.
 */
export class PprofSink implements OutputSink {
  private readonly totals = new Map<string, number>();
  private lastEndNs = -Infinity;
  /** The profile's span runs from when the command began to hear the query (results' own spans start at their first partial). */
  private readonly startedNs = Date.now() * 1e6;

  constructor(
    private readonly path: string,
    private readonly periodNs: number | undefined,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  export(message: QueryMessage): Promise<void> {
    // A query without windows has one complete result, its answer; windows each have theirs.
    if (message.kind !== 'result' || !message.complete || message.startNs < this.lastEndNs) return Promise.resolve();
    this.lastEndNs = message.endNs;
    for (const line of foldedLines(message)) {
      const space = line.lastIndexOf(' ');
      const stack = line.slice(0, space);
      this.totals.set(stack, (this.totals.get(stack) ?? 0) + Number(line.slice(space + 1)));
    }
    return Promise.resolve();
  }

  async shutdown(): Promise<void> {
    const lines = [...this.totals].map(([stack, n]) => `${stack} ${n}`);
    const endNs = Math.max(this.lastEndNs, Date.now() * 1e6);
    const bytes = pprofOf(lines, { timeNs: this.startedNs, durationNs: endNs - this.startedNs, ...(this.periodNs !== undefined && { periodNs: this.periodNs }) });
    try {
      await writeFile(this.path, bytes);
    } catch (error) {
      throw new EnvironmentError(`cannot write the profile to ${this.path}: ${(error as Error).message}`, { hint: 'give --pprof a path in a directory you can write to' });
    }
    const samples = [...this.totals.values()].reduce((a, b) => a + b, 0);
    this.err.write(`fay: wrote ${this.path}: ${samples} sample${samples === 1 ? '' : 's'} in ${lines.length} stack${lines.length === 1 ? '' : 's'} (go tool pprof -top ${this.path})\n`);
  }
}
