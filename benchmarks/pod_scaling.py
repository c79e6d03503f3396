"""Does load generation scale with pods? N pod processes (``loadtest run --pods N``, the in-cluster load
generator's entry point) against the generator-capacity harness, merged into one run.

For each N and each total rate R: N processes start together (a shared ``--start-at``), each sends
its share of one seeded schedule (arrivals g = k mod N), each ships its share with ``loadtest upload``
to a local "bucket" directory, and ``loadtest merge`` makes one run. A rate is *sustained* by the
rule of benchmarks/generator_capacity.py (achieved >= 98 % of requested, no errors, TTFT p99 <= 5 ms),
judged on the merged run; a rate is *kept* when only the first two hold (the schedule was met, but
requests were timed late, which is what a CPU shared with the harness does). The target: N
processes sustain >= 0.9 N x what one process sustains. On a machine with fewer cores than the N
processes and the harness need, they share cores and the TTFT rule measures that contention (the
CPUs are printed).

    .venv/bin/python benchmarks/pod_scaling.py [--pods 1,2] [--rates 800,1600,...] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.generator_capacity import start_harness, sustained, wait_up  # noqa: E402
from loadtest.merge import AUDIT_FILE, merge  # noqa: E402
from loadtest.targets import stop_process  # noqa: E402


def run_pods(url: str, pods: int, rate: float, duration: float, work: Path) -> dict:
    start = time.time() + 3.0  # time for every process to import and build its schedule
    procs = []
    for k in range(pods):
        cmd = [sys.executable, "-m", "loadtest", "run", "--stack", "bench", "--endpoint", url, "--dialect", "openai",
               "--model", "m", "--mode", "rate", "--levels", f"{rate:g}", "--duration", f"{duration:g}",
               "--input-len", "128", "--output-len", "64", "--no-progress", "--no-metrics", "--no-model-check",
               "--pods", str(pods), "--pod-index", str(k), "--start-at", f"{start:.3f}",
               "--results-dir", str(work / f"pod{k}"), "--run-id", "r"]
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=duration * 4 + 120)
        if proc.returncode != 0:
            raise RuntimeError(err[-2000:])
    for k in range(pods):
        subprocess.run([sys.executable, "-m", "loadtest", "upload", str(work / f"pod{k}"),
                        str(work / "bucket" / str(k)), "--once"], cwd=REPO, check=True, capture_output=True)
    run_dir = merge(str(work / "bucket"), work / "merged")
    stage = json.loads((run_dir / "summary.json").read_text())["stages"][0]
    audit = json.loads((run_dir / AUDIT_FILE).read_text())
    return {"requested": rate, "achieved": stage["achievedRate"] or 0.0, "errors": sum(stage["errors"].values()),
            "ttft_p99_ms": 1000 * stage["ttft"]["p99"], "dispatch_p99_ms": 1000 * stage["dispatchDelay"]["p99"],
            "pod_cpu": [p["cpuPercentMean"] for p in audit["pods"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", default="1,2")
    ap.add_argument("--rates", default="400,800,1200,1600,2400,3200,4000,4800")
    ap.add_argument("--duration", type=float, default=10.0)
    a = ap.parse_args()
    proc, harness, url = start_harness()
    best: dict[int, float] = {}
    kept: dict[int, float] = {}
    try:
        wait_up(url + "/health", proc)
        print(f"harness: {harness} on {url}; {a.duration:g} s per rate; 128 in / 64 out; {os.cpu_count()} CPUs")
        for pods in map(int, a.pods.split(",")):
            print(f"\n{pods} pod process(es)")
            print(f"{'requested':>10} {'achieved':>9} {'errors':>6} {'TTFT p99 ms':>11} {'dispatch p99 ms':>15} "
                  f"{'CPU % per pod':>14}  sustained")
            for rate in map(float, a.rates.split(",")):
                work = Path(tempfile.mkdtemp(prefix="lt-pods-"))
                try:
                    row = run_pods(url, pods, rate, a.duration, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                ok = sustained(row)
                pace = row["achieved"] >= 0.98 * rate and row["errors"] == 0
                cpu = "/".join(f"{c:.0f}" for c in row["pod_cpu"] if c is not None)
                print(f"{rate:>10.0f} {row['achieved']:>9.1f} {row['errors']:>6} {row['ttft_p99_ms']:>11.2f} "
                      f"{row['dispatch_p99_ms']:>15.2f} {cpu:>14}  {'yes' if ok else 'kept' if pace else 'no'}")
                if ok:
                    best[pods] = rate
                if pace:
                    kept[pods] = rate
                elif row["achieved"] < 0.9 * rate:
                    break
            print(f"=> {pods} pod(s): highest sustained {best.get(pods, 0):.0f} req/s, "
                  f"highest kept {kept.get(pods, 0):.0f} req/s")
        for name, table in (("sustained", best), ("kept", kept)):
            one = table.get(1)
            for pods, rate in sorted(table.items()):
                if pods > 1 and one:
                    print(f"scaling ({name}) {pods} pods: {rate / one:.2f} x one process (target >= {0.9 * pods:.1f})")
    finally:
        stop_process(proc)


if __name__ == "__main__":
    main()
