#!/usr/bin/env bash
# Builds the real node's binaries — kubelet, kube-scheduler and kube-proxy from the Kubernetes module
# pinned in test/controlplane/k8s/go.mod, and the pause (sandbox) binary from that module's
# build/pause/linux/pause.c — into a cache folder named by their versions, and prints that folder.
# Separate from build-binaries.sh so the control plane's cache is unaffected. Never writes into the repo.
# With --check, builds nothing: exits 0 when the binaries are cached, 1 when they would be built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s_version=$(cd "$here/k8s" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_dir=$(cd "$here/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
go_version=$(go env GOVERSION)
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}
out="$cache_root/node-k8s-$k8s_version-$go_version"
bins=(kubelet kube-scheduler kube-proxy pause)

ok=1
for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || ok=0; done
if [[ $ok == 1 ]] && "$out/kubelet" --version 2>/dev/null | grep -qx "Kubernetes $k8s_version"; then
  echo "$out"; exit 0
fi
# --check: only say (by the exit code) whether they are built.
[[ ${1:-} == --check ]] && exit 1

minor=$(echo "$k8s_version" | cut -d. -f2)
tmp="$out.partial.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "building node binaries ($k8s_version: kubelet, kube-scheduler, kube-proxy, pause) into $out; first build takes a few minutes" >&2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitTreeState=clean"
(cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy) >&2
gcc -Os -static -DVERSION="$k8s_version" -o "$tmp/pause" "$k8s_dir/build/pause/linux/pause.c" >&2
mkdir -p "$cache_root"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
