"""DeepSpec's training log lines and evaluation table, on realistic sample text."""

import json
from pathlib import Path

import pytest

from specops_runtime.adapters.deepspec.evaltable import EVAL_COLUMNS_NO_HEADER, parse_eval_tables
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


def _format(template: str, **values) -> str:
    """Fill DeepSpec's recorded f-string (training_logger._print_summary) with values."""
    body = template[2:-1]  # f'...'
    for expr, value in values.items():
        body = body.replace("{" + expr + "}", str(value))
    return body


def test_train_line_with_and_without_loss_from_the_recorded_format():
    log = FACTS["trainLog"]
    assert "{loss_text}" in log["line"]  # DeepSpec omits loss= when the summary has no train/loss
    common = dict(current_epoch=3, global_step=40, max_train_steps=900)
    line = _format(log["line"], loss_text="", **common)
    line = line.replace("{session_elapsed / 60:.1f}", "2.5").replace("{remaining_min:.1f}", "54.0")
    parsed = parse_train_line("2026-07-01 10:00:00 " + line)
    assert parsed == {"epoch": 3.0, "step": 40, "total": 900, "elapsedSeconds": 150.0, "etaSeconds": 3240.0}
    with_loss = line.replace("/900", "/900 loss=0.8125")
    assert parse_train_line(with_loss)["loss"] == 0.8125
    reports = []
    tp = TrainProgress(lambda **f: reports.append(f))
    tp(line)
    assert reports[0]["step"] == 40 and "loss" not in reports[0]


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


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVAL_STDOUT = (FIXTURES / "deepspec_eval_stdout.txt").read_text()
FACTS = json.loads((FIXTURES / "upstream_facts.json").read_text())["deepspec"]


def test_eval_fixture_has_deepspecs_recorded_columns():
    header = next(line for line in EVAL_STDOUT.splitlines() if "| dataset" in line)
    cells = [c.strip() for c in header.strip()[1:-1].split("|")]
    fixed = FACTS["eval"]["tableColumns"]
    assert cells[: len(fixed)] == fixed and tuple(fixed) == EVAL_COLUMNS_NO_HEADER
    template = FACTS["eval"]["positionColumn"]
    assert cells[len(fixed) :] == [template.format(i=i) for i in range(len(cells) - len(fixed))]


def test_parse_eval_table_real_layout():
    rows = parse_eval_tables(EVAL_STDOUT)
    assert rows == [
        {
            "name": "gsm8k",
            "tau": 6.17,
            "verifyRate": 0.8819,
            "acceptanceByPosition": [0.9712, 0.9301, 0.8899, 0.85, 0.8101, 0.7712, 0.7003],
        },
        {
            "name": "my-chat",
            "tau": 3.72,
            "verifyRate": 0.5725,
            "acceptanceByPosition": [0.8101, 0.6512, 0.5, 0.4, 0.33, 0.25],  # '-': no proposal reached @6
        },
    ]


def test_parse_headerless_per_dataset_rows_line_by_line():
    """What the agent sees while eval.py runs: one headerless row after each dataset."""
    lines = EVAL_STDOUT.splitlines()
    found = [r["name"] for line in lines for r in parse_eval_tables(line, columns=EVAL_COLUMNS_NO_HEADER)]
    assert found[:2] == ["gsm8k", "my-chat"]  # the per-dataset rows, before the final table
    assert parse_eval_tables(lines[-3]) == []  # without the header or columns, a lone row is not guessed
    assert parse_eval_tables("no table here\n| a | b |\n") == []
