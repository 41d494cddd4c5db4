#!/usr/bin/env bash
# Starts and deletes local clusters (upstream binaries in bin/, run by kwokctl's binary runtime).
#   cluster.sh up NAME KUBECONFIG [extra kwokctl create args...]
#   cluster.sh down NAME
#   cluster.sh stop|start NAME        (API-server restart on the same data and ports)
#   cluster.sh kwokctl NAME args...   (any kwokctl command for that cluster)
# Everything binds 127.0.0.1; clusters live under .dev/kwok; ~/.kube/config is never touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$root/.dev/kwok}"
mkdir -p "$KWOK_WORKDIR"
config="$KWOK_WORKDIR/kwokctl.yaml"

write_config() {
  cat > "$config" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kwokControllerBinary: $bin/kwok
  etcdBinary: $bin/etcd
  etcdctlBinary: $bin/etcdctl
  kubectlBinary: $bin/kubectl
YAML
}

cmd=${1:-}; name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { sed -n '2,7p' "$0"; exit 2; }
case "$cmd" in
  up)
    kubeconfig=${3:?kubeconfig path}; shift 3
    write_config
    "$bin/kwokctl" create cluster --name "$name" --config "$config" --kubeconfig "$kubeconfig" --wait 2m "$@"
    ;;
  down)  "$bin/kwokctl" delete cluster --name "$name" --kubeconfig /dev/null >/dev/null 2>&1 || "$bin/kwokctl" delete cluster --name "$name" ;;
  stop)  "$bin/kwokctl" --name "$name" stop cluster ;;
  start) "$bin/kwokctl" --name "$name" start cluster ;;
  kwokctl) shift 2; "$bin/kwokctl" --name "$name" "$@" ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
