"""How long the offline plan of every committed stack takes (target: <= 10 s on a 2-core machine).

Runs ``python -m offline plan --all --json`` as a user would (a fresh interpreter each time, so
Pulumi's import cost is included) and prints the wall time of each run, the median, and the
time spent running the program under mocks as the plan itself reports it.

    .venv/bin/python benchmarks/plan_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls, program = [], []
    stacks = 0
    for _ in range(args.runs):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "offline", "plan", "--all", "--json"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        walls.append(time.perf_counter() - started)
        doc = json.loads(out)
        stacks = len(doc["stacks"])
        program.append(sum(s["seconds"] for s in doc["stacks"]))
    median = statistics.median(walls)
    print(f"stacks planned: {stacks}")
    print("wall per run (s): " + ", ".join(f"{w:.2f}" for w in walls))
    print(f"median wall: {median:.2f} s (target <= {TARGET_S:g} s) -> {'OK' if median <= TARGET_S else 'TOO SLOW'}")
    print(f"program under mocks, median: {statistics.median(program):.2f} s "
          f"({statistics.median(program) / max(stacks, 1) * 1000:.0f} ms per stack)")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
