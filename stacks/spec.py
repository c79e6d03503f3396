"""``StackSpec``: the one resolved, validated description of a serving stack (the record).

``stacks.resolve`` builds it from the raw ``StackConfig``; its derived properties are the
deployment decisions (budgets, timeouts, resources) the components translate. Components, the load
tester, the simulated endpoint and the analysis read this object; none of them re-decides anything
it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .autoscale import AutoscaleSpec
from .catalog import MachineType, ModelArch, ServerKind
from .cluster_spec import ClusterSpec, zones_used
from .config import PROJECT, ClusterConfig
from .loadgen import LoadgenSpec
from .lora import LoraSpec
from .names import ResourceNames
from .precision import Precision
from .serving import KEY_GUARDS_V1_ONLY, MaxTextModel
from .sizing import Sizing
from .summary import spec_summary

DEFAULT_MAX_MODEL_LEN_CAP = 8192  # default context when the model allows more: keeps KV per sequence sane
DEFAULT_BATCHED_TOKENS = 8192  # vLLM's default max_num_batched_tokens with chunked prefill
DOWNLOAD_GBPS = 0.1  # GB/s one pod pulls from the Hugging Face Hub (conservative; real runs see 0.1-0.5)
LOAD_GBPS = 1.0  # GB/s per chip from local disk into accelerator memory
NODE_SCALE_UP_S = 900  # accelerator node provisioning + GKE driver install before a pod can start


def config_key(key: str) -> str:
    """``"server.maxBatch"`` -> ``"gke-llm-bench:server.maxBatch"``: the key as written in the stack file,
    which every error message names."""
    return f"{PROJECT}:{key}"


@dataclass(frozen=True)
class StackSpec:
    name: str
    source: str
    # where
    project: str
    region: str
    zone: str | None
    node_locations: tuple[str, ...]
    cluster: ClusterConfig
    names: ResourceNames
    # what runs on
    machine: MachineType
    node_count: int  # fixed size, or the autoscaling max
    autoscaling: tuple[int, int] | None
    spot: bool
    reservation: str  # "none" | "any" | <name>
    compact_placement: bool
    queued_provisioning: bool
    driver_version: str
    # what is served
    model: ModelArch
    checkpoint: str  # the HF repo the server loads (a pre-quantized one for awq/gptq)
    revision: str
    served_name: str
    precision: Precision
    kv_cache_dtype: str
    # how it is served
    server: ServerKind
    image: str
    namespace: str
    tensor_parallel: int
    replicas: int
    max_batch: int
    max_model_len: int
    max_batched_tokens: int
    gpu_memory_utilization: float
    prefix_caching: bool
    chunked_prefill: bool
    extra_args: tuple[str, ...]
    # how it is reached
    exposure: str
    allowlist: tuple[str, ...]
    service_port: int
    hf_token_key: str | None  # config key holding the HF token (a Pulumi secret), when the model needs one
    api_key_key: str | None  # config key holding the API key (a Pulumi secret), when one is used
    # what it costs and whether it fits
    usd_per_node_hour: float
    price_source: str
    sizing: Sizing
    warnings: tuple[str, ...] = field(default=())
    kaggle_key_key: str | None = None  # config key holding kaggle.json (a Pulumi secret), for JetStream Gemma
    # the cluster's own cost (catalog/cluster.yaml): None when the system machine type has no catalog price
    system_usd_per_node_hour: float | None = None
    cluster_fee_usd_h: float = 0.0
    maxtext: MaxTextModel | None = None  # JetStream: how MaxText names the model and where its checkpoint goes
    lora: LoraSpec | None = None  # LoRA adapters served beside the base model (stacks/lora.py)
    loadgen: LoadgenSpec | None = None  # in-cluster load generation (stacks/loadgen.py)
    autoscale: AutoscaleSpec | None = None  # a HorizontalPodAutoscaler on a server metric (stacks/autoscale.py)

    @property
    def accelerator(self) -> str:
        return self.machine.chip.key

    @property
    def accelerator_kind(self) -> str:
        return self.machine.kind

    @property
    def chips_per_node(self) -> int:
        return self.machine.count

    @property
    def zones_used(self) -> int:
        """Zones the accelerator pool spans (GKE's node count is per zone)."""
        return zones_used(self.node_locations)

    @property
    def shared_cluster(self) -> str | None:
        """The cluster stack this one joins (``cluster.fromStack``), or None."""
        return self.cluster.from_stack

    @property
    def cluster_spec(self) -> ClusterSpec:
        """The cluster this stack runs in, as if it declared it itself: what the cluster component
        creates for an isolated stack, and what every stack is charged for (``usd_per_hour_cluster``)."""
        return ClusterSpec(name=self.name, source=self.source, project=self.project, region=self.region,
                           zone=self.zone, node_locations=self.node_locations, cluster=self.cluster,
                           names=self.names, system_usd_per_node_hour=self.system_usd_per_node_hour,
                           cluster_fee_usd_h=self.cluster_fee_usd_h)

    @property
    def usd_per_hour(self) -> float:
        """What the accelerator pool costs per hour at ``node_count`` nodes in each zone it spans."""
        return self.usd_per_node_hour * self.node_count * self.zones_used

    @property
    def usd_per_hour_cluster(self) -> float:
        """What a cluster for this stack costs per hour besides its accelerators: GKE's management fee
        and the CPU system pool (``SYSTEM_POOL_NODES`` per zone).

        Every stack is charged a whole cluster, also one that joins another stack's cluster
        (``cluster.existing``) for a benchmark: the answer compares setups as they would run in
        production, alone, and splitting one benchmark cluster's fee would make a stack cheaper for
        having been measured beside others.
        """
        return self.cluster_spec.usd_per_hour

    @property
    def usd_per_hour_all_in(self) -> float:
        """The accelerator pool plus the cluster's own cost: what running this stack costs per hour."""
        return self.usd_per_hour + self.usd_per_hour_cluster

    @property
    def usd_per_replica_hour(self) -> float:
        """Cost of the chips one replica occupies: the fair basis for tokens per dollar."""
        return self.usd_per_node_hour * self.tensor_parallel / self.chips_per_node

    @property
    def location(self) -> str:
        return self.zone or self.region

    # -- deployment decisions the components translate (they never choose these themselves) ---------
    @property
    def checkpoint_gb(self) -> float:
        """Size of what the server downloads: 16-bit weights, except pre-quantized checkpoints
        (awq, gptq, mxfp4, nvfp4), which download what the GPU holds.

        fp8 / int8 are quantized by the server at load time from the 16-bit checkpoint, so the
        download is the 16-bit size even though the GPU holds half of it.
        """
        if self.precision.pre_quantized:
            return self.sizing.weight_bytes / 1e9
        return self.model.params * 2 / 1e9

    @property
    def model_cache_gb(self) -> int:
        """Scratch space per pod for the model: the download, plus what the server derives from it.

        TensorRT-LLM keeps the converted checkpoint and the built engine beside the download (~3x);
        JetStream reads its converted checkpoint from Cloud Storage and caches only a copy (~1x).
        """
        factor = {"triton-trtllm": 3.0}.get(self.server.name, 1.2)
        return math.ceil(self.checkpoint_gb * factor + 10)

    @property
    def local_ssd_count(self) -> int:
        """Local SSD partitions backing ephemeral storage (the model cache); 0 when the machine has none."""
        return self.machine.local_ssd

    @property
    def boot_disk_type(self) -> str | None:
        """The node boot disk's type (the catalog's, per machine shape); None leaves it to GKE."""
        return self.machine.boot_disk

    @property
    def boot_disk_gb(self) -> int:
        """Node boot disk: images (~30 GB for the server images) plus the model cache when no local SSD."""
        base = 200
        return base if self.local_ssd_count else base + self.model_cache_gb

    @property
    def startup_budget_s(self) -> int:
        """How long the server may take to become ready: download + load (+ engine build / compile).

        Download assumed at DOWNLOAD_GBPS (a conservative Hugging Face throughput from one pod),
        loading at LOAD_GBPS per chip; a TensorRT-LLM engine build and XLA compilation add time.
        """
        download = self.checkpoint_gb / DOWNLOAD_GBPS
        load = self.checkpoint_gb / (LOAD_GBPS * self.tensor_parallel)
        # TensorRT-LLM builds an engine; XLA compiles the serving graphs (JetStream, vLLM's TPU backend)
        build = {"triton-trtllm": 1800, "jetstream": 900, "vllm-tpu": 900}.get(self.server.name, 300)
        return int(math.ceil((download + load + build) / 60) * 60)

    @property
    def auth_proxy(self) -> bool:
        """vLLM's ``--api-key`` guards ``/v1/*`` only, so an external vLLM endpoint is published
        through a sidecar that requires the key on every path (``components/servers/auth_proxy.py``)."""
        return self.exposure == "external" and self.server.name in KEY_GUARDS_V1_ONLY

    @property
    def await_rollout(self) -> bool:
        """Whether ``pulumi up`` waits for the server to become ready. Not when its nodes come from
        queued capacity (flex-start, or spot scaled from zero): that can take hours, so ``pulumi up``
        returns once everything is declared and the rollout is watched with kubectl."""
        from_zero = self.autoscaling is not None and self.autoscaling[0] == 0
        return not (self.queued_provisioning or (self.spot and from_zero))

    @property
    def rollout_timeout_s(self) -> int:
        """Deployment create/update timeout: accelerator node scale-up plus the startup budget."""
        return NODE_SCALE_UP_S + self.startup_budget_s

    @property
    def shm_gb(self) -> int:
        """/dev/shm for NCCL between tensor-parallel ranks (Docker's 64 MB default breaks TP > 1)."""
        return 16 if self.tensor_parallel > 1 else 2

    @property
    def server_resources(self) -> dict[str, dict[str, str]]:
        """CPU / memory requests and limits for the server container: most of the node, minus system pods."""
        m = self.machine
        share = self.tensor_parallel / m.count
        cpu = max(1, int(m.vcpu * share * 0.9) - 1)  # GKE reserves part of each node
        memory = max(8, int(m.memory_gb * share * 0.85) - 4)
        return {"requests": {"cpu": str(cpu), "memory": f"{memory}Gi"}, "limits": {"memory": f"{memory}Gi"}}

    @property
    def pool_labels(self) -> dict[str, str]:
        """Labels on the accelerator nodes (GKE adds cloud.google.com/gke-accelerator itself)."""
        return {"gke-llm-bench/stack": self.name, "gke-llm-bench/pool": "accelerator",
                "gke-llm-bench/server": self.server.name}

    def summary(self) -> dict[str, Any]:
        """The non-secret summary that stack outputs and results files carry (``stacks/summary.py``)."""
        return spec_summary(self)
