"""The GPU node pool: the spec's machine type with its GPUs, GKE-installed drivers, and a declared taint.

- ``guest_accelerators`` carries ``gpu_driver_installation_config`` (DEFAULT / LATEST from the spec):
  GKE installs the driver, no DaemonSet to manage;
- the ``nvidia.com/gpu=present:NoSchedule`` taint is declared explicitly: GKE adds it only in some
  cases, and without it CPU pods land on (and block) GPU nodes; the server tolerates it;
- ephemeral storage on the machine's local SSDs (model cache), gVNIC, image streaming, spot,
  reservation affinity, compact placement and flex-start (``queuedProvisioning``) as the spec says.
Changing the machine type, accelerator type/count or driver version recreates the pool: the plan and
diff call those out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.spec import StackSpec

from .gcp import gcp
from .pool_config import base_node_config, management, node_locations, scaling

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}


@dataclass(frozen=True)
class GpuNodePoolArgs:
    spec: StackSpec
    cluster_name: pulumi.Input[str]
    location: pulumi.Input[str]
    service_account: pulumi.Input[str]


class GpuNodePool(pulumi.ComponentResource):
    TYPE = "gke-llm-bench:gpu_node_pool:GpuNodePool"

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        spec = args.spec
        node_config = base_node_config(spec, args.service_account)
        node_config["guest_accelerators"] = [{
            "type": spec.accelerator,
            "count": spec.chips_per_node,
            "gpu_driver_installation_config": {"gpu_driver_version": spec.driver_version},
        }]
        node_config["taints"] = [dict(GPU_TAINT)]
        self.pool = gcp.container.NodePool(
            name,
            name=spec.names.node_pool,
            project=spec.project,
            cluster=args.cluster_name,
            location=args.location,
            node_locations=node_locations(spec),
            management=management(spec),
            placement_policy={"type": "COMPACT"} if spec.compact_placement else None,
            node_config=node_config,
            **scaling(spec),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["initialNodeCount"]),
        )
        self.name = self.pool.name
        self.register_outputs({"name": self.pool.name})
