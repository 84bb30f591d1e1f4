#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go modules pinned in
# test/controlplane/{k8s,etcd}/go.mod into a cache folder named by their versions, and prints
# that folder. Does nothing when the binaries are already there. Never writes into the repo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }
k8s_version=$(module_version k8s k8s.io/kubernetes)
etcd_version=$(module_version etcd go.etcd.io/etcd/server/v3)
go_version=$(go env GOVERSION)
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}
out="$cache_root/controlplane-k8s-$k8s_version-etcd-$etcd_version-$go_version"

if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/etcd" ]] \
   && grep -qx "Kubernetes $k8s_version" <<<"$("$out/kube-apiserver" --version 2>/dev/null)"; then
  echo "$out"; exit 0
fi

minor=$(echo "$k8s_version" | cut -d. -f2)
tmp="$out.partial.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "building control plane ($k8s_version, etcd $etcd_version) into $out; first build takes 10-20 min" >&2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitTreeState=clean"
(cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager) >&2
(cd "$here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3) >&2
mkdir -p "$cache_root"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
