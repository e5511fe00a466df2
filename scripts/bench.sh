#!/usr/bin/env bash
# Benchmarks (not tests): each prints its figure beside its baseline, measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The cluster benchmark opens a NATS connection per synthetic agent (10,000 of them): as many files as allowed.
ulimit -n "$(ulimit -Hn)"
# fay web's benchmark lives with the page (web/), whose TypeScript knows the browser's types.
for bench in bench/*.bench.ts web/*.bench.ts; do
  echo "== $bench"
  node --expose-gc --import tsx "$bench"
done
