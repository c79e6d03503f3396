"""What every server translator returns: the pod's server-specific parts as Kubernetes-shaped dicts.

A translator turns ``ServerArgs`` (the served model and the server's knobs, built from the
``StackSpec``; nothing about the cluster) into containers, init containers, volumes and (for servers that
need a preparation step) Jobs. The model-server component adds everything common to all servers
(namespace, Secrets, probes, GPU limit, node selector, toleration, /dev/shm, the model cache, the
Service and the PodMonitoring). Dicts use the Kubernetes API's own field names (camelCase), so
what a translator returns is exactly what the API server receives and can be schema-validated.

Secrets never appear here as values: a translator refers to them by Secret name and key
(``env.valueFrom.secretKeyRef``); args that need a secret use Kubernetes' ``$(VAR)`` expansion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stacks.catalog import ServerKind
from stacks.lora import LoraSpec
from stacks.serving import MaxTextModel, TgiLimits, tgi_limits
from stacks.spec import StackSpec

MODEL_CACHE_PATH = "/data"  # the model-cache volume's mount path in every server container
MODEL_CACHE_VOLUME = "model-cache"
SHM_VOLUME = "dshm"
HTTP_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"
GRPC_PORT_NAME = "grpc"


@dataclass(frozen=True)
class ServerArgs:
    """What a server translator reads, and nothing else: the model it serves and the knobs it is
    started with. Every value is decided by the spec (``stacks/``); a translator only spells it in
    its server's flags, so a new knob shows up here first."""

    kind: ServerKind  # the catalog's image, ports and paths for the server
    image: str
    checkpoint: str  # the Hugging Face repo the server (or its converter) downloads
    revision: str
    served_name: str
    model_alias: str
    model_family: str
    precision: str  # weights: bf16 | fp16 | fp8 | int8 | awq | gptq
    kv_cache_dtype: str
    tensor_parallel: int
    chips_per_node: int
    max_batch: int
    max_model_len: int
    max_batched_tokens: int
    gpu_memory_utilization: float
    prefix_caching: bool
    chunked_prefill: bool
    extra_args: tuple[str, ...]
    startup_budget_s: int
    tgi: TgiLimits  # TGI's launcher limits (``stacks/serving.py``); the other servers ignore them
    maxtext: MaxTextModel | None = None  # JetStream: how MaxText names the model
    lora: LoraSpec | None = None  # LoRA adapters (stacks/lora.py): vLLM serves them per request

    @classmethod
    def from_spec(cls, spec: StackSpec) -> ServerArgs:
        return cls(kind=spec.server, image=spec.image, checkpoint=spec.checkpoint, revision=spec.revision,
                   served_name=spec.served_name, model_alias=spec.model.alias, model_family=spec.model.family,
                   precision=spec.precision.name, kv_cache_dtype=spec.kv_cache_dtype,
                   tensor_parallel=spec.tensor_parallel, chips_per_node=spec.chips_per_node,
                   max_batch=spec.max_batch, max_model_len=spec.max_model_len,
                   max_batched_tokens=spec.max_batched_tokens, gpu_memory_utilization=spec.gpu_memory_utilization,
                   prefix_caching=spec.prefix_caching, chunked_prefill=spec.chunked_prefill,
                   extra_args=spec.extra_args, startup_budget_s=spec.startup_budget_s, tgi=tgi_limits(spec),
                   maxtext=spec.maxtext, lora=spec.lora)


@dataclass(frozen=True)
class SecretRefs:
    """Where the Kubernetes Secrets live (names and keys); ``None`` when the stack has no such secret."""

    hf_token: tuple[str, str] | None = None  # (secret name, key)
    api_key: tuple[str, str] | None = None


@dataclass(frozen=True)
class PrepJob:
    """A Job that must finish before the server starts (e.g. checkpoint conversion)."""

    name: str
    pod_spec: dict[str, Any]
    backoff_limit: int = 2
    timeout_s: int = 3600


@dataclass(frozen=True)
class ServerWorkload:
    """The server-specific part of the model server's pod.

    ``containers[0]`` is the model server itself: it receives the accelerator limit, probes and
    resources. ``http_port`` / ``metrics_port`` name container ports that some container declares.
    """

    containers: list[dict[str, Any]]
    http_port: int
    health_path: str
    metrics_port: int
    metrics_path: str
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[PrepJob] = field(default_factory=list)
    service_ports: list[dict[str, Any]] = field(default_factory=list)
    needs_storage_bucket: bool = False  # a Cloud Storage bucket for converted checkpoints
    liveness_path: str | None = None  # defaults to health_path
    #: which container serves ``health_path`` and gets the probes (JetStream: the HTTP front end,
    #: not the engine, which speaks only gRPC)
    probe_container: int = 0

    @property
    def server(self) -> dict[str, Any]:
        return self.containers[0]


def secret_env(name: str, ref: tuple[str, str] | None) -> list[dict[str, Any]]:
    """An env var filled from a Secret key, or nothing when the stack has no such secret."""
    if ref is None:
        return []
    secret_name, key = ref
    return [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}]


def cache_mount() -> dict[str, Any]:
    return {"name": MODEL_CACHE_VOLUME, "mountPath": MODEL_CACHE_PATH}


def shm_mount() -> dict[str, Any]:
    return {"name": SHM_VOLUME, "mountPath": "/dev/shm"}


def container_port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def server_ports(s: ServerKind) -> list[dict[str, Any]]:
    """The catalog's ports for the server (one place: stacks/catalog/servers.yaml)."""
    ports = [container_port(HTTP_PORT_NAME, s.http_port)]
    if s.grpc_port:
        ports.append(container_port(GRPC_PORT_NAME, s.grpc_port))
    if s.metrics_port != s.http_port:
        ports.append(container_port(METRICS_PORT_NAME, s.metrics_port))
    return ports
