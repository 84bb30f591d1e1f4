#!/usr/bin/env bash
# Create or update runtime/.venv with the pinned runtime requirements: the reference backend's
# (requirements-reference.txt), the task agent's (requirements-agent.txt: jsonschema) and the
# development tools the test command runs (requirements-dev.txt: ruff).
# Idempotent: a stamp file holding the hash of both files (and the Python version) skips the
# (large) reinstall.
set -euo pipefail

RUNTIME_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPECOPS_VENV:-$RUNTIME_DIR/.venv}"
REQS=("$RUNTIME_DIR/requirements-reference.txt" "$RUNTIME_DIR/requirements-agent.txt" "$RUNTIME_DIR/requirements-dev.txt")
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"

want="$( (cat "${REQS[@]}"; "$PYTHON" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup-venv: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup-venv: $VENV is up to date"
else
  echo "setup-venv: installing ${REQS[*]}"
  "$VENV/bin/python" -m pip install --upgrade --quiet pip
  args=()
  for reqs in "${REQS[@]}"; do args+=(-r "$reqs"); done
  "$VENV/bin/python" -m pip install --quiet "${args[@]}"
  rm -f "$VENV/.requirements-reference.sha256"  # the stamp of older versions of this script
  echo "$want" > "$STAMP"
  echo "setup-venv: done"
fi

# Make `import specops_runtime` work from this checkout (a .pth file: no build backend needed).
site_dir="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$RUNTIME_DIR" > "$site_dir/specops-runtime.pth"
