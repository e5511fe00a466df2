import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bundleRuntime } from '../src/probes/node/runtime-script.js';

/** Writes the runtime's bundle (see runtime-script.ts) to each path given. */
const script = bundleRuntime();
for (const path of process.argv.slice(2)) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, script);
}
