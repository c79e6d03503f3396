"""The search space: every setup the project could deploy for the query's model, as stack configs.

Machine shape × precision (weights and KV cache) × server × tensor parallelism. Each candidate is
written as the flat config a stack file holds and resolved by the project's own ``spec_from_config``,
so a candidate exists only if ``stacks check`` would accept it: the sizing rules (weights within
the 80 % limit, KV capacity for the longest request), the server × precision × GPU matrix, the
model families each server runs, provisioning (shapes sold only as spot or flex-start) and the
location rules. What the resolver refuses becomes a ``Rejection`` with its first reason, for
``--explain``.

Per GPU type and count only the cheapest eligible machine shape is kept: the performance model
depends on the accelerators, not on the host's vCPUs, so a dearer host with the same GPUs could
never rank higher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.catalog import Catalog, MachineType, load_catalog
from stacks.config import PROJECT
from stacks.errors import SpecErrors
from stacks.hf_config import read_architecture
from stacks.loader import spec_from_config
from stacks.precision import PRECISIONS
from stacks.spec import StackSpec

from .query import Query

#: weight precisions searched. fp16 is bf16's twin and gptq awq's (same bytes, same kernels in the model):
#: only the first of each pair is tried
SEARCHED_PRECISIONS = ("bf16", "fp8", "int8", "awq", "mxfp4", "nvfp4")
DEFAULT_CONTEXT = 4096  # maxModelLen of a candidate whose workload is shorter


@dataclass(frozen=True)
class Candidate:
    """One deployable setup: its stack config (one node, every replica the node holds) and its spec."""

    config: dict[str, Any]
    spec: StackSpec
    provisioning: str  # "on-demand" | "spot" | "flex-start"

    @property
    def replicas_per_node(self) -> int:
        return self.spec.chips_per_node // self.spec.tensor_parallel

    @property
    def label(self) -> str:
        s = self.spec
        kv = "" if s.kv_cache_dtype == "auto" else f", KV {s.kv_cache_dtype}"
        return (f"{s.machine.name} ({s.chips_per_node}x {s.machine.chip.name}) {s.server.name} {s.precision.name}{kv} "
                f"TP {s.tensor_parallel}")

    @property
    def replica_key(self) -> tuple[Any, ...]:
        """What one replica's performance depends on: machines with the same chips serve identical replicas."""
        s = self.spec
        return (s.accelerator, s.server.name, s.image, s.precision.name, s.kv_cache_dtype, s.tensor_parallel,
                s.max_batch, s.max_model_len, s.max_batched_tokens)

    @property
    def sort_key(self) -> tuple[Any, ...]:
        s = self.spec
        return (s.machine.name, s.server.name, s.precision.name, s.kv_cache_dtype, s.tensor_parallel)


@dataclass(frozen=True)
class Rejection:
    """A setup that is not deployable (or, from the search, misses the SLO), with the reason."""

    label: str
    reason: str
    usd_per_hour: float  # what the shape would cost: rejections are listed cheapest first
    kind: str  # "memory" | "provisioning" | "precision" | "server" | "slo" | "location" | "unvalidated" | "other"


def _kind(key: str, message: str) -> str:
    """What kind of rule refused a setup, from the config key the resolver names."""
    if "for weights" in message or "KV" in message or "maxModelLen" in key:
        return "memory"
    if "spot or flex-start" in message:
        return "provisioning"
    if key.startswith("gcp:"):
        return "location"
    if key.endswith(("precision.weights", "precision.kvCache")):
        return "precision"
    if key.endswith(("server.kind", "model.name", "server.tensorParallel")):
        return "server"
    return "other"


def _shapes(q: Query, catalog: Catalog) -> tuple[list[tuple[MachineType, str]], list[Rejection]]:
    """The cheapest eligible machine per (chip, count), with how it is provisioned."""
    groups: dict[tuple[str, int], list[MachineType]] = {}
    for m in catalog.machines.values():
        groups.setdefault((m.chip.key, m.count), []).append(m)
    out: list[tuple[MachineType, str]] = []
    rejected: list[Rejection] = []
    for (_chip, _count), machines in sorted(groups.items()):
        if q.spot:
            eligible = [(m, "spot") for m in machines if m.spot_usd_h is not None]
            why = "the catalog has no sourced spot price for {} (fix: drop --spot to compare it on demand)"
        else:
            eligible = [(m, "on-demand") for m in machines if m.on_demand]
            eligible += [(m, "flex-start") for m in machines if not m.on_demand and q.flex_start]
            why = "{} is sold only as spot or flex-start capacity (fix: drop --no-flex-start, or add --spot)"
        if not eligible:
            m = min(machines, key=lambda x: x.on_demand_usd_h)
            rejected.append(Rejection(f"{m.name} ({m.count}x {m.chip.name})", why.format(m.name), m.on_demand_usd_h,
                                      "provisioning"))
            continue
        out.append(min(eligible, key=lambda e: (_price(e[0], e[1]), e[0].name)))
    return out, rejected


def _price(machine: MachineType, provisioning: str) -> float:
    """$/h of the shape as provisioned (``_shapes`` admits spot only where a spot price is known)."""
    spot = machine.spot_usd_h if provisioning == "spot" else None
    return spot if spot is not None else machine.on_demand_usd_h


def _zone(q: Query, catalog: Catalog, machine: MachineType) -> str | None:
    """The query's zone, else the first zone the catalog lists for this accelerator in the region, else
    ``<region>-a`` (the committed stacks' convention for us-central1)."""
    if q.zone:
        return q.zone
    offered = catalog.regions.accelerator_zones.get(machine.chip.key) or ()
    here = [z for z in offered if z.startswith(q.region + "-")]
    return here[0] if here else f"{q.region}-a"


def stack_config(q: Query, machine: MachineType, provisioning: str, server: str, precision: str, kv: str, tp: int,
                 *, replicas: int, nodes: int = 1, max_batch: int = 256) -> dict[str, Any]:
    """The flat stack config (``gcp:*`` and ``gke-llm-bench:*`` keys) of one setup."""
    catalog = load_catalog()
    accelerator: dict[str, Any] = ({"tpu": {"topology": machine.topology}} if machine.kind == "tpu"
                                   else {"machineType": machine.name})
    accelerator["nodeCount"] = nodes
    if provisioning == "spot":
        accelerator["spot"] = True
    elif provisioning == "flex-start":
        accelerator["queuedProvisioning"] = True
    srv: dict[str, Any] = {"kind": server, "tensorParallel": tp, "maxBatch": max_batch,
                           "maxModelLen": max(DEFAULT_CONTEXT, q.max_total)}
    if replicas > 1:
        srv["replicas"] = replicas
    flat: dict[str, Any] = {
        "gcp:project": q.project, "gcp:region": q.region,
        f"{PROJECT}:cluster": {"deletionProtection": False},
        f"{PROJECT}:accelerator": accelerator,
        f"{PROJECT}:model": dict(q.model),
        f"{PROJECT}:precision": precision if kv == "auto" else {"weights": precision, "kvCache": kv},
        f"{PROJECT}:server": srv,
    }
    zone = _zone(q, catalog, machine)
    if zone:
        flat["gcp:zone"] = zone
    if q.weights_share_max != 0.8:
        flat[f"{PROJECT}:sizing"] = {"weightsShareMax": q.weights_share_max}
    return flat


def _stored_precisions(q: Query, catalog: Catalog) -> set[str] | None:
    """The pre-quantized formats a checkpoint of the model exists in (the catalog's ``quantized``, or
    the config file's ``quantization_config``); None when the query names its own checkpoint.
    Formats with no checkpoint are not searched: each would only be refused for the want of one."""
    m = q.model
    if m.get("configFile"):
        hf = read_architecture(json.loads(Path(m["configFile"]).read_text()), str(m.get("hfId", "")))
        return {hf.quantization} if hf.quantization else set()
    if m.get("name") and m.get("hfId"):
        return None
    model = catalog.models.get(str(m.get("name", ""))) or catalog.model_by_hf_id(str(m.get("hfId", "")))
    return set(model.quantized) if model else set()


def enumerate_candidates(q: Query) -> tuple[list[Candidate], list[Rejection]]:
    """Every deployable setup for the query, and the reasons the others are not."""
    catalog = load_catalog()
    shapes, rejected = _shapes(q, catalog)
    stored = _stored_precisions(q, catalog)
    precisions = [p for p in SEARCHED_PRECISIONS
                  if not PRECISIONS[p].pre_quantized or stored is None or p in stored or p in q.precisions]
    candidates: list[Candidate] = []
    servers = [s for s in catalog.servers.values() if not q.servers or s.name in q.servers]
    for machine, provisioning in shapes:
        price = _price(machine, provisioning)
        for server in servers:
            if server.accelerator != machine.kind:
                continue
            for precision in precisions:
                if precision not in server.precisions or (q.precisions and precision not in q.precisions):
                    continue
                for kv in ("auto", *(["fp8"] if "fp8" in server.kv_cache_dtypes else [])):
                    tp = 1
                    while tp <= machine.count:
                        flat = stack_config(q, machine, provisioning, server.name, precision, kv, tp,
                                            replicas=machine.count // tp)
                        label = (f"{machine.name} ({machine.count}x {machine.chip.name}) {server.name} {precision}"
                                 f"{'' if kv == 'auto' else ', KV ' + kv} TP {tp}")
                        try:
                            spec = spec_from_config(flat, "recommend", source="recommend")
                        except SpecErrors as exc:
                            first = exc.errors[0]
                            rejected.append(Rejection(label, f"{first.key}: {first.message}", price,
                                                      _kind(first.key, first.message)))
                        else:
                            candidates.append(Candidate(flat, spec, provisioning))
                        tp *= 2
    candidates.sort(key=lambda c: c.sort_key)
    return candidates, _dedupe(rejected)


def _dedupe(rejected: list[Rejection]) -> list[Rejection]:
    """One line per reason and price: the same refusal for every TP / KV variant of a shape says nothing new."""
    seen: set[tuple[str, float]] = set()
    out = []
    for r in sorted(rejected, key=lambda r: (r.usd_per_hour, r.label)):
        key = (r.reason, r.usd_per_hour)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out
