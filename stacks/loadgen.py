"""In-cluster load generation (``gke-llm-bench:loadgen``): what the Indexed Job is, where it runs, what
it may touch, and what it costs.

A load test run from a laptop through ``kubectl port-forward`` measures the tunnel as much as the
server, and one process tops out at a few thousand requests per second. So a stack may declare a
load generator next to its server: ``pods`` load-tester pods in a Kubernetes Indexed Job on a CPU
pool of their own (never the accelerator nodes), each running its share of one seeded schedule
(``loadtest/pods.py``) and streaming its results to a Cloud Storage bucket that its service account
may only create objects in. ``python -m loadtest merge gs://<bucket>/<runId>`` then makes one run.

The pods are packed onto the pool's machines by what GKE leaves allocatable
(cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes: CPU reserved 6 % of the first
core, 1 % of the next, 0.5 % of the next 2, 0.25 % above 4; memory 25 % of the first 4 GiB, 20 % of
the next 4, 10 % of the next 8, 6 % of the next 112, plus 100 MiB for eviction), less an allowance
for GKE's own DaemonSets on every node (logging, metrics, kube-proxy: ``DAEMONSET_CPU`` /
``DAEMONSET_MEMORY_GB``, an estimate).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .config import LoadgenConfig
from .errors import SpecError

#: the load tester's image must be pinned by digest: a tag can move between two runs being compared
IMAGE = re.compile(r"^[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/[a-z0-9._/-]+(?::[\w.-]+)?@sha256:[0-9a-f]{64}$")
TAGGED = re.compile(r"^[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/[a-z0-9._/-]+:[\w.-]+$")
#: the Job is named loadgen-<runId>; pods add -<index>-<suffix>: keep the whole a DNS label
RUN_ID = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,38}[a-z0-9])?$")
MAX_PODS = 256
#: flags the Job sets itself: where the server is, which share a pod is, where results go
MANAGED_FLAGS = ("--stack", "--target", "--outputs", "--endpoint", "--dialect", "--model", "--in-cluster", "--pods",
                 "--pod-index", "--start-at", "--results-dir", "--run-id", "--workers", "--metrics-url",
                 "--no-progress")
UPLOADER_CPU = 0.25  # the uploader sidecar (loadtest upload), per pod
UPLOADER_MEMORY_GB = 0.25
DAEMONSET_CPU = 0.4  # GKE's per-node DaemonSets (estimate, see the module docstring)
DAEMONSET_MEMORY_GB = 0.5
_STANDARD = re.compile(r"^[a-z0-9]+-standard-(\d+)$")  # N vCPUs, 4 GiB per vCPU


def allocatable(vcpus: int, memory_gb: float) -> tuple[float, float]:
    """What GKE leaves for pods on a node (vCPUs, GiB), before DaemonSets."""
    cpu_reserved = 0.06 * min(vcpus, 1) + 0.01 * min(max(vcpus - 1, 0), 1) + 0.005 * min(max(vcpus - 2, 0), 2) \
        + 0.0025 * max(vcpus - 4, 0)
    bands = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02))
    left, mem_reserved = memory_gb, 0.0
    for size, share in bands:
        take = min(left, size)
        mem_reserved += take * share
        left -= take
    return vcpus - cpu_reserved, memory_gb - mem_reserved - 0.1


@dataclass(frozen=True)
class LoadgenSpec:
    pods: int
    image: str
    run_id: str
    args: tuple[str, ...]
    machine_type: str
    cpu: float
    memory_gb: int
    start_delay: int
    pods_per_node: int
    nodes_per_zone: int
    zones: int
    usd_per_node_hour: float
    bucket: str
    service_account: str  # GCP service account id
    pool: str  # the CPU node pool's name

    @property
    def job_name(self) -> str:
        return f"loadgen-{self.run_id}"

    @property
    def results_url(self) -> str:
        return f"gs://{self.bucket}/{self.run_id}"

    @property
    def usd_per_hour(self) -> float:
        """The load generator's own pool while it exists (not part of the serving stack's $/h)."""
        return self.usd_per_node_hour * self.nodes_per_zone * self.zones

    def as_dict(self) -> dict[str, Any]:
        return {"pods": self.pods, "runId": self.run_id, "job": self.job_name, "image": self.image,
                "args": list(self.args), "machineType": self.machine_type, "podsPerNode": self.pods_per_node,
                "nodes": self.nodes_per_zone * self.zones, "cpuPerPod": self.cpu, "memoryGbPerPod": self.memory_gb,
                "startDelayS": self.start_delay, "bucket": self.bucket, "results": self.results_url,
                "merge": f"python -m loadtest merge {self.results_url} --results-dir results",
                "usdPerHour": round(self.usd_per_hour, 4)}


def resolve_loadgen(cfg: LoadgenConfig | None, key: str, prices: dict[str, float], zones: int, bucket: str,
                    service_account: str, pool: str, *, deploying: bool,
                    ) -> tuple[LoadgenSpec | None, list[SpecError], list[str]]:
    """The load generator, or every reason it cannot run (``key``: ``gke-llm-bench:loadgen``), and
    warnings. ``deploying``: a real ``pulumi up``/``preview``, where the image must be pinned by
    digest; the offline plan accepts a tag (a committed stack cannot know the digest of the image
    its user will build) and warns."""
    if cfg is None:
        return None, [], []
    errors: list[SpecError] = []
    warnings: list[str] = []
    if cfg.pods > MAX_PODS:
        errors.append(SpecError(f"{key}.pods", f"{cfg.pods} pods", f"at most {MAX_PODS} (each sustains thousands of "
                                                                   "requests per second)"))
    if not IMAGE.match(cfg.image):
        fix = "build docker/loadtest.Dockerfile, push it, and give REGISTRY/PATH@sha256:<digest> (docs/in-cluster.md)"
        if deploying or not TAGGED.match(cfg.image):
            errors.append(SpecError(f"{key}.image", f'"{cfg.image}" is not pinned by digest', fix))
        else:
            warnings.append(f"{key}.image {cfg.image} is a tag: pin it by digest before `pulumi up` ({fix})")
    if not RUN_ID.match(cfg.run_id):
        errors.append(SpecError(f"{key}.runId", f'"{cfg.run_id}" cannot name a Job',
                                "lowercase letters, digits and '-', at most 40 characters, e.g. r1"))
    errors += _args_errors(cfg.args, f"{key}.args")
    price = prices.get(cfg.machine_type)
    if price is None:
        errors.append(SpecError(f"{key}.machineType", f"{cfg.machine_type} has no catalog price",
                                f"use one of {', '.join(sorted(prices))} (stacks/catalog/cluster.yaml)"))
    per_node = 0
    if (m := _STANDARD.match(cfg.machine_type)) is not None:
        vcpus = int(m.group(1))
        cpu, memory = allocatable(vcpus, 4.0 * vcpus)
        per_node = int(min((cpu - DAEMONSET_CPU) // (cfg.cpu + UPLOADER_CPU),
                           (memory - DAEMONSET_MEMORY_GB) // (cfg.memory_gb + UPLOADER_MEMORY_GB)))
        if per_node < 1:
            errors.append(SpecError(f"{key}.cpu", f"a pod of {cfg.cpu:g} vCPU / {cfg.memory_gb} GB (+ its uploader) "
                                    f"does not fit on {cfg.machine_type}",
                                    "give a larger machineType or a smaller cpu / memoryGb"))
    elif price is not None:
        errors.append(SpecError(f"{key}.machineType", f"{cfg.machine_type}: vCPUs and memory unknown",
                                "use a *-standard-N machine type"))
    if errors:
        return None, errors, warnings
    assert price is not None
    nodes = math.ceil(cfg.pods / per_node)
    return LoadgenSpec(pods=cfg.pods, image=cfg.image, run_id=cfg.run_id, args=tuple(cfg.args),
                       machine_type=cfg.machine_type, cpu=cfg.cpu, memory_gb=cfg.memory_gb,
                       start_delay=cfg.start_delay, pods_per_node=per_node,
                       # GKE's node count is per zone: the nodes are spread over the pool's zones
                       nodes_per_zone=math.ceil(nodes / zones), zones=zones, usd_per_node_hour=price, bucket=bucket,
                       service_account=service_account, pool=pool), [], warnings


def _args_errors(args: list[str], key: str) -> list[SpecError]:
    errors = []
    flags = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    for flag in flags:
        if flag in MANAGED_FLAGS:
            errors.append(SpecError(key, f"{flag} is set by the load generator's Job",
                                    f"drop it (the Job sets {', '.join(MANAGED_FLAGS[:4])}, ... itself)"))
    if "--mode" not in flags:
        errors.append(SpecError(key, "no --mode", "e.g. [--mode, rate, --levels, '10,20,40', "
                                                  "--requests-per-level, '2000']"))
    else:
        i = next(i for i, a in enumerate(args) if a.split("=", 1)[0] == "--mode")
        mode = args[i].split("=", 1)[1] if "=" in args[i] else (args[i + 1] if i + 1 < len(args) else "")
        if mode == "sweep":
            errors.append(SpecError(key, "--mode sweep picks each level from the last one's results, which pods "
                                         "cannot share", "list the levels: --mode rate --levels 8,16,32"))
    return errors
