"""``python -m offline plan``: what ``pulumi preview`` would show, offline.

Runs the real ``__main__.py`` under mocks (``offline.program_run``) for each stack and prints the
resource tree (type, name, parent, the properties that matter: machine and accelerators, driver
installation, taints, server image and flags, probes, exposure), the sizing verdict, $/h and
$/month, and the stack outputs. Secrets show as ``[secret]``. ``--json`` prints the same as one
JSON document for machines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from stacks.cluster_spec import ClusterSpec
from stacks.errors import SpecErrors
from stacks.loader import all_stack_files, resolve_stack_arg

from .program_run import ProgramError, ProgramRun, Registered, run_stack_file, shown

HOURS_PER_MONTH = 730  # GCP's billing month
EXIT_INVALID = 2


def _get(d: Any, path: str, default: Any = None) -> Any:
    for part in path.split("."):
        if isinstance(d, list):
            d = d[int(part)] if part.isdigit() and int(part) < len(d) else None
        elif isinstance(d, dict):
            d = d.get(part)
        else:
            return default
        if d is None:
            return default
    return d


def _cluster(i: dict[str, Any]) -> dict[str, Any]:
    mon = i.get("monitoringConfig") or {}
    return {
        "location": i.get("location"),
        "releaseChannel": _get(i, "releaseChannel.channel"),
        "workloadPool": _get(i, "workloadIdentityConfig.workloadPool"),
        "managedPrometheus": _get(mon, "managedPrometheus.enabled"),
        "metrics": mon.get("enableComponents"),
        "privateNodes": bool(_get(i, "privateClusterConfig.enablePrivateNodes")),
        "removeDefaultNodePool": i.get("removeDefaultNodePool"),
        "deletionProtection": i.get("deletionProtection"),
    }


def _node_pool(i: dict[str, Any]) -> dict[str, Any]:
    nc = i.get("nodeConfig") or {}
    out: dict[str, Any] = {"machineType": nc.get("machineType")}
    for acc in nc.get("guestAccelerators") or []:
        out["accelerators"] = f"{acc.get('count')} x {acc.get('type')}"
        out["driver"] = _get(acc, "gpuDriverInstallationConfig.gpuDriverVersion")
    if nc.get("taints"):
        out["taints"] = [f"{t['key']}={t['value']}:{t['effect']}" for t in nc["taints"]]
    if "autoscaling" in i:
        a = i["autoscaling"]
        low, high = a.get("totalMinNodeCount", 0), a.get("totalMaxNodeCount")
        out["autoscaling"] = f"{low}..{high} ({a.get('locationPolicy')})"
    else:
        out["nodeCount"] = i.get("nodeCount")
    out.update(spot=nc.get("spot", False), reservation=_get(nc, "reservationAffinity.consumeReservationType"),
               localSsd=_get(nc, "ephemeralStorageLocalSsdConfig.localSsdCount", 0), diskGB=nc.get("diskSizeGb"),
               serviceAccount=nc.get("serviceAccount"), metadata=_get(nc, "workloadMetadataConfig.mode"))
    if i.get("placementPolicy"):
        out["placement"] = _get(i, "placementPolicy.type")
    if nc.get("flexStart"):
        out["flexStart"] = True
    return out


def _container(c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"image": c.get("image")}
    cmd = [*(c.get("command") or []), *(c.get("args") or [])]
    if cmd:
        text = " ".join(str(a) for a in cmd)
        out["command" if c.get("command") else "args"] = text if len(text) < 900 else text[:900] + " ..."
    limits = _get(c, "resources.limits") or {}
    for res in ("nvidia.com/gpu", "google.com/tpu"):
        if res in limits:
            out[res] = limits[res]
    probes = [f"{p.removesuffix('Probe')} {_get(c, p + '.httpGet.path')}:{_get(c, p + '.httpGet.port')}"
              for p in ("startupProbe", "readinessProbe", "livenessProbe") if c.get(p)]
    if probes:
        out["probes"] = probes
    env = [e["name"] + ("<-secret" if "secretKeyRef" in (e.get("valueFrom") or {}) else "")
           for e in c.get("env") or []]
    if env:
        out["env"] = env
    return out


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, c in enumerate(spec.get("initContainers") or []):
        out[f"init[{i}] {c.get('name')}"] = _container(c)
    for c in spec.get("containers") or []:
        out[f"container {c.get('name')}"] = _container(c)
    out["nodeSelector"] = spec.get("nodeSelector")
    out["tolerations"] = [f"{t.get('key')}={t.get('value')}:{t.get('effect')}" for t in spec.get("tolerations") or []]
    return out


def _deployment(i: dict[str, Any]) -> dict[str, Any]:
    return {"replicas": _get(i, "spec.replicas"), **_pod(_get(i, "spec.template.spec") or {})}


def _service(i: dict[str, Any]) -> dict[str, Any]:
    s = i.get("spec") or {}
    out = {"type": s.get("type"), "ports": [f"{p.get('name')} {p.get('port')}->{p.get('targetPort')}"
                                           for p in s.get("ports") or []]}
    if s.get("loadBalancerSourceRanges"):
        out["loadBalancerSourceRanges"] = s["loadBalancerSourceRanges"]
    if _get(i, "metadata.annotations"):
        out["annotations"] = _get(i, "metadata.annotations")
    return out


def _secret(i: dict[str, Any]) -> dict[str, Any]:
    data = i.get("stringData")
    return {"name": _get(i, "metadata.name"), "stringData": data}


PROPERTIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "gcp:container/cluster:Cluster": _cluster,
    "gcp:container/nodePool:NodePool": _node_pool,
    "kubernetes:apps/v1:Deployment": _deployment,
    "kubernetes:batch/v1:Job": lambda i: _pod(_get(i, "spec.template.spec") or {}),
    "kubernetes:core/v1:Service": _service,
    "kubernetes:core/v1:Secret": _secret,
    "pulumi:pulumi:StackReference": lambda i: {"reads": i.get("name")},
    "kubernetes:monitoring.googleapis.com/v1:PodMonitoring": lambda i: {"endpoints": _get(i, "spec.endpoints")},
    "gcp:projects/iAMMember:IAMMember": lambda i: {"role": i.get("role")},
    "gcp:storage/bucketIAMMember:BucketIAMMember": lambda i: {"role": i.get("role")},
    "gcp:serviceaccount/iAMMember:IAMMember": lambda i: {"role": i.get("role"), "member": i.get("member")},
    "gcp:serviceaccount/account:Account": lambda i: {"accountId": i.get("accountId")},
    "gcp:storage/bucket:Bucket": lambda i: {"name": i.get("name"), "location": i.get("location")},
    "kubernetes:core/v1:ServiceAccount": lambda i: {"name": _get(i, "metadata.name"),
                                                    "annotations": _get(i, "metadata.annotations")},
    "kubernetes:core/v1:Namespace": lambda i: {"name": _get(i, "metadata.name")},
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": lambda i: {
        "scales": _get(i, "spec.scaleTargetRef.name"),
        "replicas": f"{_get(i, 'spec.minReplicas')}-{_get(i, 'spec.maxReplicas')}",
        "metric": [f"{m['pods']['metric']['name']} avg {m['pods']['target']['averageValue']}"
                   for m in _get(i, "spec.metrics") or [] if m.get("type") == "Pods"]},
    "pulumi:providers:kubernetes": lambda i: {"kubeconfig": i.get("kubeconfig")},
}


def key_properties(r: Registered) -> dict[str, Any]:
    """The properties the plan shows for a resource (secrets already replaced by ``[secret]``)."""
    extract = PROPERTIES.get(r.type)
    props = extract(shown(r.inputs)) if extract else {}
    props = {k: v for k, v in props.items() if v not in (None, [], {})}
    if r.custom_timeouts:
        props["customTimeouts"] = r.custom_timeouts
    return props


def cluster_lines(s: ClusterSpec) -> list[str]:
    return [
        f"cluster stack: {s.names.cluster} in {s.project}/{s.location}; serving stacks join it with "
        f"`gke-llm-bench:cluster: {{fromStack: <organization>/gke-llm-bench/{s.name}}}`",
        f"cost: ${s.usd_per_hour:,.2f}/h, ${s.usd_per_hour * HOURS_PER_MONTH:,.0f}/month ({HOURS_PER_MONTH} h): "
        f"GKE fee and system pool ({s.cluster.system_machine_type}); every serving stack is charged it too",
        *(f"warning: {w}" for w in s.warnings),
    ]


def sizing_lines(run: ProgramRun) -> list[str]:
    if isinstance(run.spec, ClusterSpec):
        return cluster_lines(run.spec)
    s, z = run.spec, run.spec.sizing
    verdict = "fits" if z.fits else "DOES NOT FIT"
    return [
        f"{s.model.hf_id} ({s.checkpoint}) {s.precision.name}, KV {s.kv_cache_dtype}; "
        f"{s.server.name} TP={s.tensor_parallel} x{s.replicas} on {s.node_count} x {s.machine.name} "
        f"({s.chips_per_node} x {s.machine.chip.name})",
        f"sizing: {verdict}: weights {z.weight_gb:.1f} GB = {z.weight_share:.0%} of {z.group_memory_gb:g} GB "
        "(limit 80 %); "
        f"KV cache {z.kv_gib:.1f} GiB ({z.kv_share:.0%}) = {z.kv_tokens:,} tokens, "
        f"{z.max_seqs_at_max_len} sequences at {z.max_model_len}",
        f"cost: ${s.usd_per_hour_all_in:,.2f}/h all-in, ${s.usd_per_hour_all_in * HOURS_PER_MONTH:,.0f}/month "
        f"({HOURS_PER_MONTH} h): accelerators ${s.usd_per_hour:,.2f}/h{' spot' if s.spot else ''} + cluster "
        f"${s.usd_per_hour_cluster:,.2f}/h (GKE fee and system pool); source: {s.price_source}",
        *(f"warning: {w}" for w in s.warnings),
    ]


def plan_document(run: ProgramRun) -> dict[str, Any]:
    """Everything the plan shows, as JSON-ready data."""
    s = run.spec
    resources = [
        {"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent or None,
         "component": r.is_component, "properties": key_properties(r), "inputs": shown(r.inputs),
         "customTimeouts": r.custom_timeouts or None}
        for r in run.resources
    ]
    if isinstance(s, ClusterSpec):
        return {"stack": run.stack, "source": s.source, "role": "cluster",
                "cost": {"usdPerHour": round(s.usd_per_hour, 4),
                         "usdPerMonth": round(s.usd_per_hour * HOURS_PER_MONTH, 2), "hoursPerMonth": HOURS_PER_MONTH},
                "warnings": list(s.warnings), "placeholderSecrets": sorted(run.placeholders),
                "resources": resources, "outputs": run.outputs, "seconds": round(run.seconds, 3)}
    return {
        "stack": run.stack,
        "source": s.source,
        "role": "serving",
        "sizing": s.sizing.as_dict(),
        "cost": {"usdPerHour": round(s.usd_per_hour, 4), "usdPerMonth": round(s.usd_per_hour * HOURS_PER_MONTH, 2),
                 "usdPerHourAllIn": round(s.usd_per_hour_all_in, 4),
                 "usdPerMonthAllIn": round(s.usd_per_hour_all_in * HOURS_PER_MONTH, 2),
                 "clusterUsdPerHour": round(s.usd_per_hour_cluster, 4),
                 "hoursPerMonth": HOURS_PER_MONTH, "spot": s.spot, "source": s.price_source},
        "warnings": list(s.warnings),
        "placeholderSecrets": sorted(run.placeholders),
        "resources": resources,
        "outputs": run.outputs,
        "seconds": round(run.seconds, 3),
    }


def _add_props(node: Tree, props: dict[str, Any]) -> None:
    for key, value in props.items():
        if isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values()):
            child = node.add(f"[cyan]{key}[/cyan]")
            _add_props(child, value)
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            node.add(f"[cyan]{escape(key)}[/cyan]: {escape(text)}", highlight=False)


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def render(run: ProgramRun, console: Console) -> None:
    console.rule(f"[bold]{escape(run.stack)}[/bold]  {escape(_relative(run.spec.source))}")
    for line in sizing_lines(run):
        console.print(line, highlight=False, markup=False)
    if run.placeholders:
        console.print(f"secrets given as placeholders (shown [secret]): {', '.join(sorted(run.placeholders))}",
                      highlight=False, markup=False)
    root = Tree(f"[bold]resources[/bold] ({len(run.resources)})")
    urns = {r.urn for r in run.resources}
    children: dict[str, list[Registered]] = {}
    for r in run.resources:
        children.setdefault(r.parent if r.parent in urns else "", []).append(r)

    def add(tree: Tree, parent: str) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            label = f"[bold]{r.type}[/bold] {r.name}" if r.is_component else f"{r.type} [green]{r.name}[/green]"
            node = tree.add(label)
            _add_props(node, key_properties(r))
            add(node, r.urn)

    add(root, "")
    console.print(root)
    out = Tree("[bold]outputs[/bold]")
    for key, value in run.outputs.items():
        if key == "spec":
            out.add("spec: (the spec's summary; see --json)")
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            out.add(f"{key}: {escape(text)}", highlight=False)
    console.print(out)


def run_named(args: Sequence[str], all_stacks: bool) -> tuple[list[ProgramRun], list[str]]:
    """Run the program for each named stack (or every committed one); errors as rendered text."""
    targets = list(all_stack_files()) if all_stacks or not args else list(args)
    runs, errors = [], []
    for arg in targets:
        try:
            name, path = resolve_stack_arg(arg)
            runs.append(run_stack_file(Path(path), name))
        except SpecErrors as exc:
            errors.append(exc.render())
        except ProgramError as exc:
            errors.append(f"{arg}: the program failed:\n{exc}")
    return runs, errors


def cmd_plan(console: Console, args: Sequence[str], as_json: bool, all_stacks: bool) -> int:
    runs, errors = run_named(args, all_stacks)
    if as_json:
        print(json.dumps({"stacks": [plan_document(r) for r in runs], "errors": errors}, indent=2, default=str))
    else:
        for r in runs:
            render(r, console)
        for e in errors:
            console.print(f"[red]error[/red] {e}", highlight=False)
        total = sum(r.seconds for r in runs)
        console.print(f"{len(runs)} stack(s) planned in {total:.2f} s (program runs under mocks)"
                      + (f", {len(errors)} failed" if errors else ""), style="bold red" if errors else "bold green")
    return EXIT_INVALID if errors else 0
