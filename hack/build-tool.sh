#!/usr/bin/env bash
# Builds one pinned Go tool into bin/ from its module under hack/ (the version is the one in that go.mod).
# Usage: hack/build-tool.sh helm|otelcol|oci-build|promtool. Called by make through a stamp (bin/.<tool>-stamp),
# so it reruns only when that module's go.mod or go.sum change; Go's build cache makes reruns cheap.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"
export CGO_ENABLED=0
tool=${1:?usage: hack/build-tool.sh helm|otelcol|oci-build|promtool}
case "$tool" in
  helm)     dir=helm;       pkg=helm.sh/helm/v3/cmd/helm;                             module=helm.sh/helm/v3 ;;
  otelcol)  dir=otelcol;    pkg=.;                                                    module=go.opentelemetry.io/collector/otelcol ;;
  oci-build) dir=image;     pkg=.;                                                    module=github.com/google/go-containerregistry ;;
  promtool) dir=prometheus; pkg=github.com/prometheus/prometheus/cmd/promtool;        module=github.com/prometheus/prometheus ;;
  *) echo "build-tool: unknown tool '$tool' (helm, otelcol, oci-build, promtool)" >&2; exit 2 ;;
esac
cd "$root/hack/$dir"
version=$(go list -m -f '{{.Version}}' "$module")
ldflags=""
case "$tool" in
  helm) ldflags="-X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean" ;;
  promtool) ldflags="-X github.com/prometheus/common/version.Version=${version#v}" ;;
esac
printf '==> [%s] %s %s (a minute or more cold on 2 cores, seconds when cached)\n' "$(date +%H:%M:%S)" "$tool" "$version"
tags=""
# promtool without the service-discovery plugins (AWS, Azure, GCE, ...): rule and metric checks need none.
[ "$tool" = promtool ] && tags=remove_all_sd
go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$bin/$tool" "$pkg"
