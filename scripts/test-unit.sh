#!/usr/bin/env bash
# The fast layer: no root, no kernel, no processes traced; seconds. The parser, binder and planner
# (against a copy of a kernel's tracefs, test/fixtures/tracefs), aggregates, windows, sinks, FayLINQ,
# and the Node.js runtime's pure parts. `npm test` runs these too, with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
exec node --import tsx --test \
  src/query/parser.test.ts \
  src/query/binder.test.ts \
  src/query/limits.test.ts \
  src/plan/planner.test.ts \
  src/probes/options.test.ts \
  src/agg/aggregates.test.ts \
  src/cluster/windows.test.ts \
  src/cluster/coverage-ledger.test.ts \
  src/cluster/merge-tree.test.ts \
  src/mine/categorize.test.ts \
  src/mine/names.test.ts \
  src/output/output.test.ts \
  src/output/exponential-histogram.test.ts \
  src/output/pprof.test.ts \
  src/output/prometheus.test.ts \
  web/app/page.test.ts \
  src/bus/codec.test.ts \
  src/store/trace-store.test.ts \
  src/probes/stored/history.test.ts \
  src/cli/top.test.ts \
  src/cli/thin-query.test.ts \
  src/linq/lambda.test.ts \
  src/linq/equivalence.test.ts \
  src/linq/stored.test.ts \
  src/probes/bpf/decoder.test.ts \
  src/probes/bpf/wall-clock.test.ts \
  src/probes/bpf/structs.test.ts \
  src/probes/bpf/sockaddr.test.ts \
  src/probes/node/channel.test.ts \
  src/probes/node/frames.test.ts \
  src/probes/node/functions.test.ts \
  src/probes/node/runtime/helpers.test.ts \
  src/probes/node/runtime-version.test.ts \
  src/probes/node/sources.test.ts \
  src/probes/node/websocket.test.ts
