#!/usr/bin/env bash
# Prints a digest of what runtime/Dockerfile's reference target copies from the repository (the
# agent's code, contract and requirements, and the Dockerfile itself), skipping what .dockerignore
# skips. build.sh labels the reference image with it (dev.specops.runtime-source), so a caller can
# tell whether an image was built from the sources in this checkout (scripts/demo.ts does).
set -euo pipefail
cd "$(dirname "$0")/../.."
find runtime/specops_runtime runtime/contract runtime/requirements-agent.txt runtime/requirements-reference.txt \
  runtime/Dockerfile -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*/.pytest_cache/*' -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32
