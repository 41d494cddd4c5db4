#!/usr/bin/env bash
# `make faults`: the fault campaign on a fresh local cluster. Every scenario in test/faults/ repeats its
# fault FAULT_ROUNDS times (default 20) under continuous churn, checks its invariants after every
# round and prints one line of counts; the lines also go to .dev/faults/results.jsonl.
# Rerun a campaign exactly: make faults FAULT_SEED=<the seed it printed>. A 2-round smoke of the same
# scenarios runs inside `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export FAULT_ROUNDS=${FAULT_ROUNDS:-20}
export FAULT_MAX_DOWN_S=${FAULT_MAX_DOWN_S:-30}
export FAULT_SEED=${FAULT_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "==> fault campaign: ${FAULT_ROUNDS} rounds per scenario, faults up to ${FAULT_MAX_DOWN_S}s, seed ${FAULT_SEED}"
echo "    (rerun: make faults FAULT_SEED=${FAULT_SEED} FAULT_ROUNDS=${FAULT_ROUNDS} FAULT_MAX_DOWN_S=${FAULT_MAX_DOWN_S})"
npx mocha --exit --require dist/test/e2e/hooks.js --timeout 0 --slow 600000 'dist/test/faults/**/*.test.js'
