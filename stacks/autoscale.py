"""Autoscaling the model server on its own metrics (``gke-llm-bench:server.autoscaling``).

GKE's recipe for LLM servers ("Configure autoscaling for LLM workloads on GPUs", and "Best practices
for autoscaling LLM inference workloads"): Managed Prometheus scrapes the server (the stack's
PodMonitoring), the Custom Metrics Stackdriver Adapter serves those series to Kubernetes' custom
metrics API, and a HorizontalPodAutoscaler scales the Deployment on a ``Pods`` metric named
``prometheus.googleapis.com|<metric>|gauge`` with an ``AverageValue`` target per replica. The
guide recommends the queue (requests waiting) for throughput and the running batch for latency;
both are offered here as roles, each server's own series named below.

A replica needs ``TP`` accelerators, so the node pool must be able to grow to ``maxReplicas`` x TP:
the accelerator pool autoscales, and its maximum holds them (GKE's cluster autoscaler adds nodes
for pending replicas). The stack's $/h is the pool at its maximum, what a scaled-out hour costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .config import ServerAutoscalingConfig
from .errors import SpecError

#: server kind -> role -> the Prometheus gauge the HPA reads (each is one of the series the load
#: tester's protocol module gives that role: tests/stacks/test_autoscale.py checks them against it)
AUTOSCALE_METRICS: dict[str, dict[str, str]] = {
    "vllm": {"waiting": "vllm:num_requests_waiting", "running": "vllm:num_requests_running"},
    "vllm-tpu": {"waiting": "vllm:num_requests_waiting", "running": "vllm:num_requests_running"},
    "tgi": {"waiting": "tgi_queue_size", "running": "tgi_batch_current_size"},
    "triton-trtllm": {"waiting": "nv_inference_pending_request_count"},  # its running batch is a labelled series
    # JetStream's running role is the share of decode slots in use, in percent
    "jetstream": {"waiting": "jetstream_prefill_backlog_size", "running": "jetstream_slots_used_percentage"},
}
HPA_SYNC_S = 15.0  # kube-controller-manager --horizontal-pod-autoscaler-sync-period default
HPA_TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance default: no change within 10 % of target


@dataclass(frozen=True)
class AutoscaleSpec:
    min_replicas: int
    max_replicas: int
    role: str  # "waiting" | "running"
    metric: str  # the server's Prometheus gauge
    target: float  # per replica
    scale_down_window: int

    @property
    def hpa_metric(self) -> str:
        """The name the custom metrics API gives a Managed Prometheus gauge."""
        return f"prometheus.googleapis.com|{self.metric}|gauge"

    def desired(self, current: int, per_replica: float) -> int:
        """The HPA's rule (kubernetes.io "Horizontal Pod Autoscaling", algorithm details):
        ceil(current x value / target), unchanged within the tolerance, clamped to [min, max]."""
        ratio = per_replica / self.target
        want = current if abs(ratio - 1.0) <= HPA_TOLERANCE else math.ceil(current * ratio)
        return max(self.min_replicas, min(self.max_replicas, want))

    def as_dict(self) -> dict[str, Any]:
        return {"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas, "metric": self.role,
                "series": self.metric, "target": self.target, "scaleDownWindowS": self.scale_down_window}


def resolve_autoscale(cfg: ServerAutoscalingConfig | None, key: str, *, server: str | None, replicas_key_set: bool,
                      pool_max_chips: int | None, tp: int | None, pool_autoscales: bool, shared_cluster: bool,
                      managed_prometheus: bool) -> tuple[AutoscaleSpec | None, list[SpecError]]:
    """The autoscaler, or every reason it cannot work (``key``: ``gke-llm-bench:server.autoscaling``)."""
    if cfg is None:
        return None, []
    errors: list[SpecError] = []
    if cfg.min_replicas > cfg.max_replicas:
        errors.append(SpecError(f"{key}.minReplicas", f"{cfg.min_replicas} > maxReplicas {cfg.max_replicas}",
                                "give minReplicas <= maxReplicas"))
    if replicas_key_set:
        errors.append(SpecError(key.rsplit(".", 1)[0] + ".replicas", "is set beside `autoscaling`",
                                "drop `replicas`: the autoscaler owns the count (from minReplicas)"))
    metric = AUTOSCALE_METRICS.get(server or "", {}).get(cfg.metric)
    if server is not None and metric is None:
        roles = ", ".join(AUTOSCALE_METRICS.get(server, {})) or "none"
        errors.append(SpecError(f"{key}.metric", f"{server} has no single gauge for `{cfg.metric}`",
                                f"use one of: {roles}"))
    if not managed_prometheus:
        errors.append(SpecError(f"{key}", "needs the server's metrics in Managed Prometheus",
                                "set cluster.managedPrometheus: true (the default)"))
    if shared_cluster:
        errors.append(SpecError(f"{key}", "needs the cluster's custom-metrics adapter, which one stack per cluster "
                                "declares; a stack that joins a cluster stack cannot",
                                "give this stack its own cluster (drop cluster.fromStack)"))
    if not pool_autoscales:
        errors.append(SpecError(key.replace("server.autoscaling", "accelerator.autoscaling"),
                                "the accelerator pool has a fixed size: new replicas would find no node",
                                f"give accelerator.autoscaling {{min, max}} with room for {cfg.max_replicas} replicas"))
    elif pool_max_chips is not None and tp is not None and cfg.max_replicas * tp > pool_max_chips:
        errors.append(SpecError(f"{key}.maxReplicas", f"{cfg.max_replicas} replicas x TP {tp} need "
                                f"{cfg.max_replicas * tp} accelerators; the pool grows to {pool_max_chips}",
                                "raise accelerator.autoscaling.max or lower maxReplicas"))
    if errors or metric is None:
        return None, errors
    return AutoscaleSpec(cfg.min_replicas, cfg.max_replicas, cfg.metric, metric, cfg.target,
                         cfg.scale_down_window), []
