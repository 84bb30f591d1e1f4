#!/usr/bin/env bash
# Builds the object stores the tests run against from the Go modules pinned in
# test/objectstore/{minio,fakegcs}/go.mod (MinIO: a real S3 server; fake-gcs-server: the GCS
# emulator the Google client libraries test against), each into a cache folder named by its
# version, and prints two lines: `minio <path>` and `fake-gcs-server <path>`. Does nothing for a
# binary already there. Never writes into the repo. Arguments pick servers (default both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }
go_version=$(go env GOVERSION)
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}

# build <wrapper folder> <module> <package> <binary name>
build() {
  local dir=$1 module=$2 package=$3 name=$4 version out tmp started
  version=$(module_version "$dir" "$module")
  out="$cache_root/$name-$version-$go_version"
  if [[ ! -x "$out/$name" ]]; then
    tmp="$out.partial.$$"
    mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    echo "building $name $version into $out" >&2
    started=$SECONDS
    (cd "$here/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/$name" "$package") >&2
    echo "built $name in $((SECONDS - started))s" >&2
    mkdir -p "$cache_root"
    rm -rf "$out"
    mv "$tmp" "$out"
    trap - EXIT
  fi
  echo "$name $out/$name"
}

# Arguments name the servers wanted (minio, fake-gcs-server); none means both.
wanted=" ${*:-minio fake-gcs-server} "
[[ $wanted == *" minio "* ]] && build minio github.com/minio/minio github.com/minio/minio minio
[[ $wanted == *" fake-gcs-server "* ]] && build fakegcs github.com/fsouza/fake-gcs-server github.com/fsouza/fake-gcs-server fake-gcs-server
exit 0
