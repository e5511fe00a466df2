import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The runtime (runtime/*.ts) as the one function expression the inspector evaluates in a target:
 * `(function faySetup(config, makeHandlers) { … })`. The build bundles it into target/runtime.js
 * beside this module (scripts/build.sh); run from the sources (the tests, under tsx), it is bundled
 * here on first use, from the same modules with the same options (esbuild, ~30 ms).
 */

const BUILT = new URL('./target/runtime.js', import.meta.url);
const ENTRY = new URL('./runtime/main.ts', import.meta.url);

let script: string | undefined;

/** The runtime's function expression: built, or bundled from the sources now. */
export function runtimeScript(): string {
  script ??= existsSync(BUILT) ? readFileSync(BUILT, 'utf8') : bundleRuntime();
  return script;
}

/**
 * Bundles the runtime's modules (esbuild: a development dependency, present wherever the sources
 * are) into one function expression. Standing alone: the bundle imports nothing, and its names stay
 * inside the function; `faySetup` is the function itself, whose text a worker thread evaluates to get
 * the same runtime.
 */
export function bundleRuntime(): string {
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const { outputFiles } = esbuild.buildSync({
    entryPoints: [fileURLToPath(ENTRY)],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: 'fayRuntime',
    platform: 'node',
    target: 'node20',
    // The way to a worker's inspector mangles other characters.
    charset: 'ascii',
    legalComments: 'none',
    logLevel: 'warning',
  });
  const bundle = outputFiles[0]!.text.trim();
  return `(function faySetup(config, makeHandlers) {\n'use strict';\n${bundle}\nreturn fayRuntime.install(faySetup, config, makeHandlers);\n})`;
}
