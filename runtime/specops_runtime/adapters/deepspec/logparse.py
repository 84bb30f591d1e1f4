"""Parse DeepSpec's training stdout: `<ts> epoch=E step=S/MAX[ loss=L] | elapsed=Xmin | remaining=Ymin`
(deepspec/utils/training_logger.py prints loss= only when the summary has train/loss), plus
checkpoint and resume notices."""

from __future__ import annotations

import re

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
TRAIN_LINE = re.compile(
    rf"epoch=(?P<epoch>\d+(?:\.\d+)?)\s+step=(?P<step>\d+)/(?P<total>\d+)(?:\s+loss=(?P<loss>{_NUM}))?"
    rf"(?:.*?elapsed=(?P<elapsed>{_NUM})\s*min)?(?:.*?remaining=(?P<remaining>{_NUM})\s*min)?"
)
SAVED = re.compile(r"Saved checkpoint to (?P<path>\S+)")
RESUMED = re.compile(r"AUTO-RESUME from (?P<path>\S+)")
_STEP_DIR = re.compile(r"step_(\d+)/?$")


def parse_train_line(line: str) -> dict | None:
    m = TRAIN_LINE.search(line)
    if not m:
        return None
    out: dict = {
        "epoch": float(m["epoch"]),
        "step": int(m["step"]),
        "total": int(m["total"]),
    }
    if m["loss"] is not None:
        out["loss"] = float(m["loss"])
    if m["elapsed"] is not None:
        out["elapsedSeconds"] = float(m["elapsed"]) * 60
    if m["remaining"] is not None:
        out["etaSeconds"] = float(m["remaining"]) * 60
    return out


def parse_checkpoint_line(line: str) -> dict | None:
    m = SAVED.search(line)
    if not m:
        return None
    path = m["path"].rstrip(".,")
    step = _STEP_DIR.search(path)
    return {"path": path, "step": int(step.group(1)) if step else None}


def parse_resume_line(line: str) -> str | None:
    m = RESUMED.search(line)
    return m["path"].rstrip(".,") if m else None


class TrainProgress:
    """Feeds parsed lines to ctx.report and remembers what the result needs."""

    def __init__(self, report):
        self.report = report
        self.last: dict | None = None
        self.checkpoint: dict | None = None
        self.resumed_from: str | None = None
        self._prev: tuple[int, float] | None = None

    def __call__(self, line: str) -> None:
        parsed = parse_train_line(line)
        if parsed:
            fields = {k: parsed[k] for k in ("epoch", "step", "total", "loss") if k in parsed}
            if "etaSeconds" in parsed:
                fields["etaSeconds"] = parsed["etaSeconds"]
            # steps per second between two log lines, from DeepSpec's own elapsed clock
            if "elapsedSeconds" in parsed and self._prev and parsed["elapsedSeconds"] > self._prev[1]:
                fields["throughput"] = (parsed["step"] - self._prev[0]) / (
                    parsed["elapsedSeconds"] - self._prev[1]
                )
                fields["throughputUnit"] = "steps/s"
            if "elapsedSeconds" in parsed:
                self._prev = (parsed["step"], parsed["elapsedSeconds"])
            self.last = parsed
            self.report(**fields)
            return
        ckpt = parse_checkpoint_line(line)
        if ckpt:
            self.checkpoint = ckpt
            self.report(message=f"saved checkpoint {ckpt['path']}")
            return
        resumed = parse_resume_line(line)
        if resumed:
            self.resumed_from = resumed
            self.report(message=f"resumed from {resumed}")
