#!/usr/bin/env bash
# The test command behind `make test`: install, build, lint, unit tests, e2e tests on a fresh local
# cluster (or E2E_KUBECONFIG), then one closing line "N passed, N failed". Usage: hack/test.sh [all|unit|e2e]
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
results=.dev/results
rm -rf "$results" && mkdir -p "$results"
record() { printf '{"passed":%d,"failed":%d,"skipped":0}' "$2" "$3" > "$results/$1.json"; }

if [ "$mode" = all ]; then
  echo "==> installing and building (npm ci, TypeScript, cluster binaries: minutes on a fresh machine)"
  if ! make -s install-deps build; then record build 0 1; node hack/summary.mjs "$results"; exit 1; fi
  if [ -z "${E2E_KUBECONFIG:-}" ] && ! make -s cluster; then record cluster 0 1; node hack/summary.mjs "$results"; exit 1; fi
  echo "==> pinned Go tools (helm, oci-build, otelcol, promtool: cached in bin/ after the first build)"
  if ! make -s tools; then record tools 0 1; node hack/summary.mjs "$results"; exit 1; fi
  echo "==> lint"
  if npx eslint .; then record lint 1 0; else record lint 0 1; fi
fi

# --exit: a handle a failed test leaks must not hold the run (and CI) open after the last test.
mocha() { DCP_RESULTS_FILE="$results/$1.json" npx mocha --exit --reporter hack/counting-reporter.cjs "${@:2}"; }

if [ "$mode" = all ] || [ "$mode" = unit ]; then
  echo "==> unit tests"
  # Property tests run thousands of cases: a loaded machine must not turn mocha's 2 s default into a failure.
  mocha unit --timeout 20000 'dist/test/unit/**/*.test.js' || true
  [ -f "$results/unit.json" ] || record unit 0 1
fi
if [ "$mode" = all ] || [ "$mode" = e2e ]; then
  echo "==> e2e tests on a local cluster"
  # The fault scenarios run here as a 2-round smoke (FAULT_ROUNDS); `make faults` runs them long.
  mocha e2e --require dist/test/e2e/hooks.js --timeout 120000 --slow 10000 'dist/test/e2e/**/*.test.js' 'dist/test/faults/**/*.test.js' || true
  [ -f "$results/e2e.json" ] || record e2e 0 1
fi
node hack/summary.mjs "$results"
