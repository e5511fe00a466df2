import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findFunctions, type ScriptFunction } from './functions.js';

/**
 * The frames of a JavaScript CPU profile as a user reads them: each function by the name a js:
 * probe gives it (`Reply.prototype.send`, `app.get(/users/:id)`, `anonymous@12`, where V8 says
 * `Reply.send` or nothing), its script by its short name (a package's by its path in the package,
 * `fastify/lib/reply.js`, the application's and Node's own by their file name) and the line the
 * function starts on. The runtime sends each frame as V8 knows it (profile.ts's frameName): its
 * name, its script's URL, line and column, tab-separated.
 */

/** A script larger than this is not read to name its functions: V8's names stay. */
const MAX_SCRIPT_BYTES = 16 * 1024 * 1024;

/** One script's functions, and where its lines start, to find the function at a line and column. */
interface ScriptIndex {
  readonly functions: readonly ScriptFunction[];
  readonly lineStarts: readonly number[];
}

/** A script's short name in a frame: its path in its package, or its file name. */
export function scriptName(url: string): string {
  const inPackages = url.lastIndexOf('/node_modules/');
  return inPackages >= 0 ? url.slice(inPackages + '/node_modules/'.length) : url.slice(url.lastIndexOf('/') + 1);
}

/** The file a script's URL names, as the process sees it (file:// or a path); undefined for node: and evaluated code. */
function filePath(url: string): string | undefined {
  if (url.startsWith('file://')) return fileURLToPath(url);
  return url.startsWith('/') ? url : undefined;
}

/** Names one process's frames; each script is read and parsed once (through /proc/<pid>/root, a container's root too). */
export class FrameNamer {
  private readonly scripts = new Map<string, ScriptIndex | undefined>();
  private readonly frames = new Map<string, string>();

  constructor(
    private readonly readScript: (url: string) => string | undefined,
  ) {}

  /** A namer for a process, reading its scripts' files. */
  static forProcess(pid: number): FrameNamer {
    return new FrameNamer((url) => {
      const path = filePath(url);
      if (path === undefined) return undefined;
      try {
        const file = `/proc/${pid}/root${path}`;
        return statSync(file).size > MAX_SCRIPT_BYTES ? undefined : readFileSync(file, 'utf8');
      } catch {
        return undefined;
      }
    });
  }

  /** A stack's lines, each named (see frame). */
  stack(encoded: string): string {
    return encoded.includes('\t') ? encoded.split('\n').map((line) => this.frame(line)).join('\n') : encoded;
  }

  /** One frame: `name (script:line)`; a frame with no script (idle), (garbage collector), (fay) as it is. */
  frame(encoded: string): string {
    let named = this.frames.get(encoded);
    if (named === undefined) {
      named = this.name(encoded);
      if (this.frames.size < 100_000) this.frames.set(encoded, named);
    }
    return named;
  }

  private name(encoded: string): string {
    const parts = encoded.split('\t');
    if (parts.length < 4) return encoded;
    // The name may hold a tab (a computed one): the last three parts are where.
    const [url, line, column] = parts.slice(-3) as [string, string, string];
    const v8Name = parts.slice(0, -3).join('\t');
    const fn = this.functionAt(url, Number(line), Number(column));
    return `${fn?.name ?? (v8Name || '(anonymous)')} (${scriptName(url)}:${Number(line) + 1})`;
  }

  /** The innermost function whose span holds the position V8 gives a function (its parameters' start). */
  private functionAt(url: string, line: number, column: number): ScriptFunction | undefined {
    if (!this.scripts.has(url)) this.scripts.set(url, this.index(url));
    const script = this.scripts.get(url);
    const start = script?.lineStarts[line];
    if (!script || start === undefined) return undefined;
    const at = start + column;
    let found: ScriptFunction | undefined;
    for (const fn of script.functions) {
      if (fn.span.start <= at && at < fn.span.end && (!found || fn.span.start > found.span.start)) found = fn;
    }
    return found;
  }

  private index(url: string): ScriptIndex | undefined {
    const source = this.readScript(url);
    if (source === undefined) return undefined;
    const functions = findFunctions(source);
    if (typeof functions === 'string') return undefined;
    const lineStarts = [0];
    for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) lineStarts.push(i + 1);
    return { functions, lineStarts };
  }
}
