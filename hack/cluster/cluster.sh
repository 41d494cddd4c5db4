#!/usr/bin/env bash
# Starts and deletes local clusters (upstream binaries in bin/, run by kwokctl's binary runtime).
#   cluster.sh up NAME KUBECONFIG [extra kwokctl create args...]
#   cluster.sh down NAME
#   cluster.sh stop|start NAME        (API-server restart on the same data and ports; stop waits for the exit)
#   cluster.sh kwokctl NAME args...   (any kwokctl command for that cluster)
# K8S_VERSION=1.37 runs that pinned minor (binaries in bin/1.37/, see versions.sh); the default is what CI runs.
# Everything binds 127.0.0.1; clusters live under .dev/kwok; ~/.kube/config is never touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$root/.dev/kwok}"
mkdir -p "$KWOK_WORKDIR"
# Port blocks are claimed machine-wide (every worktree and test run on this machine shares the range).
ports_dir="${DCP_CLUSTER_PORTS_DIR:-${TMPDIR:-/tmp}/dcp-cluster-ports}"
mkdir -p "$ports_dir"

# kwokctl picks ports by probing downward from 32767, so two clusters created at the same moment pick the
# same ones. Instead each cluster claims a random block of 8 ports below the kernel's ephemeral range:
# mkdir is atomic, so two runs never claim one block, and the probe skips ports something else holds.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
claim_ports() { # NAME -> prints the block's base port
  local name=$1 try base owner p
  for try in $(seq 1 200); do
    base=$((12000 + (RANDOM % 2250) * 8))   # 12000..29992; kwokctl's own probing starts at 32766
    if ! mkdir "$ports_dir/$base" 2>/dev/null; then
      owner=$(cat "$ports_dir/$base/owner" 2>/dev/null || true)
      # A claim whose cluster directory is gone (and that is not a creation in progress) is stale.
      if [ -n "$owner" ] && [ ! -d "$owner" ] && [ -z "$(find "$ports_dir/$base" -maxdepth 0 -mmin -10)" ]; then
        rm -rf "$ports_dir/$base"
      fi
      continue
    fi
    echo "$KWOK_WORKDIR/clusters/$name" > "$ports_dir/$base/owner"
    for p in $(seq "$base" $((base + 5))); do
      port_free "$p" || { rm -rf "$ports_dir/$base"; continue 2; }
    done
    echo "$base"; return 0
  done
  echo "no free block of cluster ports in 12000-29999" >&2; return 1
}
release_ports() { # NAME
  local claim
  for claim in "$ports_dir"/*/owner; do
    [ -f "$claim" ] && [ "$(cat "$claim" 2>/dev/null)" = "$KWOK_WORKDIR/clusters/$1" ] && rm -rf "$(dirname "$claim")"
  done
  return 0
}

write_config() { # FILE BASE
  local kbin minor
  kbin="$root/$("$root/hack/cluster/versions.sh" bin)"
  [ -x "$kbin/kube-apiserver" ] || { echo "no Kubernetes binaries in $kbin: run make cluster K8S_VERSION=${K8S_VERSION:-}" >&2; return 1; }
  minor=$("$kbin/kubectl" version --client -o json | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1)
  cat > "$1" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  etcdPeerPort: $2
  etcdPort: $(($2 + 1))
  kubeApiserverPort: $(($2 + 2))
  kwokControllerPort: $(($2 + 3))
  kubeControllerManagerPort: $(($2 + 4))
  kubeSchedulerPort: $(($2 + 5))
  kubeApiserverBinary: $kbin/kube-apiserver
  kubeControllerManagerBinary: $kbin/kube-controller-manager
  kubeSchedulerBinary: $kbin/kube-scheduler
  kwokControllerBinary: $bin/kwok
  etcdBinary: $kbin/etcd
  etcdctlBinary: $kbin/etcdctl
  kubectlBinary: $kbin/kubectl
# One controller-manager and one scheduler per cluster: no leader election, so a paused or restarted API server
# (the stall and fault tests) cannot make them lose a lease and exit (kwokctl does not restart them).
componentsPatches:
- name: kube-controller-manager
  extraArgs:
  - key: leader-elect
    value: "false"
- name: kube-scheduler
  extraArgs:
  - key: leader-elect
    value: "false"
YAML
  # From 1.37 the API server refuses its loopback advertise address while it reconciles the default/kubernetes
  # Endpoints; nothing here reaches the API server through that Service.
  if [ "${minor:-0}" -ge 37 ]; then
    cat >> "$1" <<YAML
- name: kube-apiserver
  extraArgs:
  - key: endpoint-reconciler-type
    value: none
YAML
  fi
}

# The pids of the cluster's running components (kwokctl removes the pid files when it stops them).
component_pids() {
  local f
  for f in "$KWOK_WORKDIR/clusters/$1"/pids/*.pid; do [ -f "$f" ] && printf '%s ' "$(cat "$f")"; done
  return 0
}
# Waits until the given pids have exited (a stopped API server must have released its port before a start);
# after 30 s a component that ignored SIGTERM is killed.
wait_exited() {
  local pid deadline=$((SECONDS + 30))
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  done
}

cmd=${1:-}; name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { sed -n '2,7p' "$0"; exit 2; }
case "$cmd" in
  up)
    kubeconfig=${3:?kubeconfig path}; shift 3
    config="$KWOK_WORKDIR/$name.kwokctl.yaml"
    base=$(claim_ports "$name")
    write_config "$config" "$base" || { release_ports "$name"; exit 1; }
    rc=0
    "$bin/kwokctl" create cluster --name "$name" --config "$config" --kubeconfig "$kubeconfig" --wait 2m "$@" || rc=$?
    rm -f "$config"
    if [ "$rc" -ne 0 ] && [ ! -d "$KWOK_WORKDIR/clusters/$name" ]; then release_ports "$name"; fi
    exit "$rc"
    ;;
  down)
    pids=$(component_pids "$name")
    rc=0
    "$bin/kwokctl" delete cluster --name "$name" --kubeconfig /dev/null >/dev/null 2>&1 || "$bin/kwokctl" delete cluster --name "$name" || rc=$?
    # shellcheck disable=SC2086
    wait_exited $pids
    [ -d "$KWOK_WORKDIR/clusters/$name" ] || release_ports "$name"
    exit "$rc"
    ;;
  stop)
    pids=$(component_pids "$name")
    "$bin/kwokctl" --name "$name" stop cluster
    # shellcheck disable=SC2086
    wait_exited $pids
    ;;
  start) "$bin/kwokctl" --name "$name" start cluster ;;
  kwokctl) shift 2; "$bin/kwokctl" --name "$name" "$@" ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
