"""DeepSpec's training log lines and evaluation table, on realistic sample text."""

import pytest

from specops_runtime.adapters.deepspec.evaltable import parse_eval_tables
from specops_runtime.adapters.deepspec.logparse import TrainProgress, parse_checkpoint_line, parse_train_line

TRAIN_LOG = """\
{"project_name": "specops", "exp_name": "draft", "seed": 42}
Training from scratch.
***** Running training *****
  Max train steps = 3000
2026-07-01 10:00:00 epoch=0 step=10/3000 loss=7.8125 | elapsed=1.50min | remaining=448.50min
2026-07-01 10:01:30 epoch=0 step=20/3000 loss=6.2031 | elapsed=3.00min | remaining=447.00min
Saved checkpoint to /mnt/specops/pvc/work/out/checkpoints/specops/draft/step_20
2026-07-01 10:03:00 epoch=1 step=30/3000 loss=5.5e-1 | elapsed=4.50min | remaining=445.50min
"""


def test_parse_train_line():
    p = parse_train_line(
        "2026-07-01 10:00:00 epoch=2 step=120/3000 loss=3.2500 | elapsed=12.00min | remaining=288.00min"
    )
    assert p == {
        "epoch": 2.0,
        "step": 120,
        "total": 3000,
        "loss": 3.25,
        "elapsedSeconds": 720.0,
        "etaSeconds": 17280.0,
    }
    assert parse_train_line("Saved checkpoint to /x/step_3") is None
    assert parse_train_line("epoch=0 step=1/2 loss=nan")["step"] == 1


def test_train_progress_feeds_report_with_throughput_and_checkpoint():
    reports = []
    tp = TrainProgress(lambda **f: reports.append(f))
    for line in TRAIN_LOG.splitlines():
        tp(line)
    steps = [r for r in reports if "step" in r]
    assert [r["step"] for r in steps] == [10, 20, 30]
    assert steps[1]["throughput"] == pytest.approx(10 / 90) and steps[1]["throughputUnit"] == "steps/s"
    assert steps[2]["loss"] == pytest.approx(0.55) and steps[2]["epoch"] == 1.0
    assert tp.checkpoint == {
        "path": "/mnt/specops/pvc/work/out/checkpoints/specops/draft/step_20",
        "step": 20,
    }
    assert parse_checkpoint_line("Saved checkpoint to /a/b/step_latest.")["step"] is None


EVAL_OUTPUT = """\
{
    "target_name_or_path": "Qwen/Qwen3-8B"
}
gsm8k: 100%|##########| 500/500 [10:00<00:00]
+---------------+--------------+-------------+----------+------------+-------------+---------+------------+--------+----------+---------------+---------------+---------------+
|    dataset    | target_model | draft_model | #propose | accept_len | verify_rate | samples | out_tokens | tok/s  | verify/s | accept_rate@0 | accept_rate@1 | accept_rate@2 |
+---------------+--------------+-------------+----------+------------+-------------+---------+------------+--------+----------+---------------+---------------+---------------+
|     gsm8k     |   Qwen3-8B   |   step_20   |  6.00+1  |    6.17    |    0.8814   |   500   |   151234   | 210.50 |  34.12   |     0.9712    |     0.9301    |     0.8899    |
|    mt-bench   |   Qwen3-8B   |   step_20   |  6.00+1  |    3.72    |    0.5314   |    80   |   40210    | 150.25 |  40.39   |     0.8101    |     0.6512    |       -       |
+---------------+--------------+-------------+----------+------------+-------------+---------+------------+--------+----------+---------------+---------------+---------------+
"""

OLD_LAYOUT = """\
+---------+--------------+-------------+----------+------------+-------------+---------------+---------------+
| dataset | target_model | draft_model | #propose | accept_len | verify_rate | accept_rate@0 | accept_rate@1 |
+---------+--------------+-------------+----------+------------+-------------+---------------+---------------+
| math500 |   Qwen3-4B   |  dflash_b7  |  6.00+1  |    4.85    |    0.6929   |     0.9000    |     0.8000    |
+---------+--------------+-------------+----------+------------+-------------+---------------+---------------+
"""


def test_parse_eval_table():
    rows = parse_eval_tables(EVAL_OUTPUT)
    assert rows[0] == {
        "name": "gsm8k",
        "tau": 6.17,
        "samples": 500,
        "verifyRate": 0.8814,
        "acceptanceByPosition": [0.9712, 0.9301, 0.8899],
        "tokensPerSecond": 210.5,
    }
    assert rows[1]["name"] == "mt-bench" and rows[1]["acceptanceByPosition"] == [0.8101, 0.6512]


def test_parse_eval_table_older_layout_and_tabs():
    assert parse_eval_tables(OLD_LAYOUT) == [
        {"name": "math500", "tau": 4.85, "verifyRate": 0.6929, "acceptanceByPosition": [0.9, 0.8]}
    ]
    tabs = "dataset\ttarget_model\tdraft_model\t#propose\taccept_len\tverify_rate\naime25\tQ\tD\t6.00+1\t5.01\t0.7157\n"
    assert parse_eval_tables(tabs)[0]["tau"] == 5.01
    assert parse_eval_tables("no table here\n| a | b |\n") == []
