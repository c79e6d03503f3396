"""Fit the vLLM, TGI and JetStream efficiency factors to published serving measurements.

    .venv/bin/python benchmarks/fit_serving.py [--points FILE.json] [--out FILE.json] [--profiles vllm,tgi-1]

Inputs: the points (default loadtest/simulator/data/calibration-serving.json, a copy of the reference
file) and, in efficiency.yaml, each profile's ``fit:`` block: which points (id prefixes) set it and
which factors are free. Every other point is held out: the fidelity benchmark reports the error on
both groups separately. Method: coordinate descent on the mean squared log error (a factor is
multiplied by 1.6, then 1.25, 1.1, 1.03 while that lowers the error; mfu and mbu stay <= 1), from
the factors in efficiency.yaml. Output (default loadtest/simulator/data/serving-fit.json): the
fitted factors per profile, the points used and the final RMS log error. ``efficiency.py`` reads the
factors from that file, so running this script and committing its output is the whole refit.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.simulator.efficiency import FIT_FILE, raw_data
from loadtest.simulator.serving_points import SERVING_POINTS_FILE, load_points, predict_points

STEPS = (1.6, 1.25, 1.1, 1.03)
BOUNDED = {"mfu": 1.0, "mbu": 1.0, "comm_efficiency": 1.0}


def loss(points: list[Any], data: dict[str, Any]) -> float:
    done, skipped = predict_points(points, data)
    if skipped:
        raise SystemExit(f"a fitted point cannot be predicted: {skipped[0][0].id}: {skipped[0][1]}")
    return sum(math.log(v / c.point.value) ** 2 for c, v in done) / len(done)


def fit_profile(name: str, points: list[Any], data: dict[str, Any]) -> dict[str, Any]:
    plan = data["engines"][name]["fit"]
    chosen = [p for p in points if any(p.id.startswith(prefix) for prefix in plan["points"])]
    if not chosen:
        raise SystemExit(f"profile {name}: no point matches {plan['points']}")
    free = list(plan["factors"])
    work = copy.deepcopy(data)
    eng = work["engines"][name]
    eng.pop("gpus", None)  # one set of factors for every GPU: the fit is profile-wide
    best = loss(chosen, work)
    t0 = time.monotonic()
    print(f"{name}: {len(chosen)} points, free {', '.join(free)}; start RMS log error {math.sqrt(best):.3f}")
    for step in STEPS:
        improved = True
        while improved:
            improved = False
            for k in free:
                for f in (step, 1 / step):
                    trial = eng[k] * f
                    if k in BOUNDED and trial > BOUNDED[k]:
                        continue
                    old, eng[k] = eng[k], trial
                    got = loss(chosen, work)
                    if got < best - 1e-9:
                        best, improved = got, True
                        break
                    eng[k] = old
    factors = {k: round(float(eng[k]), 4) for k in free}
    print(f"{name}: RMS log error {math.sqrt(best):.3f} after {time.monotonic() - t0:.0f} s: {factors}")
    return {"factors": factors, "fitted": sorted(p.id for p in chosen), "rmsLogError": round(math.sqrt(best), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=Path, default=SERVING_POINTS_FILE)
    ap.add_argument("--out", type=Path, default=FIT_FILE)
    ap.add_argument("--profiles", default=None, help="comma-separated profiles to fit (default: every one with fit:)")
    a = ap.parse_args()
    data = raw_data()
    points = load_points(a.points)
    names = a.profiles.split(",") if a.profiles else [n for n, e in data["engines"].items() if "fit" in e]
    previous = json.loads(a.out.read_text()) if a.out.is_file() else {"profiles": {}}
    for name in names:
        previous["profiles"][name] = fit_profile(name, points, data)
    previous["points"] = str(a.points.name)
    a.out.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
