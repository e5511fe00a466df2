import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built command: what ./fay, the package's bin and the quick start run (scripts/build.sh). */
const MAIN = join(ROOT, 'dist/bin/fay.cjs');

let checked = false;

/** The newest modification time of the files the build reads (tests and test support are not built). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testing') newest = Math.max(newest, newestSource(path));
    } else if (!entry.name.endsWith('.test.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * The command line that runs `fay`: the built command under this Node.js, so that the tests run
 * what users run. It must be as new as the sources (npm test builds it first; by hand: npm run build).
 */
export function fayCommand(): string[] {
  if (!checked) {
    let built: number;
    try {
      built = statSync(join(ROOT, 'dist/.built')).mtimeMs;
    } catch {
      throw new Error('fay is not built: run `npm run build` (npm test builds it first)');
    }
    if (newestSource(join(ROOT, 'src')) > built) throw new Error('the built fay (dist/) is older than src/: run `npm run build` (npm test builds it first)');
    checked = true;
  }
  return [process.execPath, MAIN];
}
