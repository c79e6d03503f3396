"""The stack file's schema, exactly as a user writes it in ``stacks/Pulumi.<stack>.yaml``.

Only shape and types are checked here (pydantic): unknown keys, wrong types, out-of-range numbers.
Everything that needs the catalog or crosses fields (does the model fit? does TP divide the heads?)
lives in ``stacks.spec``, which turns this raw config into a resolved ``StackSpec``.

Keys are camelCase in the file (Pulumi's convention) and snake_case in Python.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

PROJECT = "gke-llm-bench"

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class _Section(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, no coercion of strings."""

    # allow_inf_nan=False: `.inf` / `.nan` are valid YAML floats, never a valid price, share or size
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True, frozen=True,
                              allow_inf_nan=False)


class GcpConfig(_Section):
    project: str
    region: str
    zone: str | None = None  # zonal cluster and node pools; default: a regional cluster
    zones: list[str] | None = None  # node locations, when more than one zone is wanted


class ExistingCluster(_Section):
    name: str
    location: str
    project: str | None = None


class ClusterConfig(_Section):
    name: str | None = None  # default: derived from the stack (stacks/names.py), so stacks coexist
    #: a cluster stack (``role: cluster``) to join, by its fully qualified Pulumi name
    #: (``<org>/gke-llm-bench/<stack>``): read through a StackReference, nothing of the cluster is declared
    from_stack: str | None = None
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    private_nodes: bool = False
    deletion_protection: bool = True
    existing: ExistingCluster | None = None
    managed_prometheus: bool = True
    dcgm_metrics: bool = False
    system_machine_type: str = "e2-standard-4"


class Autoscaling(_Section):
    min: NonNegativeInt = 0
    max: PositiveInt = 1


class TpuConfig(_Section):
    topology: str  # "1x1" | "2x2" | "2x4" for v5e


class AcceleratorConfig(_Section):
    gpu: str | None = None
    machine_type: str | None = None
    gpus_per_node: PositiveInt | None = None
    node_count: PositiveInt | None = None
    autoscaling: Autoscaling | None = None
    spot: bool = False
    reservation: str = "none"  # "none" | "any" | <reservation name>
    compact_placement: bool = False
    queued_provisioning: bool = False
    driver_version: Literal["DEFAULT", "LATEST"] = "DEFAULT"
    tpu: TpuConfig | None = None


class ArchitectureConfig(_Section):
    """Architecture of a model not in the catalog (values from its config.json)."""

    params: PositiveInt
    layers: PositiveInt
    hidden: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt
    head_dim: PositiveInt
    ffn: PositiveInt
    vocab: PositiveInt
    max_context: PositiveInt
    family: str = "llama"
    gated: bool = False
    encoder_decoder: bool = False
    active_params: PositiveInt | None = None
    experts: PositiveInt | None = None  # mixture of experts: experts per layer ...
    experts_per_token: PositiveInt | None = None  # ... and how many each token is routed to


class ModelConfig(_Section):
    name: str | None = None  # catalog alias, e.g. llama-2-7b
    hf_id: str | None = None  # Hugging Face repo id (a catalog model, or a custom one with `architecture`)
    revision: str = "main"
    served_name: str | None = None
    architecture: ArchitectureConfig | None = None
    #: the model's Hugging Face config.json, a local path (relative to the stack file): its
    #: architecture is read from there (stacks/hf_config.py) instead of typed into `architecture`
    config_file: str | None = None
    gated: bool = False  # with configFile: the Hugging Face repo is gated (config.json does not say)


class PrecisionConfig(_Section):
    weights: str = "bf16"
    kv_cache: str = "auto"


class LoraAdapterConfig(_Section):
    name: str  # the model name requests use for it
    source: str  # its Hugging Face repo id (fetched by the server at startup, with the HF token)


class LoraConfig(_Section):
    """LoRA adapters served beside the base model (``stacks/lora.py``)."""

    adapters: list[LoraAdapterConfig]
    max_rank: PositiveInt = 16  # vLLM's --max-lora-rank: at least every adapter's own rank r
    max_loras: PositiveInt | None = None  # adapters one batch may mix (--max-loras); default: all of them


class LoadgenConfig(_Section):
    """In-cluster load generation (``stacks/loadgen.py``): an Indexed Job of load-tester pods."""

    pods: PositiveInt
    image: str  # the load tester's image, pinned by digest (docker/loadtest.Dockerfile)
    run_id: str  # names the Job and the results; a new runId is a new Job (a new run)
    args: list[str]  # the load test: `python -m loadtest run` flags (--mode, --levels, ...)
    machine_type: str = "n2-standard-8"  # the CPU pool the pods run on (never the accelerator nodes)
    cpu: Annotated[float, Field(gt=0)] = 2.0  # per pod, requested = limit (Guaranteed QoS: no CPU throttling)
    memory_gb: PositiveInt = 2
    start_delay: PositiveInt = 120  # seconds from the Job's creation to stage 0 (image pull, imports)

    @field_validator("cpu", mode="before")
    @classmethod
    def _int_is_a_cpu_count_too(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ServerAutoscalingConfig(_Section):
    """A HorizontalPodAutoscaler on a server metric (``stacks/autoscale.py``)."""

    min_replicas: PositiveInt = 1
    max_replicas: PositiveInt
    metric: Literal["waiting", "running"] = "waiting"  # queued requests, or the running batch
    target: Annotated[float, Field(gt=0)]  # per replica (HPA AverageValue)
    scale_down_window: Annotated[int, Field(ge=0)] = 300  # seconds (HPA scaleDown stabilization)

    @field_validator("target", mode="before")
    @classmethod
    def _int_is_a_target_too(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ServerConfig(_Section):
    kind: str
    image: str | None = None
    namespace: str | None = None  # default: derived from the stack
    tensor_parallel: PositiveInt | None = None
    max_batch: PositiveInt = 256
    max_model_len: PositiveInt | None = None
    max_batched_tokens: PositiveInt | None = None
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    prefix_caching: bool = False
    chunked_prefill: bool = True
    extra_args: list[str] = Field(default_factory=list)
    replicas: PositiveInt = 1
    lora: LoraConfig | None = None
    autoscaling: ServerAutoscalingConfig | None = None

    @field_validator("gpu_memory_utilization", mode="before")
    @classmethod
    def _int_is_a_fraction_too(cls, value: object) -> object:
        # YAML reads `1` as int; strict mode would reject it for a float field.
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ExposureConfig(_Section):
    mode: Literal["cluster", "internal", "external"] = "cluster"
    allowlist: list[str] = Field(default_factory=list)
    port: Annotated[int, Field(gt=0, lt=65536)] = 80


class SecretsConfig(_Section):
    """Names of the config keys that hold secrets (set with `pulumi config set --secret`)."""

    hf_token: str | None = "hfToken"
    api_key: str | None = "apiKey"
    kaggle: str | None = "kaggleJson"  # kaggle.json content: JetStream's MaxText converter takes Gemma from Kaggle


class CostConfig(_Section):
    on_demand_per_hour: Annotated[float, Field(gt=0)] | None = None
    spot_per_hour: Annotated[float, Field(gt=0)] | None = None

    @field_validator("on_demand_per_hour", "spot_per_hour", mode="before")
    @classmethod
    def _int_is_a_price_too(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SizingConfig(_Section):
    # the guide's 80 % of memory for weights is a best practice; a stack may raise it (up to 95 %)
    weights_share_max: Annotated[float, Field(ge=0.5, le=0.95)] = 0.8


class StackConfig(_Section):
    """The whole stack file: `gcp:*` keys plus the project's `gke-llm-bench:*` keys."""

    role: Literal["serving"] = "serving"
    gcp: GcpConfig
    cluster: ClusterConfig = ClusterConfig()
    accelerator: AcceleratorConfig
    model: ModelConfig
    precision: PrecisionConfig = PrecisionConfig()
    server: ServerConfig
    exposure: ExposureConfig = ExposureConfig()
    secrets: SecretsConfig = SecretsConfig()
    cost: CostConfig = CostConfig()
    sizing: SizingConfig = SizingConfig()
    loadgen: LoadgenConfig | None = None

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_shorthand(cls, value: object) -> object:
        # `gke-llm-bench:precision: fp8` is shorthand for `{weights: fp8}`.
        return {"weights": value} if isinstance(value, str) else value


class ClusterStackConfig(_Section):
    """A cluster stack (``gke-llm-bench:role: cluster``): only the cluster, which serving stacks join
    with ``cluster.fromStack``. It serves no model, so it has no accelerator, model or server."""

    role: Literal["cluster"]
    gcp: GcpConfig
    cluster: ClusterConfig = ClusterConfig()


#: the ``gke-llm-bench:role`` values: what a stack file declares
ROLES = ("serving", "cluster")

# Config keys outside the project namespace that a stack file may carry (provider settings).
PROVIDER_NAMESPACES = ("gcp", "kubernetes", "pulumi")
# Keys that hold secrets: their values live only as Pulumi secrets (never in StackConfig).
SECRET_SECTIONS = ("hfToken", "apiKey", "kaggleJson")
