#!/usr/bin/env bash
# Reports what this project keeps on disk, removes what earlier runs left behind, and, where the disk
# is still short of what a run needs, drops caches that can be rebuilt, cheapest to rebuild first.
# CI calls it before anything else: a warm machine keeps every run's leftovers (stopped containers,
# the scratch of killed builds and tests: a killed PyTorch layer's build leaves 14 GB), and a full disk fails a
# run minutes in with an error that names no cause (pip: "[Errno 28] No space left on device").
#
#   scripts/reclaim-disk.sh            # report, reclaim leftovers, then caches while short of space
#   scripts/reclaim-disk.sh --report   # report only
#
# SPECOPS_MIN_FREE_GB (default 20) is the space a warm run needs: the venv (PyPI's torch brings its
# CUDA libraries, about 6 GB), images rebuilt from a changed layer and their import into the real
# node's containerd (each new layer twice), the tests' scratch. Where not even the caches free that
# much, it says so with the report and exits 0: the run may still fit, and fails where it does not.
set -uo pipefail
min_free_gb=${SPECOPS_MIN_FREE_GB:-20}
cache_root=${SPECOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/specops}
user_cache=${XDG_CACHE_HOME:-$HOME/.cache}
tmp_root=${TMPDIR:-/tmp}
# Scratch folders older than this are no test's that still runs: a test file takes minutes.
stale_minutes=${SPECOPS_STALE_SCRATCH_MINUTES:-180}
podman_tmp=${SPECOPS_PODMAN_TMP:-/var/tmp}
# SPECOPS_RECLAIM_PODMAN=0 leaves podman's store alone (its tests run on a developer's machine).
reclaim_podman=${SPECOPS_RECLAIM_PODMAN:-1}

log() { echo "reclaim-disk: $*" >&2; }
free_gb() { # the space free to this user under a path, in whole GB
  local dir=$1
  while [ ! -e "$dir" ]; do dir=$(dirname "$dir"); done
  df -P -B1G "$dir" | awk 'NR == 2 { print $4 }'
}
# A size, or "?" when du takes too long (a large tree on a slow disk should not stall CI).
size_of() { timeout 60 du -sh "$1" 2>/dev/null | cut -f1 || echo "?"; }
have() { command -v "$1" >/dev/null; }
podman_ok() { [ "$reclaim_podman" = 1 ] && have podman && timeout 60 podman info >/dev/null 2>&1; }

report() {
  log "free: $(free_gb "$cache_root") GB under $cache_root, $(free_gb "$tmp_root") GB under $tmp_root, $(free_gb "$PWD") GB under $PWD (a run needs about $min_free_gb GB)"
  local path
  for path in "$cache_root"/* "$user_cache/pip" "$(have go && go env GOCACHE)" "$(have go && go env GOMODCACHE)" "$HOME/.npm"; do
    [ -n "$path" ] && [ -e "$path" ] && log "  $(size_of "$path")	$path"
  done
  local scratch
  scratch=$(find "$tmp_root" -maxdepth 1 -name 'specops-*' 2>/dev/null | wc -l)
  [ "$scratch" -gt 0 ] && log "  $scratch scratch folder(s) $tmp_root/specops-*"
  if podman_ok; then
    timeout 120 podman system df 2>/dev/null | sed 's/^/reclaim-disk:   podman: /' >&2
  fi
}

store="$cache_root/node-containerd"
# The real node's containerd store, unless a live test process holds it (test/controlplane/real-node.ts).
store_idle() { [ -d "$store" ] && ! { [ -f "$store/owner.pid" ] && kill -0 "$(cat "$store/owner.pid")" 2>/dev/null; }; }
# Mounts under a folder (a kubelet's pod volumes, containerd's snapshots), deepest first.
unmount_under() { grep -o " $1/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null; done; }

# What no later run reads: nothing here is a cache.
reclaim_leftovers() {
  local dir pid
  # A build folder whose builder is gone (the build scripts stage into <out>.partial.<pid>).
  for dir in "$cache_root"/*.partial.*; do
    [ -d "$dir" ] || continue
    pid=${dir##*.partial.}
    if ! kill -0 "$pid" 2>/dev/null; then
      log "removing $dir (its build, process $pid, is gone)"
      rm -rf "$dir"
    fi
  done
  # The real node's half-done image imports (test/controlplane/real-node.ts), unless its store is in use.
  if store_idle; then
    find "$store" -maxdepth 1 -name 'import-*' -type d -exec rm -rf {} + 2>/dev/null
  fi
  # The tests' scratch folders (control planes, kubelets, helm, faults) left by killed runs.
  local stale
  stale=$(find "$tmp_root" -maxdepth 1 -name 'specops-*' -mmin +"$stale_minutes" 2>/dev/null)
  if [ -n "$stale" ]; then
    log "removing $(wc -l <<<"$stale") scratch folder(s) older than $stale_minutes min under $tmp_root"
    # A stale kubelet folder can hold mounts (pod volumes): unmount before removing.
    while read -r dir; do
      unmount_under "$dir"
      rm -rf "$dir" 2>/dev/null
    done <<<"$stale"
  fi
  # Go's work folders of a killed build (a control-plane build's reach a few GB).
  find "$tmp_root" -maxdepth 1 -name 'go-build*' -mmin +"$stale_minutes" -exec rm -rf {} + 2>/dev/null
  # podman's and buildah's own scratch (a layer's tar and its copy: 7 GB each for the PyTorch layer)
  # left by a killed build.
  find "$podman_tmp" -maxdepth 1 \( -name 'buildah*' -o -name 'container_images_*' -o -name 'storage*' \) \
    -mmin +"$stale_minutes" -exec rm -rf {} + 2>/dev/null
  # Containers that builds and tests left stopped (each keeps its writable layer).
  podman_ok && timeout 300 podman container prune -f --filter "until=${stale_minutes}m" >/dev/null 2>&1
}

short() { [ "$(free_gb "$cache_root")" -lt "$min_free_gb" ] || [ "$(free_gb "$PWD")" -lt "$min_free_gb" ]; }

# Caches that a run rebuilds, cheapest to rebuild first; each only while space is still short.
reclaim_caches() {
  if short && [ -d "$user_cache/pip" ]; then
    log "short of space: removing pip's cache ($(size_of "$user_cache/pip"); the venv downloads again)"
    rm -rf "$user_cache/pip"
  fi
  if short && [ -d "$HOME/.npm/_cacache" ]; then
    log "short of space: removing npm's cache ($(size_of "$HOME/.npm/_cacache"))"
    rm -rf "$HOME/.npm/_cacache"
  fi
  if short && have go && [ -d "$(go env GOCACHE)" ]; then
    log "short of space: removing Go's build cache ($(size_of "$(go env GOCACHE)"); the binaries built are kept)"
    go clean -cache 2>/dev/null
  fi
  if short && have go && [ -d "$(go env GOMODCACHE)" ]; then
    log "short of space: removing Go's module cache ($(size_of "$(go env GOMODCACHE)"); downloaded again only for a pin not built yet)"
    go clean -modcache 2>/dev/null
  fi
  # Untagged images: old versions a rebuild left (scripts/images/build.sh removes the one it
  # replaces; not one whose children were still there) and the stages of multi-stage builds, whose
  # rebuild costs minutes (the tiny target's training). Repeated: a removed image's parent may be
  # left childless.
  local i removed
  for i in 1 2 3 4 5 6 7 8; do
    short && podman_ok || break
    removed=$(timeout 300 podman image prune -f 2>/dev/null | grep -c . || true)
    [ "$removed" -gt 0 ] || break
    log "short of space: removed $removed untagged podman image(s) (pass $i)"
  done
  if short && podman_ok; then
    log "short of space: removing podman images no container uses (the images rebuild, the bases from the cached tarball)"
    timeout 600 podman image prune -a -f >/dev/null 2>&1
  fi
  if short && store_idle; then
    log "short of space: removing the real node's containerd store ($(size_of "$store"); the images are imported again)"
    unmount_under "$store"
    rm -rf "$store"
  fi
}

report
[ "${1:-}" = --report ] && exit 0
reclaim_leftovers
reclaim_caches
if short; then
  log "still under $min_free_gb GB free after reclaiming what this project keeps:"
  report
  log "the run goes on, and may fail where the disk fills: what else uses it is not this project's"
  exit 0
fi
log "$(free_gb "$cache_root") GB free"
