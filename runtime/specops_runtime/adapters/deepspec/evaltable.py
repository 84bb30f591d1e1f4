"""Parse the results table DeepSpec's eval.py prints (PrettyTable, or tab-separated without it):
dataset | target_model | draft_model | #propose | accept_len | verify_rate | [samples | out_tokens |
tok/s | verify/s |] accept_rate@0 ... Columns are found by header name, so older layouts parse too."""

from __future__ import annotations


def _cells(line: str) -> list[str] | None:
    s = line.strip()
    if s.startswith("|") and s.endswith("|"):
        return [c.strip() for c in s[1:-1].split("|")]
    if "\t" in s:
        return [c.strip() for c in s.split("\t")]
    return None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "", "-") else None
    except ValueError:
        return None


def parse_eval_tables(text: str) -> list[dict]:
    """All result rows in the text, one dict per dataset (a later table replaces an earlier row)."""
    rows: dict[str, dict] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        cells = _cells(line)
        if cells is None:
            if not line.strip().startswith("+"):
                header = None if line.strip() else header
            continue
        if "dataset" in cells and "accept_len" in cells:
            header = cells
            continue
        if header is None or len(cells) != len(header):
            continue
        rec = dict(zip(header, cells, strict=True))
        tau = _float(rec.get("accept_len"))
        if tau is None:
            continue
        positions = sorted((int(k.split("@", 1)[1]), k) for k in header if k.startswith("accept_rate@"))
        accept: list[float] = []
        for _, key in positions:
            v = _float(rec.get(key))
            if v is None:
                break  # '-' marks positions this dataset never reached
            accept.append(v)
        row: dict = {"name": rec["dataset"], "tau": tau}
        if (samples := _float(rec.get("samples"))) is not None:
            row["samples"] = int(samples)
        if (vr := _float(rec.get("verify_rate"))) is not None:
            row["verifyRate"] = vr
        if accept:
            row["acceptanceByPosition"] = accept
        if (tps := _float(rec.get("tok/s"))) is not None:
            row["tokensPerSecond"] = tps
        rows[row["name"]] = row
    return list(rows.values())
