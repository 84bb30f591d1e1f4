"""runtime/scripts/gpu-check.sh and the measured SPS table it writes, on a CPU (--tiny): the script
runs end to end and the JSON has the format the fleet simulator loads (runtime/README.md). The GPU
figures themselves come only from a run on a GPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specops_runtime.reference import sps_table

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check.sh"


def test_gpu_check_tiny_writes_the_sps_table_and_a_summary(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--tiny", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "sps-table.json").read_text())
    assert doc["format"] == "specops.sps-table/v1" and doc["label"] == "eager PyTorch"
    assert doc["complete"] is True and doc["dtype"] == "float32" and doc["gpuProduct"]
    assert [m["name"] for m in doc["models"]] == ["tiny"] and doc["models"][0]["parameters"] > 0
    rows = doc["rows"]
    assert {(r["context"], r["concurrency"]) for r in rows} == {(16, 1), (16, 2), (32, 1), (32, 2)}
    for r in rows:
        assert r["batch"] >= r["concurrency"] and r["batch"] % r["concurrency"] == 0
        assert r["tokens_per_request"] == r["batch"] // r["concurrency"]
        assert r["steps_per_second"] > 0 and r["step_time_ms"] > 0
        assert r["tokens_per_second"] == pytest.approx(r["batch"] * r["steps_per_second"], rel=0.01)
    assert sorted(r["batch"] for r in rows if (r["context"], r["concurrency"]) == (16, 1)) == [1, 2, 4]
    summary = json.loads((tmp_path / "gpu-check.json").read_text())
    assert summary["sps"]["rows"] == len(rows) and summary["bench"]["exitCode"] == "skipped"
    assert "GPU-CHECK " in proc.stdout


def test_a_cut_off_run_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    real = sps_table.Profiler.step_times
    calls = []

    def interrupted(self, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed mid-way
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sps_table.Profiler, "step_times", interrupted)
    out = tmp_path / "sps.json"
    with pytest.raises(KeyboardInterrupt):
        sps_table.run(sps_table.parse_args(["--tiny", "--device", "cpu", "--out", str(out)]))
    doc = json.loads(out.read_text())
    assert len(doc["rows"]) == 3 and doc["complete"] is False
    assert not (tmp_path / "sps.json.tmp").exists()


def test_batches_split_evenly_over_requests():
    assert sps_table.batches(1, 512) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert sps_table.batches(16, 512) == [16, 32, 64, 128, 256, 512]
    assert sps_table.batches(64, 32) == []


def test_real_shapes_match_the_published_parameter_counts():
    """Qwen3-4B has about 4.0e9 parameters (tied embeddings), Qwen3-8B about 8.2e9."""

    def count(shape: dict) -> int:
        h, i, n, v = (
            shape["hidden_size"],
            shape["intermediate_size"],
            shape["num_hidden_layers"],
            shape["vocab_size"],
        )
        q, kv = (
            shape["num_attention_heads"] * shape["head_dim"],
            shape["num_key_value_heads"] * shape["head_dim"],
        )
        layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h + 2 * shape["head_dim"]
        return n * layer + v * h * (1 if shape["tie_word_embeddings"] else 2) + h

    assert count(sps_table.SHAPES["qwen3-4b"]) == pytest.approx(4.02e9, rel=0.01)
    assert count(sps_table.SHAPES["qwen3-8b"]) == pytest.approx(8.19e9, rel=0.01)
    assert sps_table.kv_bytes_per_token(sps_table.SHAPES["qwen3-8b"], __import__("torch").bfloat16) == 147456
