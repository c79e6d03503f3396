"""``python -m analysis``: ``compare`` result directories into a report; ``demo`` runs the whole job
(plan → simulated endpoints → the guide's workloads → compare) on the committed demo stacks.

Exit codes: 0 ok; 2 bad input (the message names the file or option and the fix); 1 a step of the
demo failed (its output is shown).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtest.helpfmt import DefaultsHelpFormatter

from .cost import PRICE_BASES
from .errors import AnalysisError
from .loader import load_runs
from .report import analyse, print_summary, write_report
from .slo import DEFAULT_SLO, parse_slo

EXIT_BAD_INPUT = 2
DESCRIPTION = ("Compare result directories into a report (compare), or run the whole job on the committed demo "
               "stacks: plan, simulated endpoints, the guide's workloads, compare (demo).")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="compare result directories: tables, cost, SLO verdicts, plots, report.md",
                       formatter_class=DefaultsHelpFormatter,
                       epilog="example:\n"
                              "  python -m analysis compare reports/demo/results --slo ttft_p99=2s,tpot_p50=100ms")
    c.add_argument("results", nargs="+", metavar="RESULTS",
                   help="run directories, directories holding runs (e.g. results/), or globs")
    c.add_argument("--slo", default=DEFAULT_SLO,
                   help=f"latency objective, e.g. {DEFAULT_SLO} (metrics: ttft tpot ntpot itl e2e e2e_sched; "
                        "stats: mean p50 p90 p95 p99 max; also error_rate=1%%)")
    c.add_argument("--baseline", default=None, metavar="STACK",
                   help="stack whose throughput per $ is 1 (default: per model, its first G2 stack)")
    c.add_argument("--price", choices=PRICE_BASES, default="all-in",
                   help="what a stack costs: all-in (its accelerator pool, a GKE cluster's fee and system pool), "
                        "pool (the accelerators only: the guide's basis) or replicas (only the chips its replicas use)")
    c.add_argument("--out", default="reports/compare", type=Path, help="output directory (default reports/compare)")
    c.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    d = sub.add_parser("demo", help="the main job on the embedded default: plan, simulate, load-test, compare",
                       formatter_class=DefaultsHelpFormatter,
                       epilog="example:\n"
                              "  python -m analysis demo --stacks llama2-7b-g2,llama2-7b-a3 --out reports/mini")
    d.add_argument("--out", default="reports/demo", type=Path, help="report directory (default reports/demo)")
    d.add_argument("--results-dir", default=None, type=Path,
                   help="where the load tester writes runs (default <out>/results)")
    d.add_argument("--stacks", default=None,
                   help="comma-separated stacks (default: the guide's G2/A3 pairs for Llama-2-7B and -70B, "
                        "the single-L4 7B stack and the fp8 G2 variants)")
    d.add_argument("--slo", default=DEFAULT_SLO, help=f"latency objective for the verdicts (default {DEFAULT_SLO}; "
                                                      "the grammar of compare --slo)")
    d.add_argument("--batch-levels", default="16,32,64,128,256", help="static batch sizes (default: the guide's)")
    d.add_argument("--prefill-levels", default="4,16", help="batch sizes of the input-heavy workload")
    d.add_argument("--resume", action="store_true",
                   help="continue the latest demo attempt under the results directory: reuse its finished runs, "
                        "redo the failed or unfinished ones (same --stacks and workload flags)")
    d.add_argument("--rate-seconds", type=float, default=8.0, help="seconds of arrivals per rate stage")
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    slo = parse_slo(args.slo)
    runs = load_runs(list(args.results))
    for run in runs:
        for w in run.warnings:
            print(f"warning: {w}", file=sys.stderr)
    analysis = analyse(runs, slo, args.baseline, args.price)
    for w in analysis.warnings:
        if not any(w in r.warnings for r in runs):
            print(f"warning: {w}", file=sys.stderr)
    path = write_report(analysis, args.out, plots=not args.no_plots)
    print_summary(analysis)
    print(f"every stage: {args.out / 'comparison.csv'} (and stages.csv beside it)")
    print(f"report: {path} (and report.html)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return cmd_compare(args)
        from .demo import run_demo

        return run_demo(args)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
