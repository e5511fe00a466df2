import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A field of a kernel tracepoint, from its format file. */
export interface TracepointField {
  readonly name: string;
  /** The C type as the format file spells it, e.g. `const char *`, `__data_loc char[]`. */
  readonly cType: string;
  /** How Fay reads it: a number, or a string (C strings, char arrays, dynamic strings). */
  readonly type: 'int' | 'str';
  /** Where it is in the tracepoint's record, its bytes, and whether it is signed (from the format file). */
  readonly offset?: number;
  readonly size?: number;
  readonly signed?: boolean;
}

const ROOTS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** The mounted tracefs, if any. */
export function tracefsRoot(): string | undefined {
  return ROOTS.find((root) => existsSync(join(root, 'events')));
}

/**
 * Read access to the kernel's tracepoints through tracefs: which exist, and
 * the fields each one carries. Results are cached; the set does not change
 * while Fay runs (modules aside).
 */
export class Tracefs {
  private events: string[] | undefined;
  private readonly formats = new Map<string, TracepointField[] | undefined>();

  constructor(readonly root: string) {}

  /**
   * Every tracepoint a probe can attach to, as `category:event`, sorted. An event without an
   * `enable` file is ftrace's own (ftrace:function, ftrace:kernel_stack, …): it has a format
   * and even an id, but the kernel refuses to attach a program to it (perf_event_open: EINVAL).
   * The kernel's own list of the events that can be enabled (available_events) says the same in
   * one read: 2 ms here, where looking for each event's `enable` file took 16–26 ms.
   */
  listEvents(): readonly string[] {
    const available = join(this.root, 'available_events');
    if (this.events === undefined && existsSync(available)) {
      this.events = readFileSync(available, 'utf8')
        .split('\n')
        .filter((line) => /^[^:\s]+:[^:\s]+$/.test(line))
        .sort();
    }
    if (this.events === undefined) {
      const out: string[] = [];
      const base = join(this.root, 'events');
      for (const category of readdirSync(base, { withFileTypes: true })) {
        if (!category.isDirectory()) continue;
        for (const event of readdirSync(join(base, category.name), { withFileTypes: true })) {
          if (event.isDirectory() && existsSync(join(base, category.name, event.name, 'enable'))) out.push(`${category.name}:${event.name}`);
        }
      }
      this.events = out.sort();
    }
    return this.events;
  }

  private functions: string[] | undefined;

  /** Kernel functions that can be traced (available_filter_functions), sorted and unique. */
  kernelFunctions(): readonly string[] {
    if (this.functions === undefined) {
      const path = join(this.root, 'available_filter_functions');
      const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
      const names = new Set(text.split('\n').map((l) => l.split(/\s/)[0]!).filter(Boolean));
      this.functions = [...names].sort();
    }
    return this.functions;
  }

  has(category: string, event: string): boolean {
    return existsSync(join(this.root, 'events', category, event, 'format'));
  }

  /** The non-common fields of a tracepoint, in order; undefined if it does not exist. */
  fields(category: string, event: string): readonly TracepointField[] | undefined {
    const id = `${category}:${event}`;
    if (!this.formats.has(id)) {
      const path = join(this.root, 'events', category, event, 'format');
      this.formats.set(id, existsSync(path) ? parseFormat(readFileSync(path, 'utf8')) : undefined);
    }
    return this.formats.get(id);
  }
}

/** Parses a tracepoint format file into the fields Fay can read (common_* and odd arrays left out). */
export function parseFormat(text: string): TracepointField[] {
  const fields: TracepointField[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(\d);)?/.exec(line);
    if (!match) continue;
    const declaration = match[1]!.trim();
    const parts = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$/.exec(declaration);
    if (!parts) continue;
    const cType = (parts[1]!.trim() + (parts[3] ? parts[3] : '')).trim();
    const name = parts[2]!;
    if (name.startsWith('common_') || name === '__syscall_nr') continue;
    const isArray = parts[3] !== undefined;
    const base = parts[1]!.trim();
    let type: 'int' | 'str' | undefined;
    if (base.startsWith('__data_loc')) type = /char\s*\[\]/.test(declaration) ? 'str' : undefined;
    else if (isArray) type = /^(const\s+)?(unsigned\s+)?char$/.test(base) ? 'str' : undefined;
    else if (/^(const\s+)?char\s*\*$/.test(base)) type = 'str';
    else if (Number(match[3]) <= 8) type = 'int';
    if (type) fields.push({ name, cType, type, offset: Number(match[2]), size: Number(match[3]), signed: match[4] === '1' });
  }
  return fields;
}
