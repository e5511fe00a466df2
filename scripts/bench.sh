#!/usr/bin/env bash
# Benchmarks (not tests): each prints its figure beside its baseline, measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for bench in bench/*.bench.ts; do
  echo "== $bench"
  node --expose-gc --import tsx "$bench"
done
