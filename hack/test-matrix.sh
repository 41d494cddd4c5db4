#!/usr/bin/env bash
# `make test-matrix`: the whole e2e suite on every pinned Kubernetes minor (hack/cluster/versions.sh list), each on
# a fresh local cluster of that minor; builds the binaries a minor lacks first (cached after). Prints one line per
# minor, then the usual closing line "N passed, N failed" over all of them. Usage: hack/test-matrix.sh [MINOR...]
set -uo pipefail
cd "$(dirname "$0")/.."
unset E2E_KUBECONFIG   # the matrix is about the pinned releases; a given cluster is `make test-e2e E2E_KUBECONFIG=...`
dir=.dev/matrix
rm -rf "$dir" && mkdir -p "$dir"
minors=("$@")
[ ${#minors[@]} -gt 0 ] || read -ra minors <<< "$(hack/cluster/versions.sh list)"
lines=()
for minor in "${minors[@]}"; do
  echo "==> Kubernetes $minor: binaries (built once, cached), then the e2e suite on a fresh local cluster"
  start=$SECONDS
  if ! make -s cluster K8S_VERSION="$minor"; then
    printf '{"passed":0,"failed":1,"skipped":0}' > "$dir/$minor.json"
    lines+=("  $minor  binaries failed to build"); continue
  fi
  release=$("$(hack/cluster/versions.sh bin "$minor")/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1)
  K8S_VERSION=$minor bash hack/test.sh e2e
  if [ -f .dev/results/e2e.json ]; then cp .dev/results/e2e.json "$dir/$minor.json"; else printf '{"passed":0,"failed":1,"skipped":0}' > "$dir/$minor.json"; fi
  counts=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(`${r.passed} passed, ${r.failed} failed${r.skipped?`, ${r.skipped} skipped`:""}`)' "$dir/$minor.json")
  lines+=("$(printf '  Kubernetes %-5s (%s)  e2e: %s  in %d min %02d s' "$minor" "$release" "$counts" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)))")
done
echo "==> matrix"
printf '%s\n' "${lines[@]}" | tee "$dir/summary.txt"
node hack/summary.mjs "$dir" | tail -1 | tee -a "$dir/summary.txt"
node hack/summary.mjs "$dir" > /dev/null
