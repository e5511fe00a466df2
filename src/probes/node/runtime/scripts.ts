import { debugging, idle, post, stalled, breathe, TooCostly } from './debugger.js';
import { clock, commonJsCache, editedScripts, filePath, mod, scriptIds, scriptInfo } from './state.js';

/**
 * The program's scripts as the agent reads them: their sources (or, for a file, its length and
 * hash, for the agent to read the file itself), as they were before any probe edited them.
 */

/** What the runtime says of a script: its source; its length and hash; or why it cannot say more. */
export type ScriptDescription = string | { length: number; hash: string } | { why: string };

/** The test of a script's path for each filter (a regular expression's source; null: the application's scripts, all but node_modules). */
function pathTests(filters: readonly (string | null)[]): ((path: string) => boolean)[] {
  return filters.map((f) => (f === null ? (path: string) => !path.includes('/node_modules/') : RegExp.prototype.test.bind(new RegExp(f, 's'))));
}

/** The sources of the scripts the filters name, but those in `skip`. */
export async function readSources(filters: readonly (string | null)[], skip?: ReadonlySet<string>, limitMs = Infinity): Promise<Record<string, string>> {
  const session = await debugging(limitMs);
  const tests = pathTests(filters);
  const out: Record<string, string> = {};
  const started = clock.now();
  try {
    for (const [url, scriptId] of scriptIds) {
      const path = filePath(url);
      if (path === undefined || skip?.has(url) || !tests.some((test) => test(path))) continue;
      const edited = editedScripts.get(scriptId);
      out[url] = edited?.pristine ?? (await post<{ scriptSource: string }>(session, 'Debugger.getScriptSource', { scriptId })).scriptSource;
    }
  } finally {
    const chars = Object.values(out).reduce((n, s) => n + s.length, 0);
    stalled(`reading the sources of ${Object.keys(out).length} scripts (${(chars / 1048576).toFixed(1)} MB)`, clock.now() - started);
    idle();
  }
  return out;
}

/**
 * The scripts the filters name: url → { length, hash }, or the source where it is no file. Where
 * turning the debugger on would stop the process longer than `limitMs`, the CommonJS modules it
 * has loaded instead (their paths need no debugger): url → { why }, for the agent to read their
 * files and probe their exports (nothing can be edited without the debugger).
 */
export async function describeScripts(filters: readonly (string | null)[], limitMs: number): Promise<Record<string, ScriptDescription>> {
  const tests = pathTests(filters);
  let session;
  try {
    session = await debugging(limitMs);
  } catch (error) {
    if (!(error instanceof TooCostly)) throw error;
    const out: Record<string, ScriptDescription> = {};
    // A CommonJS module's script is known to V8 by its file URL.
    for (const path of Object.keys(commonJsCache() ?? {})) {
      if (path.startsWith('/') && tests.some((test) => test(path))) out[mod<typeof import('node:url')>('url').pathToFileURL(path).href] = { why: error.message };
    }
    return out;
  }
  const out: Record<string, ScriptDescription> = {};
  try {
    for (const [url, scriptId] of scriptIds) {
      const path = filePath(url);
      if (path === undefined || !tests.some((test) => test(path))) continue;
      // What V8 reported when this runtime first saw the script: its source before any of Fay's edits.
      const info = scriptInfo.get(url);
      const edited = editedScripts.get(scriptId);
      if (info && typeof info.hash === 'string') out[url] = { length: info.length, hash: info.hash };
      else out[url] = edited?.pristine ?? (await post<{ scriptSource: string }>(session, 'Debugger.getScriptSource', { scriptId })).scriptSource;
    }
  } finally {
    idle();
  }
  return out;
}

/** One script's source, read through the debugger: a stop as long as the script is large, measured. */
export async function readSource(scriptId: string): Promise<string> {
  const session = await debugging();
  const started = clock.now();
  const { scriptSource } = await post<{ scriptSource: string }>(session, 'Debugger.getScriptSource', { scriptId });
  stalled(`reading the source of a script (${(scriptSource.length / 1048576).toFixed(1)} MB)`, clock.now() - started);
  await breathe();
  return scriptSource;
}
