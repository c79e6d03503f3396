"""How long ``stacks recommend`` takes over the whole catalog, and how much of it the pruning skips.

    .venv/bin/python benchmarks/recommend_speed.py [--json FILE]

Runs typical queries (every server, every precision, on-demand and flex-start shapes) and prints,
per query: wall time, deployable setups in the space, setups sized (the rest were pruned by the
capacity bound or refused at no load), simulations run, and the #1 pick. The target is 30 s per
query on a 2-core machine. Each query is run twice and the second ranking must equal the first
(determinism); the exit status is 1 when it does not, or when a query exceeds the target.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommend.query import Query, parse_slo
from recommend.search import search

TARGET_S = 30.0
QUERIES = (
    # (model, (input, output), SLO, rate, concurrency): the example, the guide's 7B and 70B
    # cases at the demo's shape, and the input-heavy case of the guide's recommendation 4
    ("llama-3.1-8b", (1024, 128), "ttft_p99=1s,tpot_p50=50ms", 20.0, None),
    ("llama-2-7b", (128, 64), "ttft_p99=2s,tpot_p50=100ms", None, None),
    ("llama-2-70b", (128, 64), "ttft_p99=2s,tpot_p50=100ms", None, None),
    ("llama-3.1-8b", (4096, 128), "ttft_p99=300ms,tpot_p50=100ms", 2.0, None),
    ("llama-3.3-70b", (1024, 256), "ttft_p99=2s,tpot_p50=60ms", None, 64),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    rows = []
    ok = True
    print(f"{'model':14} {'workload':10} {'traffic':10} {'time s':>7} {'setups':>7} {'sized':>6} {'sims':>6}  #1 pick")
    for model, shape, slo, rate, conc in QUERIES:
        q = Query(model={"name": model}, model_label=model, shapes=(shape,), workload_label=f"{shape[0]}:{shape[1]}",
                  slo=parse_slo(slo), rate=rate, concurrency=conc)
        t0 = time.perf_counter()
        result = search(q)
        seconds = time.perf_counter() - t0
        again = search(q)
        same = ([(p.candidate.label, p.nodes, p.stage.level) for p in again.picks]
                == [(p.candidate.label, p.nodes, p.stage.level) for p in result.picks])
        top = result.picks[0] if result.picks else None
        traffic = f"{rate:g} req/s" if rate else f"{conc} clients" if conc else "$/M"
        pick = (f"{top.candidate.label}, {top.nodes} node(s), ${top.usd_per_hour:.2f}/h, "
                f"${top.usd_per_m_output:.3f}/M" if top else "none")
        print(f"{model:14} {shape[0]}:{shape[1]:<6} {traffic:10} {seconds:7.1f} {result.candidates:7} "
              f"{result.evaluated:6} {result.simulations:6}  {pick}{'' if same else '  NOT DETERMINISTIC'}")
        ok &= same and seconds <= TARGET_S
        rows.append({"model": model, "workload": list(shape), "slo": slo, "rate": rate, "concurrency": conc,
                     "seconds": seconds, "setups": result.candidates, "sized": result.evaluated,
                     "simulations": result.simulations, "pick": pick, "deterministic": same})
    print(f"target: every query within {TARGET_S:g} s and the same ranking twice: {'met' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({"queries": rows, "targetS": TARGET_S, "met": ok}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
