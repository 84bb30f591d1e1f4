"""The termination message is valid JSON under 4096 bytes, keeping the verdict."""

import json

from specops_runtime.agent.termination import compact


def _result(n_tasks: int, message: str = "ok") -> dict:
    rows = [
        {
            "name": f"task-{i:03d}",
            "samples": 500,
            "tau": 3.0 + i / 100,
            "acceptanceByPosition": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
        }
        for i in range(n_tasks)
    ]
    return {
        "apiVersion": "runtime.specops.dev/v1",
        "kind": "Result",
        "taskKind": "eval",
        "backend": "deepspec",
        "status": "failed",
        "exitCode": 14,
        "reason": "gateFailed",
        "message": message,
        "startTime": "2026-11-28T00:00:00Z",
        "completionTime": "2026-11-28T01:00:00Z",
        "durationSeconds": 3600.0,
        "resultPath": "/out/result.json",
        "evaluation": {
            "results": rows,
            "summary": {"macroTau": 3.2, "samples": 500 * n_tasks},
            "gate": {"verdict": "Failed", "reasons": [f"task-{i}: tau low" for i in range(n_tasks)]},
        },
        "details": {"huge": "x" * 10000},
    }


def test_small_result_is_kept_whole_without_details():
    msg = json.loads(compact(_result(2)))
    assert "truncated" not in msg and "details" not in msg
    assert msg["evaluation"]["results"][1]["acceptanceByPosition"][0] == 0.9


def test_large_result_is_truncated_to_valid_json_keeping_the_summary():
    out = compact(_result(64))
    assert len(out.encode()) <= 4096
    msg = json.loads(out)
    assert msg["truncated"] is True
    assert msg["evaluation"]["summary"]["macroTau"] == 3.2
    assert msg["evaluation"]["gate"]["verdict"] == "Failed"
    assert msg["reason"] == "gateFailed"


def test_huge_multibyte_message_is_cut_not_the_json():
    out = compact(_result(1, message="é" * 20000))
    assert len(out.encode("utf-8")) <= 4096
    msg = json.loads(out)
    assert msg["message"].startswith("éé") and msg["message"].endswith("…")
    assert msg["exitCode"] == 14


def test_tiny_limit_falls_back_to_the_essentials():
    msg = json.loads(compact(_result(64), max_bytes=200))
    assert msg["exitCode"] == 14 and msg["truncated"] is True
