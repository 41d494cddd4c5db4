#!/usr/bin/env bash
# `make demo`: installs what is needed (cached after the first run), builds, and runs hack/demo.ts.
# make demo NODES=500 PODS=15000 sizes the fleet; DEMO_ONCE=1 exits after the overview.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> installing npm dependencies (cached after the first run)"
make -s install-deps
echo "==> building dcp-operator"
make -s build
# K8S_VERSION=1.37 runs that pinned minor (its binaries in bin/1.37/).
if [ ! -f "$(hack/cluster/versions.sh bin)/.cluster-stamp" ]; then
  echo "==> building the cluster binaries from the Kubernetes Go modules: about 7 minutes the first time, cached after"
fi
make -s cluster
exec node dist/hack/demo.js --nodes "${NODES:-50}" --pods "${PODS:-1500}" ${DEMO_ONCE:+--once}
