#!/usr/bin/env bash
# `make bench`: the scale benchmark on a fresh local cluster, then the store throughput benchmark.
# Sizes: make bench NODES=1000 PODS=30000 RATE=500
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> scale: dcp-operator vs makeInformer vs counts-only floor"
node dist/bench/sync.js --nodes "${NODES:-300}" --pods "${PODS:-10000}" --rate "${RATE:-500}"
for b in dist/bench/store-*.js; do
  [ -f "$b" ] || continue
  echo "==> $(basename "$b" .js)"
  node "$b"
done
echo "==> audit exporter throughput (webhook → file, azureBlob on Azurite; outage drain)"
node dist/bench/audit-throughput.js
