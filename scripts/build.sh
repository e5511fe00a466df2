#!/usr/bin/env bash
# The build. The library (`exports`): tsc to dist/. The command (`bin`, ./fay): the same code bundled
# into dist/bin/, a few files instead of ~150 modules to resolve and load at every start (~50 ms
# of it); what it loads on first use stays in chunks of its own. What runs in and beside traced
# processes (target/) goes next to the code that reads it, in both.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
node_modules/.bin/tsc -p tsconfig.build.json
for dir in dist/probes/node/target dist/bin/target; do
  mkdir -p "$dir"
  cp src/probes/node/target/*.cjs "$dir/"
done
# Fay's own eBPF loader (the native backend), against Debian's libbpf-dev: beside the library and the command.
mkdir -p dist/probes/native
gcc -O2 -Wall -Wextra -Werror -o dist/probes/native/fay-bpf-loader src/probes/native/loader.c -lbpf -lelf
cp dist/probes/native/fay-bpf-loader dist/bin/fay-bpf-loader
# The runtime evaluated in traced processes: its TypeScript modules bundled into one function expression.
node --import tsx scripts/bundle-runtime.ts dist/probes/node/target/runtime.js dist/bin/target/runtime.js
# CommonJS dependencies (commander) require Node.js's modules: an ES module bundle needs a require.
node_modules/.bin/esbuild dist/cli/main.js --bundle --platform=node --target=node20 --format=esm --splitting \
  --outdir=dist/bin --log-level=warning --external:@duckdb/node-api \
  "--banner:js=import { createRequire as fayCreateRequire } from 'node:module'; const require = fayCreateRequire(import.meta.url);"
# What the `fay` command starts: fay.cjs, CommonJS (Node.js starts it sooner than an ES module), which
# hands `fay query --json` to this machine's agent when one runs, loading nothing more, and otherwise
# imports main.js, the whole command line.
node_modules/.bin/esbuild dist/cli/fay.js --bundle --platform=node --target=node20 --format=cjs \
  --outfile=dist/bin/fay.cjs --log-level=warning --external:./main.js --define:import.meta.url=fayEntryUrl \
  "--banner:js=const fayEntryUrl = require('node:url').pathToFileURL(__filename).href;"
chmod +x dist/bin/fay.cjs
# fay web's page: its TypeScript bundled for the browser, with its HTML and styles (web/).
mkdir -p dist/web/assets
node_modules/.bin/esbuild web/app/main.ts --bundle --format=esm --target=es2022 --minify --sourcemap \
  --outfile=dist/web/assets/app.js --log-level=warning
cp web/index.html dist/web/assets/
touch dist/.built
