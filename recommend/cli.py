"""``python -m stacks recommend``: from "my model, my traffic, my SLO" to the cheapest stacks worth deploying.

    python -m stacks recommend --model llama-3.1-8b --workload 1024:128 --rate 20 \\
        --slo ttft_p99=1s,tpot_p50=50ms [--server vllm] [--region us-central1] [--spot] [--top 5] \\
        [--write stacks/] [--explain]

Searches every deployable setup in the catalog (``recommend/space.py``), predicts each at the
query's traffic with the simulator's performance model (``recommend/search.py``) and prints the
cheapest that meet the SLO, with why (the guide's rules) and the model's error band. ``--write``
writes them as stack files; ``--explain`` lists the cheaper setups that were not chosen, and why.

Exit codes: 0 picks found; 2 bad input, or no setup meets the SLO (the closest is named with its
latency and cost).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stacks.errors import SpecErrors

from .evaluate import fmt_s
from .explain import verdict, why
from .query import DEFAULT_SLO, Query, QueryError, model_section, parse_slo, servers_and_precisions, workload_shapes
from .search import Result, all_in_usd_per_hour, search
from .write import load_test_command, stack_name, write_stack_files

EXIT_OK, EXIT_BAD_INPUT = 0, 2
EXPLAIN_LINES = 15


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stacks recommend", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="a catalog alias (llama-3.1-8b), an org/name with --config-file, or a stack (name or file) "
                        "whose model to start from")
    p.add_argument("--config-file", help="the model's config.json (a local file) for a model outside the catalog")
    p.add_argument("--workload", help="fixed lengths INPUT:OUTPUT tokens, e.g. 1024:128")
    p.add_argument("--input-len", help="input tokens: 128 or a uniform range 64:256 (the load tester's grammar)")
    p.add_argument("--output-len", help="output tokens: 64 or a range 32:128")
    p.add_argument("--dataset", help="a ShareGPT-format JSON file: its conversations' lengths (estimated)")
    traffic = p.add_mutually_exclusive_group()
    traffic.add_argument("--rate", type=float, help="requests per second to serve (all replicas together)")
    traffic.add_argument("--concurrency", type=int, help="closed-loop clients to serve (all replicas together)")
    p.add_argument("--slo", default=DEFAULT_SLO, help=f"latency targets (default {DEFAULT_SLO})")
    p.add_argument("--server", help="only these server kinds, comma-separated (vllm, tgi, triton-trtllm, ...)")
    p.add_argument("--precision", help="only these weight precisions, comma-separated (bf16, fp8, int8, awq, mxfp4, "
                                       "nvfp4)")
    p.add_argument("--project", default="my-gcp-project", help="gcp:project of the written stack files")
    p.add_argument("--region", default="us-central1", help="gcp:region (prices are the catalog's us-central1 list)")
    p.add_argument("--zone", help="gcp:zone (default: a zone the catalog lists for the accelerator, or <region>-a)")
    p.add_argument("--spot", action="store_true", help="spot VMs: spot prices, preemptible")
    p.add_argument("--no-flex-start", action="store_true",
                   help="leave out shapes GCE sells only as spot or flex-start (a3-highgpu-1g..4g)")
    p.add_argument("--weights-share-max", type=float, default=0.8,
                   help="allow weights above the guide's 80 %% of accelerator memory (up to 0.95)")
    p.add_argument("--max-replicas", type=int, default=64, help="the most replicas a pick may use (default 64)")
    p.add_argument("--top", type=int, default=5, help="how many picks (default 5)")
    p.add_argument("--validated-only", action="store_true",
                   help="only setups whose engine and chip have a published measurement behind the model's error "
                        "band (leaves out chips nobody has measured a server on yet, e.g. the B200)")
    p.add_argument("--write", metavar="DIR", type=Path, help="write the picks as Pulumi.<stack>.yaml files here")
    p.add_argument("--explain", action="store_true", help="also list cheaper setups that were not chosen, and why")
    return p


def query_from_args(args: argparse.Namespace) -> Query:
    model = model_section(args.model, args.config_file)
    gcp = model.gcp
    shapes, workload_label = workload_shapes(args.workload, args.input_len, args.output_len, args.dataset)
    longest = max(i + o for i, o in shapes)
    if longest > model.max_context:
        flag = "--workload" if args.workload else "--input-len"
        raise QueryError(flag, f"requests of up to {longest} tokens (input + output) exceed {model.label}'s context "
                         f"of {model.max_context}",
                         "shorten the input or the output")
    servers, precisions = servers_and_precisions(args.server, args.precision)
    if args.rate is not None and not args.rate > 0:
        raise QueryError("--rate", f"{args.rate:g} is not a positive rate", "give requests per second, e.g. --rate 20")
    if args.concurrency is not None and args.concurrency < 1:
        raise QueryError("--concurrency", f"{args.concurrency} clients", "give at least 1, e.g. --concurrency 64")
    if not 0.5 <= args.weights_share_max <= 0.95:
        raise QueryError("--weights-share-max", f"{args.weights_share_max:g} is outside 0.5-0.95",
                         "the guide's rule is 0.8; allow at most 0.95")
    for flag, value in (("--top", args.top), ("--max-replicas", args.max_replicas)):
        if value < 1:
            raise QueryError(flag, f"{value} is below 1", f"give {flag} 1 or more")
    return Query(model=model.section, model_label=model.label, shapes=shapes, workload_label=workload_label,
                 slo=parse_slo(args.slo), rate=args.rate, concurrency=args.concurrency, servers=servers,
                 precisions=precisions, project=gcp.get("project", args.project), region=gcp.get("region", args.region)
                 if args.region == "us-central1" else args.region, zone=args.zone or gcp.get("zone"),
                 spot=args.spot, flex_start=not args.no_flex_start, weights_share_max=args.weights_share_max,
                 max_replicas=args.max_replicas, top=args.top, validated_only=args.validated_only,
                 baseline=(model.starting_stack, model.config) if model.starting_stack and model.config else None)


def print_result(console: Console, result: Result, seconds: float, explain: bool) -> None:
    q = result.query
    console.print(f"[bold]{q.model_label}[/bold]: {q.workload_label}; {q.traffic_label}; SLO "
                  + ", ".join(str(t) for t in q.slo), highlight=False)
    per_m = q.rate is None and q.concurrency is None
    table = Table(title=f"cheapest setups meeting the SLO ({'$ per million output tokens' if per_m else 'all-in $/h'})")
    for col in ("#", "setup", "nodes x replicas/node", "$/h all-in", "$/M out", *[t.key for t in q.slo],
                "tok/s out", "error band"):
        table.add_column(col, justify="left" if col in ("setup", "error band") else "right")
    for rank, p in enumerate(result.picks, 1):
        cells = [f"{fmt_s(p.stage.values.get(t.key))} ({p.headroom(t):+.0%})" for t in q.slo]
        band = "unvalidated" if not p.band.validated else f"±{p.band.median:.0%}" + (" !" if p.within_band(q.slo)
                                                                                      else "")
        table.add_row(str(rank), p.candidate.label + ("" if p.candidate.provisioning == "on-demand"
                                                      else escape(f" [{p.candidate.provisioning}]")),
                      f"{p.nodes} x {p.candidate.replicas_per_node}", f"{p.usd_per_hour:,.2f}",
                      f"{p.usd_per_m_output:,.3f}", *cells, f"{p.output_tok_s:,.0f}", band)
    console.print(table)
    console.print("latency cells: predicted value (headroom to the limit); error band: the model's typical error "
                  "for that server on that GPU against published measurements (! = the SLO holds only within it)",
                  style="dim", highlight=False)
    _print_baseline(console, result)
    for rank, p in enumerate(result.picks, 1):
        console.print(f"\n[bold]#{rank} {stack_name(p)}[/bold] — {verdict(p, q.slo)}", highlight=False)
        for line in why(p, result):
            console.print(f"  - {line}", highlight=False)
    if result.picks:
        top = result.picks[0]
        name = stack_name(top)
        console.print(f"\nConfirm #1 on a real cluster (write it with --write stacks/):\n  pulumi up -s {name}\n  "
                      f"{load_test_command(top, result, name)}", highlight=False)
    if explain:
        _explain(console, result)
    console.print(f"\nsearched {result.candidates} deployable setups ({len(result.rejections)} refused by the stack "
                  f"rules or the SLO), sized {result.evaluated}, {result.simulations} simulations, {seconds:.1f} s",
                  style="dim", highlight=False)


def _print_baseline(console: Console, result: Result) -> None:
    """The stack the query started from, sized for the same traffic: what the recommendation saves."""
    q, base = result.query, result.baseline
    if q.baseline is None or base is None:
        return
    name = q.baseline[0]
    if isinstance(base, str):
        console.print(f"your stack {name}: {base}", highlight=False)
        return
    top = result.picks[0]
    saving = 1 - result.value(top) / result.value(base)
    unit = "$/M output tokens" if q.rate is None and q.concurrency is None else "$/h all-in"
    console.print(f"your stack {name} ({base.candidate.label}), sized the same way: {base.nodes} node(s), "
                  f"${base.usd_per_hour:,.2f}/h all-in, ${base.usd_per_m_output:,.3f}/M output tokens; #1 costs "
                  f"{saving:.0%} {'less' if saving >= 0 else 'more'} ({unit})", highlight=False)


def _explain(console: Console, result: Result) -> None:
    """The cheapest setups that were not chosen: refused by the stack rules, or missing the SLO."""
    limit = result.picks[0].usd_per_hour if result.picks else float("inf")
    near = [r for r in result.rejections if r.usd_per_hour <= limit][:EXPLAIN_LINES]
    console.print(f"\n[bold]Not chosen[/bold] ({len(result.rejections)} in all; those whose node costs no more per "
                  "hour than #1 as sized, cheapest first):", highlight=False)
    for r in near:
        console.print(escape(f"  - {r.label} (${r.usd_per_hour:.2f}/h) [{r.kind}]: {r.reason}"), highlight=False)


def _no_pick(console: Console, result: Result) -> int:
    q = result.query
    slo = ", ".join(str(t) for t in q.slo)
    if result.closest is not None:
        c, st, ratio = result.closest
        values = ", ".join(f"{t.key} {fmt_s(st.values.get(t.key))}" for t in q.slo)
        console.print(f"[red]error[/red] --slo: no setup in the catalog meets {slo} for {q.model_label} "
                      f"({q.workload_label}).\n  closest: {c.label}, at one request in flight: {values} "
                      f"({ratio:.2f}x the limit), ${all_in_usd_per_hour(c, 1):.2f}/h all-in\n"
                      f"  fix: loosen the SLO to at least those values, or shorten the requests", highlight=False)
    else:
        console.print(f"[red]error[/red] no deployable setup serves {q.model_label} with {slo} at {q.traffic_label}"
                      "\n  fix: raise --max-replicas, loosen the SLO, or widen --server/--precision; --explain lists "
                      "why each was refused", highlight=False)
        _explain(console, result)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=200) if not sys.stdout.isatty() else Console()
    try:
        q = query_from_args(args)
    except QueryError as exc:
        console.print(f"[red]error[/red] {exc.flag}: {exc.message}\n  fix: {exc.fix}", highlight=False)
        return EXIT_BAD_INPUT
    started = time.perf_counter()
    try:
        result = search(q)
    except SpecErrors as exc:  # the model section itself is invalid (e.g. a config.json it cannot read)
        console.print(f"[red]error[/red] {exc.render()}", highlight=False)
        return EXIT_BAD_INPUT
    if not result.picks:
        return _no_pick(console, result)
    print_result(console, result, time.perf_counter() - started, args.explain)
    if args.write:
        for path in write_stack_files(result, args.write):
            console.print(f"wrote {path} (python -m stacks check {path})", highlight=False)
    return EXIT_OK

