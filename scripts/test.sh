#!/usr/bin/env bash
# The whole suite: set-up, type-check, lint, then every test file (real probes, real processes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== type-check (tsc --noEmit)"
node_modules/.bin/tsc --noEmit
node_modules/.bin/tsc --noEmit -p web
echo "== lint (eslint, type-aware)"
node_modules/.bin/eslint --max-warnings=0 .
echo "== tests"
mapfile -t files < <(find src test web -name '*.test.ts' 2>/dev/null | sort)
# One file at a time: kernel tests check that no probe is left loaded, which a neighbour's probes would blur.
exec node --import tsx --test --test-concurrency=1 --test-timeout=180000 "${files[@]}"
