#!/usr/bin/env bash
# The Kubernetes minors the local cluster can run, and where each one's binaries live.
#   versions.sh default        the minor CI builds and every command uses unless K8S_VERSION says otherwise
#   versions.sh list           every pinned minor, oldest first
#   versions.sh bin [MINOR]    the binaries' directory relative to the repo (MINOR defaults to $K8S_VERSION,
#                              then to the default): bin/ for the default, bin/<minor>/ for the others
# The default is pinned in hack/cluster/go.mod, each other minor in hack/cluster/<minor>/go.mod.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEFAULT_MINOR=1.34
list() { { echo "$DEFAULT_MINOR"; for m in "$here"/*/go.mod; do [ -f "$m" ] && basename "$(dirname "$m")"; done; } | sort -uV | paste -sd' '; }
case "${1:-}" in
  default) echo "$DEFAULT_MINOR" ;;
  list) list ;;
  bin)
    minor=${2:-${K8S_VERSION:-$DEFAULT_MINOR}}
    if [ "$minor" = "$DEFAULT_MINOR" ]; then echo bin
    elif [ -f "$here/$minor/go.mod" ]; then echo "bin/$minor"
    else echo "K8S_VERSION=$minor is not pinned; pinned: $(list)" >&2; exit 2
    fi ;;
  *) sed -n '3,7p' "$0" >&2; exit 2 ;;
esac
