"""The accelerator node pool: GPUs or a TPU slice, one component with two variants.

GPU variant:
- ``guest_accelerators`` carries ``gpu_driver_installation_config`` (DEFAULT / LATEST from the spec):
  GKE installs the driver, no DaemonSet to manage;
- the ``nvidia.com/gpu=present:NoSchedule`` taint is declared explicitly: GKE adds it only in some
  cases, and without it CPU pods land on (and block) GPU nodes; the server tolerates it;
- compact placement when the spec asks for it.

TPU variant (v5e single-host slices for JetStream): GKE labels TPU nodes with
``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology``; the server
selects on both. The ``google.com/tpu=present`` taint is declared explicitly, as for GPUs. No driver
to install: the TPU runtime ships with the node image.

Both: ephemeral storage on local SSDs, gVNIC, image streaming, spot, reservation affinity and
flex-start (``queuedProvisioning``) as the spec says (``pool_config``). ``NodePoolArgs.from_spec``
is the translation; the component only declares it. Changing the machine type, the accelerators or
the driver version recreates the pool: the plan and diff call those out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from stacks.spec import StackSpec

from .gcp import gcp
from .pool_config import base_node_config, management, node_locations, scaling

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
TPU_TAINT = {"key": "google.com/tpu", "value": "present", "effect": "NO_SCHEDULE"}


@dataclass(frozen=True)
class NodePoolArgs:
    """Exactly what the pool declares (pulumi-gcp's argument names), built from the spec."""

    name: str
    project: str
    cluster_name: pulumi.Input[str]
    location: pulumi.Input[str]
    node_locations: list[str] | None
    node_config: dict[str, Any]
    scaling: dict[str, Any]
    management: dict[str, bool]
    placement_policy: dict[str, str] | None

    @classmethod
    def from_spec(cls, spec: StackSpec, cluster_name: pulumi.Input[str], location: pulumi.Input[str],
                  service_account: pulumi.Input[str]) -> NodePoolArgs:
        node_config = base_node_config(spec, service_account)
        if spec.accelerator_kind == "tpu":
            node_config["taints"] = [dict(TPU_TAINT)]
            node_config["labels"] = {**node_config["labels"], "gke-llm-bench/tpu-topology": str(spec.machine.topology)}
            placement = None
        else:
            node_config["guest_accelerators"] = [{
                "type": spec.accelerator,
                "count": spec.chips_per_node,
                "gpu_driver_installation_config": {"gpu_driver_version": spec.driver_version},
            }]
            node_config["taints"] = [dict(GPU_TAINT)]
            placement = {"type": "COMPACT"} if spec.compact_placement else None
        return cls(name=spec.names.node_pool, project=spec.project, cluster_name=cluster_name, location=location,
                   node_locations=node_locations(spec), node_config=node_config, scaling=scaling(spec),
                   management=management(spec), placement_policy=placement)


class AcceleratorNodePool(pulumi.ComponentResource):
    TYPE = "gke-llm-bench:node_pool:AcceleratorNodePool"
    #: the component types this one replaced: stacks deployed before keep their pool (no replacement)
    FORMER_TYPES = ("gke-llm-bench:gpu_node_pool:GpuNodePool", "gke-llm-bench:tpu_node_pool:TpuNodePool")

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        aliases = [pulumi.Alias(type_=t) for t in self.FORMER_TYPES]
        super().__init__(self.TYPE, name, None, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            aliases=aliases)))
        self.pool = gcp.container.NodePool(
            name,
            name=args.name,
            project=args.project,
            cluster=args.cluster_name,
            location=args.location,
            node_locations=args.node_locations,
            management=args.management,
            placement_policy=args.placement_policy,
            node_config=args.node_config,
            **args.scaling,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["initialNodeCount"]),
        )
        self.name = self.pool.name
        self.register_outputs({"name": self.pool.name})
