import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { globToRegExp, isGlob } from '../../plan/expr.js';

/** Finds binaries and the functions in them that uprobes can attach to. */
export interface SymbolLister {
  /** Absolute path of a binary given as a path, a command on PATH, or a library name; undefined if none. */
  resolveBinary(text: string): string | undefined;
  /** Function symbols of a binary matching a glob, sorted. */
  functions(binary: string, glob: string): readonly string[];
}

/**
 * Lists symbols through `bpftrace -l`, which knows exactly what it can attach to: every one of a
 * binary once (84,000 of node's in 0.4 s, against 0.3 s for one pattern), kept, and matched here
 * with Fay's own globs, which never backtrack: a user's glob never reaches bpftrace.
 */
export class BpftraceSymbolLister implements SymbolLister {
  private readonly cache = new Map<string, readonly string[]>();
  private libraries: Map<string, string> | undefined;

  constructor(private readonly bpftrace: string) {}

  resolveBinary(text: string): string | undefined {
    // A control character (a NUL above all) names no file, and no command line may carry it.
    // eslint-disable-next-line no-control-regex
    if (text === '' || /[\u0000-\u001f]/.test(text)) return undefined;
    if (text.includes('/')) {
      const path = resolve(text);
      return existsSync(path) ? realpathSync(path) : undefined;
    }
    for (const dir of (process.env.PATH ?? '').split(':')) {
      const candidate = `${dir}/${text}`;
      if (dir && isExecutable(candidate)) return realpathSync(candidate);
    }
    const libs = this.libraryIndex();
    const found = libs.get(text) ?? libs.get(`lib${text}`);
    return found ? realpathSync(found) : undefined;
  }

  functions(binary: string, glob: string): readonly string[] {
    let symbols = this.cache.get(binary);
    if (symbols === undefined) {
      const result = spawnSync(this.bpftrace, ['-l', `uprobe:${binary}:*`], { encoding: 'utf8', maxBuffer: 256 << 20 });
      const prefix = `uprobe:${binary}:`;
      symbols = [
        ...new Set(
          (result.stdout ?? '')
            .split('\n')
            .filter((l) => l.startsWith(prefix))
            .map((l) => l.slice(prefix.length)),
        ),
      ].sort();
      this.cache.set(binary, symbols);
    }
    if (!isGlob(glob)) return symbols.includes(glob) ? [glob] : [];
    const want = globToRegExp(glob);
    return symbols.filter((s) => want.test(s));
  }

  /** Library short names (`libc`, `libc.so.6`) → path, from the dynamic linker's cache. */
  private libraryIndex(): Map<string, string> {
    if (this.libraries === undefined) {
      this.libraries = new Map();
      const out = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '';
      for (const line of out.split('\n')) {
        const match = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
        if (!match || (process.arch === 'x64' && !match[2]!.includes('x86-64'))) continue;
        const [, name, , path] = match as unknown as [string, string, string, string];
        const short = name.replace(/\.so(\..*)?$/, '');
        for (const key of [name, short]) if (!this.libraries.has(key)) this.libraries.set(key, path);
      }
    }
    return this.libraries;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
