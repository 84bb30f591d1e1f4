#!/usr/bin/env bash
# Builds the real node's binaries — kubelet, kube-scheduler and kube-proxy from the Kubernetes module
# pinned in test/controlplane/k8s/go.mod, the pause (sandbox) binary from that module's
# build/pause/linux/pause.c, and CoreDNS from the module pinned in test/controlplane/coredns/go.mod —
# into cache folders named by their versions (node-k8s-<k8s>-<go>, node-coredns-<coredns>-<go>), and
# prints those two folders, one a line. CoreDNS has a folder of its own so a new CoreDNS pin does not
# rebuild the kubelet, nor a new Kubernetes pin CoreDNS. Separate from build-binaries.sh so the
# control plane's cache is unaffected. Never writes into the repo.
# With --check, builds nothing: exits 0 when all are cached, 1 when some would be built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s_version=$(cd "$here/k8s" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_dir=$(cd "$here/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
coredns_version=$(cd "$here/coredns" && go list -m -f '{{.Version}}' github.com/coredns/coredns)
go_version=$(go env GOVERSION)
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}
out="$cache_root/node-k8s-$k8s_version-$go_version"
dns_out="$cache_root/node-coredns-$coredns_version-$go_version"
bins=(kubelet kube-scheduler kube-proxy pause)

k8s_ok=1
for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || k8s_ok=0; done
# Versions are read whole before matching: `cmd | grep -q` under pipefail fails now and then, grep
# exiting at its match before cmd's next line, which then dies of SIGPIPE (coredns prints two lines).
if [[ $k8s_ok == 1 ]] && ! grep -qx "Kubernetes $k8s_version" <<<"$("$out/kubelet" --version 2>/dev/null)"; then k8s_ok=0; fi
dns_ok=0
# `coredns -version` prints "CoreDNS-1.15.0" then the platform and commit.
if [[ -x "$dns_out/coredns" ]] && grep -qx "CoreDNS-${coredns_version#v}" <<<"$("$dns_out/coredns" -version 2>/dev/null)"; then dns_ok=1; fi
if [[ $k8s_ok == 1 && $dns_ok == 1 ]]; then
  echo "$out"; echo "$dns_out"; exit 0
fi
# --check: only say (by the exit code, and on stderr which) whether they are built.
if [[ ${1:-} == --check ]]; then
  [[ $k8s_ok == 1 ]] || echo "no kubelet, kube-scheduler, kube-proxy and pause of $k8s_version in $out" >&2
  [[ $dns_ok == 1 ]] || echo "no CoreDNS $coredns_version in $dns_out" >&2
  exit 1
fi
mkdir -p "$cache_root"

if [[ $k8s_ok == 0 ]]; then
  minor=$(echo "$k8s_version" | cut -d. -f2)
  tmp="$out.partial.$$"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  echo "building node binaries ($k8s_version: kubelet, kube-scheduler, kube-proxy, pause) into $out; first build takes a few minutes" >&2
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy) >&2
  gcc -Os -static -DVERSION="$k8s_version" -o "$tmp/pause" "$k8s_dir/build/pause/linux/pause.c" >&2
  rm -rf "$out"
  mv "$tmp" "$out"
  trap - EXIT
fi

if [[ $dns_ok == 0 ]]; then
  tmp="$dns_out.partial.$$"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  echo "building CoreDNS $coredns_version into $dns_out; first build takes a few minutes" >&2
  (cd "$here/coredns" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/coredns" github.com/coredns/coredns) >&2
  rm -rf "$dns_out"
  mv "$tmp" "$dns_out"
  trap - EXIT
fi
echo "$out"
echo "$dns_out"
