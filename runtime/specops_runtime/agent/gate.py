"""Evaluation summary and gate verdict, computed the same way whatever backend measured."""

from __future__ import annotations


def summarize(results: list[dict]) -> dict:
    taus = [r["tau"] for r in results if r.get("tau") is not None]
    speedups = [r["speedup"] for r in results if r.get("speedup") is not None]
    out = {
        "macroTau": sum(taus) / len(taus) if taus else 0.0,
        "samples": sum(int(r.get("samples", 0)) for r in results),
    }
    if speedups:
        out["macroSpeedup"] = sum(speedups) / len(speedups)
    return out


def verdict(summary: dict, results: list[dict], gate: dict | None) -> dict:
    if not gate:
        return {"verdict": "NotEvaluated"}
    reasons = []
    if gate.get("minTau") is not None and summary["macroTau"] < gate["minTau"]:
        reasons.append(f"macro tau {summary['macroTau']:.3f} < minTau {gate['minTau']}")
    by_name = {r["name"]: r for r in results}
    for name, need in (gate.get("minTauPerTask") or {}).items():
        got = by_name.get(name, {}).get("tau")
        if got is None or got < need:
            reasons.append(f"{name}: tau {got if got is None else round(got, 3)} < {need}")
    if gate.get("minSpeedup") is not None:
        got = summary.get("macroSpeedup")
        if got is None or got < gate["minSpeedup"]:
            reasons.append(
                f"macro speedup {got if got is None else round(got, 3)} < minSpeedup {gate['minSpeedup']}"
            )
    return {"verdict": "Failed", "reasons": reasons} if reasons else {"verdict": "Passed"}
