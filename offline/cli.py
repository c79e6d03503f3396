"""``python -m offline plan|diff``: the real Pulumi program under mocks, for one stack or two.

Exit codes as ``python -m stacks``: 0 ok; 2 bad input (every error listed, each naming the key and
the fix), never a traceback for a bad stack file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from .diff import cmd_diff
from .plan import cmd_plan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offline",
                                     description="Run the Pulumi program under mocks: no cloud, no Pulumi CLI.")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="resources, sizing, $/h and outputs of the stacks")
    plan.add_argument("stacks", nargs="*", metavar="STACK-NAME | FILE", help="default: every committed stack")
    plan.add_argument("--all", action="store_true", help="every committed stack")
    plan.add_argument("--json", action="store_true", help="one JSON document instead of the tree")
    diff = sub.add_parser("diff", help="what changes (and what is replaced) going from stack A's config to B's")
    diff.add_argument("a", metavar="STACK-A")
    diff.add_argument("b", metavar="STACK-B")
    diff.add_argument("--json", action="store_true", help="JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=200) if not sys.stdout.isatty() else Console()
    if args.command == "plan":
        return cmd_plan(console, args.stacks, args.json, args.all)
    return cmd_diff(console, args.a, args.b, args.json)
