#!/usr/bin/env bash
# Builds helm from the module pinned in test/helm/go.mod (helm.sh/helm/v4, cmd/helm) into a cache
# folder named by its version and Go's, and prints the binary's path. Does nothing when it is there.
# Never writes into the repo. The demo and the chart's real-node test install charts/specops with it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(cd "$here" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
go_version=$(go env GOVERSION)
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}
out="$cache_root/helm-$version-$go_version"

if [[ -x "$out/helm" ]] && grep -qx "$version" <<<"$("$out/helm" version --template '{{.Version}}' 2>/dev/null)"; then
  echo "$out/helm"; exit 0
fi
# --check: only say (by the exit code) whether it is built.
[[ ${1:-} == --check ]] && exit 1

tmp="$out.partial.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "building helm $version into $out; the first build takes a few minutes" >&2
started=$SECONDS
# The version stamp upstream's Makefile sets (else `helm version` says only the minor release).
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$tmp/helm" helm.sh/helm/v4/cmd/helm) >&2
echo "built helm $version in $((SECONDS - started))s" >&2
mkdir -p "$cache_root"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out/helm"
