#!/usr/bin/env bash
# Builds the real Prometheus server the autoscaler's Prometheus-source tests run against, from the
# Go module pinned in test/prometheus/go.mod (github.com/prometheus/prometheus v0.316.0 is
# Prometheus 3.16.0), into a cache folder named by its version, and prints one line
# `prometheus <path>`. Does nothing for a binary already there. Never writes into the repo.
# Tags: remove_all_sd keeps only static, file and HTTP service discovery (the tests use static
# targets; the cloud SDs are most of the build); without builtinassets the web UI is left out
# (the binary serves the HTTP API, which is all the tests and the operator read).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=github.com/prometheus/prometheus
version=$(cd "$here" && go list -m -f '{{.Version}}' "$module")
go_version=$(go env GOVERSION)
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}
out="$cache_root/prometheus-$version-$go_version"
if [[ ! -x "$out/prometheus" ]]; then
  tmp="$out.partial.$$"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  echo "building prometheus $version into $out" >&2
  started=$SECONDS
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -tags remove_all_sd -ldflags "-s -w" \
    -o "$tmp/prometheus" "$module/cmd/prometheus") >&2
  echo "built prometheus in $((SECONDS - started))s" >&2
  mkdir -p "$cache_root"
  rm -rf "$out"
  mv "$tmp" "$out"
  trap - EXIT
fi
echo "prometheus $out/prometheus"
