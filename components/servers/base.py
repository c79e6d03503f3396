"""What every server translator returns: the pod's server-specific parts as Kubernetes-shaped dicts.

A translator turns a ``StackSpec`` into containers, init containers, volumes and (for servers that
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

from stacks.spec import StackSpec

MODEL_CACHE_PATH = "/data"  # the model-cache volume's mount path in every server container
MODEL_CACHE_VOLUME = "model-cache"
SHM_VOLUME = "dshm"
HTTP_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"
GRPC_PORT_NAME = "grpc"


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


def spec_ports(spec: StackSpec) -> list[dict[str, Any]]:
    """The catalog's ports for the server (one place: stacks/catalog/servers.yaml)."""
    s = spec.server
    ports = [container_port(HTTP_PORT_NAME, s.http_port)]
    if s.grpc_port:
        ports.append(container_port(GRPC_PORT_NAME, s.grpc_port))
    if s.metrics_port != s.http_port:
        ports.append(container_port(METRICS_PORT_NAME, s.metrics_port))
    return ports
