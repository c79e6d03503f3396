"""The stack's non-secret summary: the schema that stack outputs (``spec``), ``run.json`` and
``summary.json`` carry, so analysis needs neither Pulumi nor the cloud (docs/stack-outputs.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import StackSpec


def spec_summary(self: StackSpec) -> dict[str, Any]:
    """Non-secret description, carried into stack outputs and results files."""
    m = self.model
    return {
        "stack": self.name,
        "model": {
            "alias": m.alias,
            "hfId": m.hf_id,
            "checkpoint": self.checkpoint,
            "revision": self.revision,
            "servedName": self.served_name,
            "family": m.family,
            "params": m.params,
            "activeParams": m.active_params or m.params,
            "experts": m.experts,
            "expertsPerToken": m.experts_per_token,
            "layers": m.layers,
            "hidden": m.hidden,
            "heads": m.heads,
            "kvHeads": m.kv_heads,
            "headDim": m.head_dim,
            "ffn": m.ffn,
            "vocab": m.vocab,
            "maxContext": m.max_context,
            "gated": m.gated,
            "encoderDecoder": m.encoder_decoder,
        },
        "precision": self.precision.name,
        "kvCacheDtype": self.kv_cache_dtype,
        "accelerator": {
            "kind": self.accelerator_kind,
            "type": self.accelerator,
            "name": self.machine.chip.name,
            "machineType": self.machine.name,
            "perNode": self.chips_per_node,
            "nodeCount": self.node_count,
            "autoscaling": list(self.autoscaling) if self.autoscaling else None,
            "spot": self.spot,
            "topology": self.machine.topology,
            "memoryGB": self.machine.chip.memory_gb,
            "bandwidthGBps": self.machine.chip.bandwidth_gbps,
            "tflops": dict(self.machine.chip.tflops),
        },
        "server": {
            "kind": self.server.name,
            "image": self.image,
            "dialect": self.server.dialect,
            "tensorParallel": self.tensor_parallel,
            "replicas": self.replicas,
            "maxBatch": self.max_batch,
            "maxModelLen": self.max_model_len,
            "maxBatchedTokens": self.max_batched_tokens,
            "gpuMemoryUtilization": self.gpu_memory_utilization,
            "prefixCaching": self.prefix_caching,
            "chunkedPrefill": self.chunked_prefill,
            "extraArgs": list(self.extra_args),
            "lora": self.lora.as_dict() if self.lora else None,
            "autoscaling": self.autoscale.as_dict() if self.autoscale else None,
        },
        "loadgen": self.loadgen.as_dict() if self.loadgen else None,
        "exposure": self.exposure,
        "apiKeyRequired": self.api_key_key is not None,
        "cost": {
            "usdPerHour": round(self.usd_per_hour, 4),
            "usdPerNodeHour": self.usd_per_node_hour,
            "usdPerReplicaHour": round(self.usd_per_replica_hour, 4),
            # all-in: the accelerators plus a whole cluster's management fee and system pool (every stack
            # is charged one: setups are compared as they would run alone)
            "usdPerHourAllIn": round(self.usd_per_hour_all_in, 4),
            "clusterUsdPerHour": round(self.usd_per_hour_cluster, 4),
            "spot": self.spot,
            "source": self.price_source,
        },
        "location": {"project": self.project, "region": self.region, "zone": self.zone},
        "cluster": {"name": self.names.cluster,
                    "shared": self.cluster.existing is not None or self.cluster.from_stack is not None,
                    "fromStack": self.cluster.from_stack,
                    "namespace": self.names.namespace, "nodePool": self.names.node_pool},
        "sizing": self.sizing.as_dict(),
        "warnings": list(self.warnings),
    }
