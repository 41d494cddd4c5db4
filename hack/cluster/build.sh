#!/usr/bin/env bash
# Builds the pinned upstream cluster binaries (see DESIGN.md section 9).  Usage: build.sh [MINOR]
#   1.34 (default, what CI runs): Kubernetes and etcd pinned in go.mod here, built into bin/
#   1.37: pinned in 1.37/go.mod, built into bin/1.37/ (Kubernetes and etcd only; kwok is shared)
# kwok is pinned below. Called by `make cluster` (K8S_VERSION=...), which reruns it only when that
# version's go.mod, go.sum or this file change; unchanged binaries are not rewritten (go build skips them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/bin"
DEFAULT_MINOR=1.34
KWOK_VERSION=v0.8.0
minor=${1:-$DEFAULT_MINOR}
if [ "$minor" = "$DEFAULT_MINOR" ]; then module="$here"; out="$bin"; else module="$here/$minor"; out="$bin/$minor"; fi
[ -f "$module/go.mod" ] || { echo "build.sh: Kubernetes $minor is not pinned (no $module/go.mod)" >&2; exit 2; }
mkdir -p "$out"
export CGO_ENABLED=0
cd "$module"
KUBE_VERSION=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
kminor=${KUBE_VERSION#v1.}; kminor=${kminor%%.*}

stamp="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kminor"
stamp="$stamp -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$kminor"
stamp="$stamp -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitTreeState=clean"

step() { printf '==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
go mod download
step "Kubernetes $KUBE_VERSION into ${out#"$root/"}/: kubectl, etcd, etcdctl (seconds when cached, about a minute cold)"
go build -trimpath -ldflags "$stamp" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -o "$out/etcd" go.etcd.io/etcd/server/v3
go build -trimpath -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3
step "kube-apiserver, kube-controller-manager, kube-scheduler (about 5 minutes cold on 2 cores)"
go build -trimpath -ldflags "$stamp" -o "$out/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
step "kwok and kwokctl $KWOK_VERSION into bin/ (about a minute cold)"
GOBIN="$bin" GOFLAGS=-trimpath go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
step "done: $(cd "$out" && ls | tr '\n' ' ')"
