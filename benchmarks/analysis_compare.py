"""Benchmark: compare 1,000,000 request records (target ≤ 10 s on a 2-core machine), and 10,000,000
from disk with the command a user runs (target ≤ 15 s and ≤ 4 GB of memory).

    .venv/bin/python benchmarks/analysis_compare.py                 # in memory: statistics → verdicts
    .venv/bin/python benchmarks/analysis_compare.py --disk          # also: write result dirs, load, compare
    .venv/bin/python benchmarks/analysis_compare.py --records 10000000 --disk --cli --chunks 4

The records are generated with numpy (5 demo stacks × 2 runs × 5 batch levels, lognormal latencies)
and handed to the same code ``python -m analysis compare`` runs: per-stage statistics (vectorized
pandas groupby), cost, SLO verdicts, the answer table, the five recommendations and the guide's
findings, the report and its figures. ``--disk`` writes them as real result directories, as the load
tester does: ``requests.jsonl`` (with ``--chunks`` chunk timestamps per request) and, per stage, its
columnar copy (``loadtest/columnar.py``; ``--jsonl-only`` leaves it out), and times loading too.
``--cli`` then runs ``python -m analysis compare DIR --no-plots`` in a fresh process and prints its
wall time and peak memory (the process's maximum resident set).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.loader import Run, load_runs
from analysis.report import analyse, write_report
from analysis.slo import parse_slo
from loadtest.columnar import FIELDS, SCHEMA, write_stage
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


def write_dirs(runs: list[Run], root: Path, chunks: int, columns: bool = True) -> None:
    """Write the runs as result directories (format v1), chunk timestamps included; after each stage's
    lines, its columnar copy (as the load tester writes it) unless ``columns`` is false."""
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
        r = r.assign(**{c: r[c].round(6) for c in ("scheduled", "sent", "first", "end")})  # as the JSONL holds them
        with open(d / "requests.jsonl", "w") as f:
            for stage, g in r.groupby("stage", sort=False):
                rows = g.index.to_numpy()
                for k, row in zip(rows, g.itertuples(index=False), strict=True):
                    ch = ",".join(f"[{first[k] + s * (end[k] - first[k]):.6f},{64 // chunks}]" for s in steps)
                    err = "null" if pd.isna(row.error) else f'"{row.error}"'
                    f.write(f'{{"stage":"{row.stage}","i":{row.i},"scheduled":{row.scheduled:.6f},'
                            f'"sent":{row.sent:.6f},"first":{row.first:.6f},"end":{row.end:.6f},"chunks":[{ch}],'
                            f'"inputTokens":128,"outputTokens":64,"tokenSource":"usage","status":{row.status},'
                            f'"error":{err},"warmup":false}}\n')
                f.flush()
                if columns:
                    table = pa.Table.from_pandas(g[list(FIELDS)].astype({"status": "float64"}), schema=SCHEMA,
                                                 preserve_index=False)
                    write_stage(d, "requests.jsonl", str(stage), table)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--disk", action="store_true", help="also write result directories and time loading them")
    p.add_argument("--chunks", type=int, default=16, help="chunk timestamps per request on disk")
    p.add_argument("--jsonl-only", action="store_true", help="--disk: no columnar copy (the JSONL is parsed)")
    p.add_argument("--cli", action="store_true",
                   help="--disk: also time `python -m analysis compare DIR --no-plots` in a fresh process, with "
                        "its peak memory")
    p.add_argument("--skip-memory", action="store_true", help="skip the in-memory comparison (large --records)")
    a = p.parse_args()
    slo = parse_slo("ttft_p99=2s,tpot_p50=100ms")
    t = time.perf_counter()
    runs = make_runs(a.records)
    n = sum(len(r.requests) for r in runs)
    print(f"generated {n:,} request records in {len(runs)} runs ({time.perf_counter() - t:.1f} s, not timed)")
    with tempfile.TemporaryDirectory() as tmp:
        if not a.skip_memory:
            t = time.perf_counter()
            result = analyse(runs, slo)
            t_analyse = time.perf_counter() - t
            t = time.perf_counter()
            write_report(result, Path(tmp) / "report")
            t_report = time.perf_counter() - t
            print(f"compare {n:,} records (statistics, cost, SLO verdicts, answer, recommendations, findings): "
                  f"{t_analyse:.2f} s  ({n / t_analyse / 1e6:.2f} M records/s; {len(result.stages)} stages)")
            print(f"report.md + report.html + CSVs + figures: {t_report:.2f} s")
            print(f"total in memory: {t_analyse + t_report:.2f} s (target ≤ 10 s for 1 M): "
                  f"{'OK' if t_analyse + t_report <= 10 else 'OVER'}")
        if a.disk:
            root = Path(tmp) / "results"
            t = time.perf_counter()
            write_dirs(runs, root, a.chunks, columns=not a.jsonl_only)
            del runs  # the comparison below reads the disk, as a user's would
            size = sum(f.stat().st_size for f in root.rglob("requests.jsonl"))
            cols = sum(f.stat().st_size for f in root.rglob("*.parquet"))
            print(f"wrote {size / 1e6:,.0f} MB of requests.jsonl ({a.chunks} chunks/request) and {cols / 1e6:,.0f} MB "
                  f"of columnar copies in {time.perf_counter() - t:.1f} s (not timed)")
            if a.cli:
                t = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "analysis", "compare", str(root), "--no-plots",
                                       "--out", str(Path(tmp) / "cli")], cwd=Path(__file__).resolve().parents[1],
                                      capture_output=True, text=True)
                wall = time.perf_counter() - t
                peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # KiB on Linux
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-2000:])
                    return 1
                ok = wall <= 15 and peak_gb <= 4
                print(f"python -m analysis compare ({n:,} records, {'JSONL only' if a.jsonl_only else 'columnar'}): "
                      f"{wall:.1f} s wall, peak memory {peak_gb:.2f} GB (target ≤ 15 s, ≤ 4 GB): "
                      f"{'OK' if ok else 'OVER'}")
            else:
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
