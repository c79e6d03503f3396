"""Is the demo's answer the same on an idle and on a busy machine?

    .venv/bin/python benchmarks/demo_determinism.py [--hogs 2] [--stacks A,B] [--out DIR] [-- demo flags]

Runs ``python -m analysis demo`` twice into DIR/idle and DIR/busy — the second time with ``--hogs``
CPU-bound processes beside it — then compares the two ``verdicts.json``: the answer table as printed
(winner, load, $/M, interval, runner-up, verdict), every per-mode "cheapest stack" winner, and every
series' best level, $/M tokens and throughput (within 5 %); the recommendations'
verdicts; the findings' verdicts. Prints each difference, both wall times and how many stages each
run found host-bound. Exit status 0 when the answers agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RATIO_TOLERANCE = 0.05


def _hog() -> None:
    while True:
        pass


def run_demo(out: Path, hogs: int, extra: list[str]) -> tuple[float, int]:
    procs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(hogs)]
    for p in procs:
        p.start()
    t0 = time.monotonic()
    try:
        cmd = [sys.executable, "-m", "analysis", "demo", "--out", str(out), *extra]
        with open(out.with_suffix(".log"), "w") as log:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    finally:
        for p in procs:
            p.terminate()
    return time.monotonic() - t0, rc


def _series(doc: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {(c["source"], c["model"], c["workload_label"], c["mode"]): c for c in doc["cheapest"]}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=RATIO_TOLERANCE)
    return a == b


def compare(idle: dict[str, Any], busy: dict[str, Any]) -> list[str]:
    diffs: list[str] = []
    a, b = _series(idle), _series(busy)
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            diffs.append(f"{' / '.join(key)}: a winner only {'idle' if y is None else 'busy'}")
            continue
        for field in ("stack", "best_level", "usd_per_m_tokens", "output_tok_s"):
            if not _close(x.get(field), y.get(field)):
                diffs.append(f"{' / '.join(key)}: {field} {x.get(field)} (idle) vs {y.get(field)} (busy)")
    answers = {(r["source"], r["model"], r["in→out"]): r for r in idle.get("answer", [])}
    for r in busy.get("answer", []):
        x = answers.pop((r["source"], r["model"], r["in→out"]), None)
        if x is None:
            diffs.append(f"{r['model']} {r['in→out']}: an answer only busy")
            continue
        for field in ("cheapest meeting the SLO", "load", "$/M tokens", "95 % interval", "runner-up", "verdict"):
            if x.get(field) != r.get(field):
                diffs.append(f"answer {r['model']} {r['in→out']}: {field} {x.get(field)} (idle) vs "
                             f"{r.get(field)} (busy)")
    diffs += [f"{k[1]} {k[2]}: an answer only idle" for k in answers]
    for x, y in zip(idle["recommendations"], busy["recommendations"], strict=False):
        if x["verdict"] != y["verdict"]:
            diffs.append(f"recommendation {x['number']}: {x['verdict']} (idle) vs {y['verdict']} (busy)")
    for x, y in zip(idle["findings"], busy["findings"], strict=False):
        if x["verdict"] != y["verdict"]:
            diffs.append(f"finding {x['claim']}: {x['verdict']} (idle) vs {y['verdict']} (busy)")
    return diffs


def host_bound(out: Path) -> str:
    import csv

    with open(out / "stages.csv") as f:
        rows = list(csv.DictReader(f))
    bound = sum(1 for r in rows if r.get("host_bound") == "True")
    return f"{bound} of {len(rows)} stages host-bound"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hogs", type=int, default=2, help="CPU-bound processes beside the second run (default 2)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "determinism")
    ap.add_argument("demo_args", nargs="*", help="flags passed to the demo (after --), e.g. -- --stacks a,b")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    docs, lines = {}, []
    for name, hogs in (("idle", 0), ("busy", a.hogs)):
        out = a.out / name
        wall, rc = run_demo(out, hogs, a.demo_args)
        verdicts = out / "verdicts.json"
        if not verdicts.is_file():
            print(f"{name}: the demo wrote no verdicts (exit {rc}); log {out.with_suffix('.log')}")
            return 1
        docs[name] = json.loads(verdicts.read_text())
        lines.append(f"{name:4s} ({hogs} CPU hogs): {wall:5.0f} s, exit {rc}, {host_bound(out)}")
    print("\n".join(lines))
    diffs = compare(docs["idle"], docs["busy"])
    n = len(docs["idle"]["cheapest"])
    if diffs:
        print(f"DIFFERENT answers ({len(diffs)} difference(s)):")
        print("\n".join(f"  - {d}" for d in diffs))
        return 1
    print(f"SAME answer: the answer table ({len(docs['idle'].get('answer', []))} rows: winner, load, $/M tokens, "
          f"interval, runner-up, verdict, as printed), {n} per-mode cheapest-stack winners with their levels, $/M "
          f"tokens and throughputs within {RATIO_TOLERANCE:.0%}, and every recommendation and finding verdict")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
