"""``python -m offline diff <a> <b>``: what changes if stack ``a``'s configuration becomes ``b``'s.

Both programs run under mocks; resources are matched by type and logical name (the names are the
same for every stack), and their inputs compared property by property. A change to a property
the provider cannot update in place is marked REPLACE: for a node pool that means the pool is
deleted and recreated (nodes drained, GPUs released and requested again). The rules below follow
pulumi-gcp's ForceNew fields for ``container.NodePool`` / ``Cluster`` and Kubernetes' immutable
fields; anything not listed is an in-place update.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from .program_run import ProgramRun, Registered, shown

EXIT_INVALID = 2

# Property path prefixes whose change replaces the resource.
REPLACES: dict[str, tuple[str, ...]] = {
    "gcp:container/nodePool:NodePool": (
        "name", "project", "cluster", "location", "nodeLocations", "placementPolicy",
        "nodeConfig.machineType", "nodeConfig.guestAccelerators", "nodeConfig.diskSizeGb", "nodeConfig.diskType",
        "nodeConfig.spot", "nodeConfig.serviceAccount", "nodeConfig.oauthScopes",
        "nodeConfig.ephemeralStorageLocalSsdConfig", "nodeConfig.reservationAffinity", "nodeConfig.flexStart",
        "nodeConfig.shieldedInstanceConfig", "nodeConfig.gvnic", "queuedProvisioning",
    ),
    "gcp:container/cluster:Cluster": ("name", "project", "location", "privateClusterConfig.enablePrivateNodes",
                                      "ipAllocationPolicy"),
    "gcp:serviceaccount/account:Account": ("accountId", "project"),
    "gcp:storage/bucket:Bucket": ("name", "location", "project"),
    "gcp:projects/iAMMember:IAMMember": ("role", "member", "project"),
    "gcp:compute/router:Router": ("name", "network", "region"),
    "kubernetes:apps/v1:Deployment": ("metadata.name", "metadata.namespace", "spec.selector"),
    "kubernetes:batch/v1:Job": ("metadata.name", "metadata.namespace", "spec.template", "spec.selector"),
    "kubernetes:core/v1:Service": ("metadata.name", "metadata.namespace", "spec.clusterIP"),
    "kubernetes:core/v1:Secret": ("metadata.name", "metadata.namespace", "type"),
    "kubernetes:core/v1:ServiceAccount": ("metadata.name", "metadata.namespace"),
    "kubernetes:core/v1:Namespace": ("metadata.name",),
    "kubernetes:monitoring.googleapis.com/v1:PodMonitoring": ("metadata.name", "metadata.namespace"),
}


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    replaces: bool


@dataclass(frozen=True)
class ResourceDiff:
    type: str
    name: str
    op: str  # "create" | "delete" | "update" | "replace"
    changes: tuple[Change, ...] = ()


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _replaces(type_token: str, path: str) -> bool:
    plain = path.replace("[", ".").replace("]", "")
    return any(plain == p or plain.startswith(p + ".") for p in REPLACES.get(type_token, ()))


def diff_resource(a: Registered, b: Registered) -> ResourceDiff | None:
    before, after = dict(_flatten(shown(a.inputs))), dict(_flatten(shown(b.inputs)))
    changes = tuple(
        Change(path, before.get(path), after.get(path), _replaces(a.type, path))
        for path in sorted(set(before) | set(after)) if before.get(path) != after.get(path)
    )
    if a.custom_timeouts != b.custom_timeouts:
        changes += (Change("(customTimeouts)", a.custom_timeouts, b.custom_timeouts, False),)
    if not changes:
        return None
    op = "replace" if any(c.replaces for c in changes) else "update"
    return ResourceDiff(a.type, a.name, op, changes)


def diff_runs(a: ProgramRun, b: ProgramRun) -> tuple[list[ResourceDiff], list[Change]]:
    """Resource changes (custom resources only; components have no state) and output changes."""
    left = {(r.type, r.name): r for r in a.resources if r.custom}
    right = {(r.type, r.name): r for r in b.resources if r.custom}
    out: list[ResourceDiff] = []
    for key in sorted(set(left) | set(right)):
        if key not in right:
            out.append(ResourceDiff(key[0], key[1], "delete"))
        elif key not in left:
            out.append(ResourceDiff(key[0], key[1], "create"))
        else:
            d = diff_resource(left[key], right[key])
            if d:
                out.append(d)
    outs = [Change(k, a.outputs.get(k), b.outputs.get(k), False)
            for k in sorted(set(a.outputs) | set(b.outputs)) if k != "spec" and a.outputs.get(k) != b.outputs.get(k)]
    return out, outs


SYMBOL = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 140 else text[:140] + "..."


def _change_text(c: Change) -> str:
    """Lists of arguments show what was removed and added; everything else before -> after."""
    if isinstance(c.before, list) and isinstance(c.after, list) \
            and all(isinstance(v, str) for v in [*c.before, *c.after]):
        parts = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=c.before, b=c.after, autojunk=False).get_opcodes():
            if op in ("delete", "replace"):
                parts.append("- " + " ".join(c.before[i1:i2]))
            if op in ("insert", "replace"):
                parts.append("+ " + " ".join(c.after[j1:j2]))
        return "; ".join(parts)
    return f"{_short(c.before)} -> {_short(c.after)}"


def render(a: ProgramRun, b: ProgramRun, console: Console) -> None:
    resources, outputs = diff_runs(a, b)
    console.rule(f"[bold]{a.stack}[/bold] -> [bold]{b.stack}[/bold]")
    for d in resources:
        style = {"replace": "bold red", "delete": "red", "create": "green", "update": "yellow"}[d.op]
        note = "  (REPLACE: deleted and recreated)" if d.op == "replace" else ""
        console.print(f"[{style}]{SYMBOL[d.op]} {d.type} {d.name}[/{style}]{note}", highlight=False)
        for c in d.changes:
            mark = "  [bold red]forces replacement[/bold red]" if c.replaces else ""
            console.print(f"    {escape(c.path)}: {escape(_change_text(c))}{mark}", highlight=False)
    if outputs:
        console.print("[bold]outputs[/bold]")
        for c in outputs:
            console.print(f"    {escape(c.path)}: {escape(_change_text(c))}", highlight=False)
    counts = {op: sum(1 for d in resources if d.op == op) for op in SYMBOL}
    console.print(", ".join(f"{n} to {op}" for op, n in counts.items()) or "no changes", style="bold")


def diff_document(a: ProgramRun, b: ProgramRun) -> dict[str, Any]:
    resources, outputs = diff_runs(a, b)
    return {
        "from": a.stack, "to": b.stack,
        "resources": [{"type": d.type, "name": d.name, "op": d.op,
                       "changes": [{"path": c.path, "before": c.before, "after": c.after, "replaces": c.replaces}
                                   for c in d.changes]} for d in resources],
        "outputs": [{"key": c.path, "before": c.before, "after": c.after} for c in outputs],
    }


def run_pair(a: str, b: str) -> tuple[ProgramRun, ProgramRun]:
    """A's program, and B's configuration run *as stack A* (so stack-derived names stay the same):
    exactly what ``pulumi up`` on A would do after A's config became B's."""
    from pathlib import Path

    from stacks.loader import resolve_stack_arg

    from .program_run import run_stack_file

    name_a, path_a = resolve_stack_arg(a)
    _, path_b = resolve_stack_arg(b)
    return run_stack_file(Path(path_a), name_a), run_stack_file(Path(path_b), name_a)


def cmd_diff(console: Console, a: str, b: str, as_json: bool) -> int:
    from stacks.errors import SpecErrors

    from .program_run import ProgramError

    try:
        runs = run_pair(a, b)
    except (SpecErrors, ProgramError) as exc:
        console.print(f"[red]error[/red] {exc.render() if isinstance(exc, SpecErrors) else exc}", highlight=False)
        return EXIT_INVALID
    runs[1].stack = b
    if as_json:
        print(json.dumps(diff_document(*runs), indent=2, default=str))
    else:
        render(runs[0], runs[1], console)
    return 0
