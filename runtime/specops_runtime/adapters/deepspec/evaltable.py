"""Parse the results DeepSpec's eval.py prints (PrettyTable; deepspec/eval/base_evaluator.py):
dataset | target_model | draft_model | #propose ("k.kk+1") | accept_len | verify_rate | accept_rate@0..
After each dataset it prints that row alone without a header; at the end the whole table with one.
A '-' marks a position no proposal reached."""

from __future__ import annotations

# The leading columns of every row, in order; the rest are accept_rate@0, @1, ...
EVAL_COLUMNS_NO_HEADER = ("dataset", "target_model", "draft_model", "#propose", "accept_len", "verify_rate")


def _cells(line: str) -> list[str] | None:
    s = line.strip()
    if s.startswith("|") and s.endswith("|") and len(s) > 1:
        return [c.strip() for c in s[1:-1].split("|")]
    return None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "", "-") else None
    except ValueError:
        return None


def _row(header: list[str], cells: list[str]) -> dict | None:
    rec = dict(zip(header, cells, strict=True))
    tau = _float(rec.get("accept_len"))
    if tau is None or not rec.get("dataset"):
        return None
    positions = sorted((int(k.split("@", 1)[1]), k) for k in header if k.startswith("accept_rate@"))
    accept: list[float] = []
    for _, key in positions:
        v = _float(rec.get(key))
        if v is None:
            break
        accept.append(v)
    row: dict = {"name": rec["dataset"], "tau": tau}
    if (vr := _float(rec.get("verify_rate"))) is not None:
        row["verifyRate"] = vr
    if accept:
        row["acceptanceByPosition"] = accept
    return row


def parse_eval_tables(text: str, columns: tuple[str, ...] | None = None) -> list[dict]:
    """Result rows in the text, one per dataset (a later row replaces an earlier one). Rows under a
    header are read by column name; with ``columns``, rows without a header are read as DeepSpec's
    headerless per-dataset rows (those columns, then accept_rate@i)."""
    rows: dict[str, dict] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        cells = _cells(line)
        if cells is None:
            if not line.strip().startswith("+"):
                header = None
            continue
        if "dataset" in cells and "accept_len" in cells:
            header = cells
            continue
        current = header
        if current is None and columns is not None and len(cells) >= len(columns):
            current = list(columns) + [f"accept_rate@{i}" for i in range(len(cells) - len(columns))]
        if current is None or len(cells) != len(current):
            continue
        row = _row(current, cells)
        if row is not None:
            rows[row["name"]] = row
    return list(rows.values())
