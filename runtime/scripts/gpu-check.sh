#!/usr/bin/env bash
# The CUDA path on one NVIDIA GPU with no network, in under 5 minutes:
#   1. SPS(B) for randomly initialised Qwen3-4B- and Qwen3-8B-shaped targets (bf16; B = 1..512 at
#      contexts 512/2048/8192 and concurrencies 1/16/64), written as the measured SPS table the
#      fleet simulator loads: $OUT/sps-table.json, rewritten after every row (a cut-off run keeps
#      what it measured; "complete" says whether it finished). Labelled "eager PyTorch".
#   2. The reference benchmark (tiny models, whole pipeline) on CUDA: $OUT/bench.log.
#   3. $OUT/gpu-check.json: what ran, exit codes, seconds, the BENCH line.
# Usage: runtime/scripts/gpu-check.sh [--tiny] [OUT_DIR]
#   --tiny: the same script on a CPU in seconds (tiny shape, no benchmark): proves the script and
#   the JSON format (runtime/tests/reference/test_sps_table.py runs it).
# Env: PYTHON (default python3), OUT (default /tmp/specops-gpu-check), SPS_BUDGET_SECONDS (150),
#      BENCH_TIMEOUT_SECONDS (100).
set -uo pipefail

TINY=0
if [[ "${1:-}" == "--tiny" ]]; then TINY=1; shift; fi
OUT_DIR="${1:-${OUT:-/tmp/specops-gpu-check}}"
PY="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$ROOT/runtime${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
started=$(date +%s)

{
  echo "date: $(date -u +%FT%TZ)"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  # (the table itself records torch / transformers versions; this costs an extra import on a GPU box only)
  [[ $TINY == 1 ]] || "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())'
} >"$OUT_DIR/env.txt" 2>&1
cat "$OUT_DIR/env.txt"

if [[ $TINY == 1 ]]; then
  sps_args=(--tiny --device cpu --budget-seconds 60)
  sps_timeout=120
else
  sps_args=(--device cuda --budget-seconds "${SPS_BUDGET_SECONDS:-150}")
  sps_timeout=$(( ${SPS_BUDGET_SECONDS:-150} + 30 ))
fi
sps_start=$(date +%s)
timeout "$sps_timeout" "$PY" -m specops_runtime.reference.sps_table --out "$OUT_DIR/sps-table.json" "${sps_args[@]}" \
  2>&1 | tee "$OUT_DIR/sps.log"
sps_rc=${PIPESTATUS[0]}
sps_seconds=$(( $(date +%s) - sps_start ))

bench_rc=skipped
bench_line=""
bench_seconds=0
if [[ $TINY == 0 ]]; then
  bench_start=$(date +%s)
  SPECOPS_DEVICE=cuda timeout "${BENCH_TIMEOUT_SECONDS:-100}" "$PY" -m specops_runtime.reference.bench \
    --samples 150 --epochs 3 --eval-samples 6 --max-new-tokens 32 --work-dir "/tmp/specops-bench" \
    2>&1 | tee "$OUT_DIR/bench.log"
  bench_rc=${PIPESTATUS[0]}
  bench_seconds=$(( $(date +%s) - bench_start ))
  bench_line=$(grep '^BENCH ' "$OUT_DIR/bench.log" | tail -1 || true)
fi

"$PY" - "$OUT_DIR" "$sps_rc" "$sps_seconds" "$bench_rc" "$bench_seconds" "$bench_line" "$(( $(date +%s) - started ))" <<'PYEOF'
import json, sys
from pathlib import Path
out, sps_rc, sps_s, bench_rc, bench_s, bench_line, total = sys.argv[1:]
table = Path(out, "sps-table.json")
doc = json.loads(table.read_text()) if table.exists() else {}
summary = {
    "sps": {"exitCode": int(sps_rc), "seconds": int(sps_s), "rows": len(doc.get("rows", [])),
            "complete": doc.get("complete", False), "gpuProduct": doc.get("gpuProduct"), "file": "sps-table.json"},
    "bench": {"exitCode": bench_rc if bench_rc == "skipped" else int(bench_rc), "seconds": int(bench_s),
              "line": bench_line or None, "file": "bench.log"},
    "totalSeconds": int(total),
}
Path(out, "gpu-check.json").write_text(json.dumps(summary, indent=1) + "\n")
print("GPU-CHECK " + json.dumps(summary))
PYEOF
[[ $sps_rc == 0 ]]
