"""Fidelity of the simulator's performance model against published measurements.

    .venv/bin/python benchmarks/fidelity.py [--json FILE]
    .venv/bin/python benchmarks/fidelity.py --points FILE.json [--json OUT.json]

With ``--points`` (any file in the calibration-serving.json schema, e.g.
loadtest/simulator/data/calibration-serving.json): predicts every point it can represent and writes
``{"points": [{"id", "measured", "predicted", "error", "fitted", "profile", "chip"}], "skipped": [{"id",
"reason"}], "median_abs_error", "max_abs_error", "groups": {...}}``; a point that cannot be
represented is listed with its reason. Points the factors were fitted to (serving-fit.json) are
marked; the targets (median |error| <= 20 %, max <= 50 %) apply to the others. Exit 0 when they hold.

Without ``--points``:
Prints, for every calibration point in loadtest/simulator/data/calibration.yaml, the measured and
the predicted value and the error; then the summary against the targets (median |error| <= 15 %,
none over 35 %); then the guide's relative findings recomputed by the model, with the shapes and
prices used. Points and findings the efficiency factors were fitted to are marked "fitted": they
show the fit, not a prediction. Exit status 0 when the calibration targets hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.simulator.calibration import GUIDE_SHAPES, compare_all, guide_findings
from loadtest.simulator.efficiency import EFFICIENCY_FILE, FIT_FILE, _data
from loadtest.simulator.serving_points import load_points, predict_points
from stacks.loader import load_stack_file, stack_files

MEDIAN_TARGET = 0.15
MAX_TARGET = 0.35
UNITS = {"ttft": ("s", 1), "latency": ("s", 1), "req_per_s": ("req/s", 1), "tok_per_s": ("tok/s", 1), "mbu": ("", 1)}


def _fitted_ids() -> set[str]:
    """Calibration ids named in a `source: fitted to ...` line of the efficiency file."""
    import re

    ids: set[str] = set()
    for eng in _data()["engines"].values():
        src = str(eng.get("source", ""))
        if "fitted" in src:
            for a, b in re.findall(r"c(\d+)(?:-c(\d+))?", src):
                lo, hi = int(a), int(b or a)
                ids |= {f"c{i}" for i in range(lo, hi + 1)}
    return ids


HELD_OUT_MEDIAN, HELD_OUT_MAX = 0.20, 0.50


def _group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [abs(r["error"]) for r in rows]
    return {"n": len(rows), "median_abs_error": statistics.median(errs) if errs else None,
            "max_abs_error": max(errs) if errs else None}


def serving_points(path: Path, out: Path | None) -> int:
    """``--points``: the published serving measurements, measured against predicted."""
    fit = json.loads(FIT_FILE.read_text()) if FIT_FILE.is_file() else {"profiles": {}}
    fitted = {i for r in fit["profiles"].values() for i in r["fitted"]}
    done, skipped = predict_points(load_points(path))
    rows = [{"id": c.point.id, "measured": c.point.value, "predicted": v, "error": (v - c.point.value) / c.point.value,
             "fitted": c.point.id in fitted, "profile": c.profile, "chip": c.spec.accelerator,
             "metric": c.point.metric} for c, v in done]
    print(f"Serving points: {path} (factors: {EFFICIENCY_FILE.name} + {FIT_FILE.name})")
    print(f"{'id':40} {'profile':9} {'metric':11} {'measured':>10} {'predicted':>10} {'error':>8}")
    for r in rows:
        print(f"{r['id']:40} {r['profile']:9} {r['metric']:11} {r['measured']:>10.4g} {r['predicted']:>10.4g} "
              f"{r['error']:>+8.0%}{'  fitted' if r['fitted'] else ''}")
    for p, why in skipped:
        print(f"{p.id:40} SKIPPED: {why}")
    held = [r for r in rows if not r["fitted"]]
    groups = {"fitted": _group([r for r in rows if r["fitted"]]), "held_out": _group(held)}
    for prof in sorted({r["profile"] for r in rows}):
        for tag, sel in (("fitted", True), ("held_out", False)):
            g = [r for r in rows if r["profile"] == prof and r["fitted"] is sel]
            if g:
                groups[f"{prof}/{tag}"] = _group(g)
    print()
    for name, g in groups.items():
        if g["n"]:
            print(f"{name:20} n={g['n']:3}  median |error| {g['median_abs_error']:.0%}  max {g['max_abs_error']:.0%}")
    h = groups["held_out"]
    ok = bool(held) and h["median_abs_error"] <= HELD_OUT_MEDIAN and h["max_abs_error"] <= HELD_OUT_MAX
    print(f"held-out targets (median <= {HELD_OUT_MEDIAN:.0%}, max <= {HELD_OUT_MAX:.0%}): "
          f"{'met' if ok else 'MISSED'}")
    allg = _group(rows)
    if out:
        out.write_text(json.dumps({"points": rows, "skipped": [{"id": p.id, "reason": why} for p, why in skipped],
                                   "median_abs_error": allg["median_abs_error"],
                                   "max_abs_error": allg["max_abs_error"], "groups": groups,
                                   "targets": {"held_out_median": HELD_OUT_MEDIAN, "held_out_max": HELD_OUT_MAX,
                                               "met": ok}}, indent=1))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--points", type=Path, help="published serving measurements (calibration-serving.json schema)")
    args = ap.parse_args()
    if args.points:
        return serving_points(args.points, args.json)
    fitted = _fitted_ids()
    comps = compare_all()
    print(f"Calibration points (data: loadtest/simulator/data/calibration.yaml; factors: {EFFICIENCY_FILE.name})")
    print(f"{'id':5} {'engine':18} {'machine':15} {'model':12} {'kind':9} {'measured':>11} {'predicted':>11} "
          f"{'error':>8}  note")
    rows = []
    for c in comps:
        p = c.point
        base = p.id.rstrip("ab")
        note = "fitted" if (p.id in fitted or base in fitted) else ("source's own MBU" if p.kind == "mbu" else "")
        if p.engine == "fastertransformer" and p.kind != "mbu":
            note = "fitted (mfu)" if p.id == "c8" else "predicted"
        print(f"{p.id:5} {p.engine:18} {p.machine:15} {p.model:12} {p.kind:9} {p.measured:>11.4g} "
              f"{c.predicted:>11.4g} {c.error:>+8.1%}  {note}")
        rows.append({"id": p.id, "engine": p.engine, "kind": p.kind, "measured": p.measured,
                     "predicted": c.predicted, "error": c.error, "note": note, "source": p.source})
    errs = [abs(c.error) for c in comps]
    med, worst = statistics.median(errs), max(errs)
    ok = med <= MEDIAN_TARGET and worst <= MAX_TARGET
    print(f"\nmedian |error| {med:.1%} (target <= {MEDIAN_TARGET:.0%}), max |error| {worst:.1%} "
          f"(target <= {MAX_TARGET:.0%}): {'targets met' if ok else 'TARGETS MISSED'}")
    print("note: the TensorRT-LLM factors were fitted to these points, so this shows the fit; vLLM, TGI and "
          "JetStream are fitted to serving measurements: see --points loadtest/simulator/data/calibration-serving.json")
    stacks = {n: load_stack_file(p) for n, p in stack_files().items()}
    all_findings = {}
    variants = [(GUIDE_SHAPES[0], None, "main shape (vLLM benchmark_latency defaults), today's vLLM"),
                (GUIDE_SHAPES[1], None, "demo shape, today's vLLM"),
                (GUIDE_SHAPES[0], "vllm-0.5", "main shape, vLLM with mid-2024 (v0.5) CPU overheads, the guide's era")]
    for shape, engine, label in variants:
        print(f"\nThe guide's findings, static batches of {shape[0]} in / {shape[1]} out ({label}):")
        findings = guide_findings(stacks, shape, engine)
        for f in findings:
            if (shape, engine) != (GUIDE_SHAPES[0], None) and f.key.startswith("prefill"):
                continue
            verdict = "reproduced" if f.holds else "NOT reproduced"
            tag = " [fitted: in-sample]" if f.in_sample else ""
            print(f"  {f.claim}: guide {f.guide:g}, model {f.model:,.2f} -> {verdict}{tag}\n      {f.detail}")
        all_findings[f"{shape[0]}x{shape[1]}-{engine or 'vllm'}"] = [f.__dict__ for f in findings]
    if args.json:
        args.json.write_text(json.dumps({"points": rows, "medianAbsError": med, "maxAbsError": worst,
                                         "targetsMet": ok, "findings": all_findings}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
