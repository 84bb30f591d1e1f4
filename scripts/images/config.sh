# Names and pins shared by scripts/images/build.sh and the image tests (test/images/podman.ts reads
# the *_IMAGE values from here). Sourced, not run.
IMAGES_CACHE="${SPECOPS_IMAGES_CACHE:-$HOME/.cache/specops/images}"
DEBIAN_RELEASE=bookworm
DEBIAN_MIRROR="${SPECOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${SPECOPS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# What the debootstrap root filesystem holds beyond minbase; the Python and Node bases add theirs.
DEBIAN_PACKAGES="ca-certificates"
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
TORCH_VERSION=2.9.1
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
BASE_KEY=$(printf '%s\n' "$DEBIAN_RELEASE" "$DEBIAN_MIRROR" "$DEBIAN_PACKAGES" | sha256sum | cut -c1-12)
DEBIAN_BASE_IMAGE="localhost/specops-base/debian:$DEBIAN_RELEASE-$BASE_KEY"
PYTHON_BASE_IMAGE="localhost/specops-base/python:3.11-$DEBIAN_RELEASE-$BASE_KEY"
NODE_BASE_IMAGE="localhost/specops-base/node:$NODE_VERSION-$DEBIAN_RELEASE-$BASE_KEY"
OPERATOR_IMAGE=localhost/specops-operator:dev
REFERENCE_IMAGE=localhost/specops-runtime:reference
# The vllm and sglang targets' own layers (agent, user, entrypoint) built on a stand-in for the
# upstream engine images, which no registry here serves (scripts/images/engine-stand-in-base.Containerfile):
# the agent layer, without an engine.
ENGINE_STAND_IN_BASE_IMAGE="localhost/specops-base/engine-stand-in:$BASE_KEY"
VLLM_LAYER_IMAGE=localhost/specops-runtime:vllm-layer-on-stand-in
SGLANG_LAYER_IMAGE=localhost/specops-runtime:sglang-layer-on-stand-in
# podman's default ulimits can exceed a sandbox's hard limits, and runc fails to start a container
# then: ask for the hard open-files limit, and at most 32768 processes (higher values were refused
# here even below the hard limit).
_nofile=$(ulimit -Hn) _nproc=$(ulimit -Hu)
[ "$_nofile" = unlimited ] && _nofile=1048576
{ [ "$_nproc" = unlimited ] || [ "$_nproc" -gt 32768 ]; } && _nproc=32768
PODMAN_ULIMITS=(--ulimit "nofile=$_nofile:$_nofile" --ulimit "nproc=$_nproc:$_nproc")
unset _nofile _nproc
