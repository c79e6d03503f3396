"""Benchmark: compare 1,000,000 request records (target ≤ 10 s on a 2-core machine).

    .venv/bin/python benchmarks/analysis_compare.py                 # in memory: statistics → verdicts
    .venv/bin/python benchmarks/analysis_compare.py --disk          # also: write requests.jsonl, load, compare

The records are generated with numpy (5 demo stacks × 2 runs × 5 batch levels, lognormal latencies)
and handed to the same code ``python -m analysis compare`` runs: per-stage statistics (vectorized
pandas groupby), cost, SLO verdicts, the five recommendations and the guide's findings, the report
and its figures. ``--disk`` writes them as real result directories (with ``--chunks`` chunk
timestamps per request) and times loading too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.loader import Run, load_runs
from analysis.report import analyse, write_report
from analysis.slo import parse_slo
from stacks.loader import load_stack_file, stack_files

STACKS = ("llama2-7b-g2", "llama2-7b-a3", "llama2-70b-g2", "llama2-70b-a3", "llama2-70b-g2-fp8")
LEVELS = (16, 32, 64, 128, 256)
RUNS_PER_STACK = 2


def make_requests(n: int, rng: np.random.Generator, speed: float, level: int, stage: str, t0: float) -> pd.DataFrame:
    """``n`` request records of one stage starting at ``t0``; latencies grow with the level."""
    sched = t0 + np.sort(rng.uniform(0, n / (level * 4.0), n))
    ttft = rng.lognormal(np.log(0.05 * (1 + level / 64) / speed), 0.3, n)
    tpot = rng.lognormal(np.log(0.02 * (1 + level / 128) / speed), 0.2, n)
    err = rng.random(n) < 0.001
    return pd.DataFrame({
        "stage": pd.array([stage] * n, dtype="string"), "i": np.arange(n),
        "scheduled": sched, "sent": sched, "first": sched + ttft, "end": sched + ttft + 63 * tpot,
        "inputTokens": np.full(n, 128.0), "outputTokens": np.full(n, 64.0), "status": np.where(err, 500, 200),
        "error": pd.array(np.where(err, "http_5xx", None), dtype="string"), "warmup": np.zeros(n, bool),
    })


def make_runs(total: int, seed: int = 0) -> list[Run]:
    rng = np.random.default_rng(seed)
    per_run = total // (len(STACKS) * RUNS_PER_STACK)
    runs = []
    for k, stack in enumerate(STACKS):
        spec = load_stack_file(stack_files()[stack], stack).summary()
        speed = 1.0 + 3 * ("a3" in stack) + k * 0.1
        for r in range(RUNS_PER_STACK):
            parts = []
            for j, level in enumerate(LEVELS):
                parts.append(make_requests(per_run // len(LEVELS), rng, speed, level, f"s{j}", j * 1e5))
            requests = pd.concat(parts, ignore_index=True)
            summary = {"stages": [{"id": f"s{j}", "mode": "batch", "level": lv, "arrival": "closed"}
                                  for j, lv in enumerate(LEVELS)]}
            runs.append(Run(path=Path(f"/bench/{stack}/run{r}"), run_id=f"run{r}", stack=stack, target="sim",
                            modelled=True, partial=False, format_version=1, tool_version="bench",
                            config={"mode": "batch", "levels": list(LEVELS)}, spec=spec, summary=summary,
                            requests=requests, server_metrics=pd.DataFrame(columns=["t", "stage", "role", "family",
                                                                                    "value"])))
    return runs


def write_dirs(runs: list[Run], root: Path, chunks: int) -> None:
    """Write the runs as result directories (format v1), chunk timestamps included."""
    for run in runs:
        d = root / run.stack / run.run_id
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"formatVersion": 1, "runId": run.run_id, "stack": run.stack,
                                                "target": "sim", "modelled": True, "config": run.config,
                                                "spec": run.spec}))
        (d / "summary.json").write_text(json.dumps({"formatVersion": 1, "runId": run.run_id, "stack": run.stack,
                                                    "modelled": True, "partial": False, **run.summary}))
        r = run.requests
        first, end = r["first"].to_numpy(), r["end"].to_numpy()
        steps = np.linspace(0, 1, chunks)
        with open(d / "requests.jsonl", "w") as f:
            for k, row in enumerate(r.itertuples(index=False)):
                ch = ",".join(f"[{first[k] + s * (end[k] - first[k]):.6f},{64 // chunks}]" for s in steps)
                err = "null" if pd.isna(row.error) else f'"{row.error}"'
                f.write(f'{{"stage":"{row.stage}","i":{row.i},"scheduled":{row.scheduled:.6f},"sent":{row.sent:.6f},'
                        f'"first":{row.first:.6f},"end":{row.end:.6f},"chunks":[{ch}],"inputTokens":128,'
                        f'"outputTokens":64,"tokenSource":"usage","status":{row.status},"error":{err},'
                        f'"warmup":false}}\n')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--disk", action="store_true", help="also write result directories and time loading them")
    p.add_argument("--chunks", type=int, default=16, help="chunk timestamps per request on disk")
    a = p.parse_args()
    slo = parse_slo("ttft_p99=2s,tpot_p50=100ms")
    t = time.perf_counter()
    runs = make_runs(a.records)
    n = sum(len(r.requests) for r in runs)
    print(f"generated {n:,} request records in {len(runs)} runs ({time.perf_counter() - t:.1f} s, not timed)")
    t = time.perf_counter()
    result = analyse(runs, slo)
    t_analyse = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_report(result, Path(tmp) / "report")
        t_report = time.perf_counter() - t
        print(f"compare {n:,} records (statistics, cost, SLO verdicts, recommendations, findings): "
              f"{t_analyse:.2f} s  ({n / t_analyse / 1e6:.2f} M records/s; {len(result.stages)} stages)")
        print(f"report.md + CSVs + 5 figures: {t_report:.2f} s")
        print(f"total in memory: {t_analyse + t_report:.2f} s (target ≤ 10 s): "
              f"{'OK' if t_analyse + t_report <= 10 else 'OVER'}")
        if a.disk:
            root = Path(tmp) / "results"
            t = time.perf_counter()
            write_dirs(runs, root, a.chunks)
            size = sum(f.stat().st_size for f in root.rglob("requests.jsonl"))
            print(f"wrote {size / 1e6:.0f} MB of requests.jsonl ({a.chunks} chunks/request) in "
                  f"{time.perf_counter() - t:.1f} s (not timed)")
            t = time.perf_counter()
            loaded = load_runs([str(root)])
            t_load = time.perf_counter() - t
            t = time.perf_counter()
            analyse(loaded, slo)
            t_cmp = time.perf_counter() - t
            print(f"from disk: load {t_load:.2f} s + compare {t_cmp:.2f} s = {t_load + t_cmp:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
