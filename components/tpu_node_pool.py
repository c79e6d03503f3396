"""The TPU v5e node pool for JetStream: a single-host slice (ct5lp-hightpu-1t / -4t / -8t).

GKE labels TPU nodes with ``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology``
(1x1, 2x2, 2x4 for these machine types); the server selects on both. The ``google.com/tpu=present``
taint is declared explicitly, as for GPUs, and the server tolerates it. No driver to install: the
TPU runtime ships with the node image.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.spec import StackSpec

from .gcp import gcp
from .pool_config import base_node_config, management, node_locations, scaling

TPU_TAINT = {"key": "google.com/tpu", "value": "present", "effect": "NO_SCHEDULE"}


@dataclass(frozen=True)
class TpuNodePoolArgs:
    spec: StackSpec
    cluster_name: pulumi.Input[str]
    location: pulumi.Input[str]
    service_account: pulumi.Input[str]


class TpuNodePool(pulumi.ComponentResource):
    TYPE = "gke-llm-bench:tpu_node_pool:TpuNodePool"

    def __init__(self, name: str, args: TpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        spec = args.spec
        node_config = base_node_config(spec, args.service_account)
        node_config["taints"] = [dict(TPU_TAINT)]
        node_config["labels"] = {**node_config["labels"], "gke-llm-bench/tpu-topology": str(spec.machine.topology)}
        self.pool = gcp.container.NodePool(
            name,
            name=spec.names.node_pool,
            project=spec.project,
            cluster=args.cluster_name,
            location=args.location,
            node_locations=node_locations(spec),
            management=management(spec),
            node_config=node_config,
            **scaling(spec),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["initialNodeCount"]),
        )
        self.name = self.pool.name
        self.register_outputs({"name": self.pool.name})
