"""``python -m stacks``: list and check the committed stacks offline, without Pulumi (the offline
plan and diff run the Pulumi program: ``python -m offline plan|diff``).

Exit codes: 0 all valid; 2 bad input (every error listed, each naming the key and the fix).
No traceback is ever shown for a bad stack file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .cluster_spec import ClusterSpec
from .errors import SpecErrors
from .loader import all_stack_files, load_any_stack_file, resolve_stack_arg
from .spec import StackSpec

EXIT_INVALID = 2


def _load_all(args: Sequence[str],
              require_secrets: bool) -> tuple[list[StackSpec], list[ClusterSpec], list[SpecErrors]]:
    """Serving stacks, cluster stacks, and the files that failed (every problem listed)."""
    targets = list(args) or list(all_stack_files())
    specs: list[StackSpec] = []
    clusters: list[ClusterSpec] = []
    failures: list[SpecErrors] = []
    for arg in targets:
        try:
            name, path = resolve_stack_arg(arg)
            spec = load_any_stack_file(Path(path), name, require_secrets=require_secrets)
        except SpecErrors as exc:
            failures.append(exc)
            continue
        if isinstance(spec, ClusterSpec):
            clusters.append(spec)
        else:
            specs.append(spec)
    return specs, clusters, failures


def _print_clusters(console: Console, clusters: list[ClusterSpec], specs: list[StackSpec]) -> None:
    """Cluster stacks, and the serving stacks that join each one."""
    if not clusters:
        return
    table = Table(title="cluster stacks (role: cluster)")
    for col in ("stack", "cluster", "location", "system pool", "$/h", "joined by"):
        table.add_column(col, justify="right" if col == "$/h" else "left")
    for c in clusters:
        joiners = [s.name for s in specs if (s.shared_cluster or "").rsplit("/", 1)[-1] == c.name]
        table.add_row(c.name, c.names.cluster, f"{c.project}/{c.location}", c.cluster.system_machine_type,
                      f"{c.usd_per_hour:.2f}", ", ".join(joiners) or "-")
    console.print(table)
    for c in clusters:
        for warning in c.warnings:
            console.print(f"[yellow]warning[/yellow] {c.name}: {warning}", highlight=False)


def _accel(spec: StackSpec) -> str:
    return f"{spec.chips_per_node}x {spec.machine.chip.name}" + (
        f" ({spec.machine.topology})" if spec.machine.topology else ""
    )


def cmd_list(console: Console) -> int:
    specs, clusters, failures = _load_all([], require_secrets=False)
    table = Table(title="committed stacks", show_lines=False)
    for col in ("stack", "model", "precision", "accelerator", "machine", "server", "TP", "$/h all-in", "$/h accel.",
                "fits"):
        table.add_column(col, justify="right" if col in ("TP", "$/h all-in", "$/h accel.") else "left")
    for s in specs:
        table.add_row(
            s.name,
            s.model.alias,
            s.precision.name,
            _accel(s),
            s.machine.name,
            s.server.name,
            str(s.tensor_parallel),
            f"{s.usd_per_hour_all_in:.2f}",
            f"{s.usd_per_hour:.2f}" + (" spot" if s.spot else ""),
            "yes" if s.sizing.fits else "NO",
        )
    console.print(table)
    _print_clusters(console, clusters, specs)
    for exc in failures:
        console.print(f"[red]invalid[/red] {exc.render()}", highlight=False)
    return EXIT_INVALID if failures else 0


def _extras(s: StackSpec) -> list[str]:
    """What a stack declares beside its server: the autoscaler and the in-cluster load generator."""
    out = []
    if s.autoscale is not None:
        a = s.autoscale
        out.append(f"autoscales {a.min_replicas}-{a.max_replicas} replicas on {a.metric} (target {a.target:g} per "
                   f"replica); $/h above is the pool at its maximum, {s.node_count} node(s)")
    if s.loadgen is not None:
        g = s.loadgen
        nodes = g.nodes_per_zone * g.zones
        out.append(f"load generator: {g.pods} pods, {g.pods_per_node} per {g.machine_type} on {nodes} node(s), "
                   f"${g.usd_per_hour:.2f}/h while it exists (not in the stack's $/h); results {g.results_url}")
    return out


def cmd_check(console: Console, args: Sequence[str], require_secrets: bool) -> int:
    specs, clusters, failures = _load_all(args, require_secrets)
    table = Table(title="sizing (the guide's rules 1-3)")
    cols = ("stack", "weights", "fit (≤80 %)", "KV cache", "KV tokens", "seqs @ max len", "TP", "$/h all-in",
            "$/h accel.")
    for col in cols:
        table.add_column(col, justify="left" if col == "stack" else "right")
    for s in specs:
        z = s.sizing
        table.add_row(
            s.name,
            f"{z.weight_gb:.1f} GB ({z.weight_gib:.1f} GiB)",
            f"{z.weight_share:.0%} of {z.group_memory_gb:g} GB",
            f"{z.kv_gib:.1f} GiB ({z.kv_share:.0%})",
            f"{z.kv_tokens:,}",
            f"{z.max_seqs_at_max_len} @ {z.max_model_len}",
            str(s.tensor_parallel),
            f"{s.usd_per_hour_all_in:.2f}",
            f"{s.usd_per_hour:.2f}",
        )
    if specs:
        console.print(table)
    _print_clusters(console, clusters, specs)
    for s in specs:
        for line in _extras(s):
            console.print(f"{s.name}: {line}", highlight=False)
    for s in specs:
        for warning in s.warnings:
            console.print(f"[yellow]warning[/yellow] {s.name}: {warning}", highlight=False)
    for exc in failures:
        console.print(f"[red]error[/red] {exc.render()}", highlight=False)
    if failures:
        console.print(f"{len(failures)} invalid stack(s)", style="bold red")
        return EXIT_INVALID
    console.print(f"{len(specs) + len(clusters)} stack(s) valid", style="bold green")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line per committed stack")
    check = sub.add_parser("check", help="validate stacks without Pulumi and print their sizing")
    check.add_argument("stacks", nargs="*", metavar="STACK-NAME | FILE", help="default: every committed stack")
    check.add_argument(
        "--deploy",
        action="store_true",
        help="also require the secrets `pulumi up` will need (HF token, API key) to be set",
    )
    sub.add_parser("recommend", add_help=False,
                   help="the cheapest setups for a model, a workload, a traffic and an SLO, as stack files "
                        "(python -m stacks recommend --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["recommend"]:
        # The search predicts with the simulator, which reads StackSpecs: it lives downstream of this
        # package (recommend/), and only its command is offered here, where users write stacks.
        from recommend.cli import main as recommend_main

        return recommend_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(width=200) if not sys.stdout.isatty() else Console()
    if args.command == "list":
        return cmd_list(console)
    if args.command == "check":
        return cmd_check(console, args.stacks, args.deploy)
    parser.error(f"unknown command {args.command}")
    return EXIT_INVALID
