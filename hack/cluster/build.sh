#!/usr/bin/env bash
# Builds the pinned upstream cluster binaries into bin/ (see DESIGN.md section 9).
# Pins: Kubernetes and etcd in go.mod here; kwok below. Called by `make cluster`,
# which reruns it only when go.mod, go.sum or this file change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/bin"
KUBE_VERSION=v1.34.4
KWOK_VERSION=v0.8.0
mkdir -p "$bin"
export CGO_ENABLED=0

stamp="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"
stamp="$stamp -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=34"
stamp="$stamp -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitTreeState=clean"

step() { printf '==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
cd "$here"
go mod download
step "kubectl, etcd, etcdctl (seconds when cached, about a minute cold)"
go build -trimpath -ldflags "$stamp" -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3
go build -trimpath -o "$bin/etcdctl" go.etcd.io/etcd/etcdctl/v3
step "kube-apiserver, kube-controller-manager, kube-scheduler (about 5 minutes cold on 2 cores)"
go build -trimpath -ldflags "$stamp" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
step "kwok and kwokctl $KWOK_VERSION (about a minute cold)"
GOBIN="$bin" GOFLAGS=-trimpath go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
step "done: $(cd "$bin" && ls | tr '\n' ' ')"
