"""``ClusterSpec``: one GKE cluster as a stack declares it, and what it costs to keep.

A cluster is declared in one of two places. An isolated serving stack declares its own (the spec's
``cluster_spec``). A cluster stack (``gke-llm-bench:role: cluster``) declares only a cluster, and
serving stacks join it with ``cluster.fromStack``: Pulumi's StackReference hands them its outputs
(``cluster_outputs``), so each serving stack adds only its node pool, namespace and server, and
destroying one never touches another's. Both paths resolve to this record and the same component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import ClusterConfig
from .names import ResourceNames

REGIONAL_DEFAULT_ZONES = 3  # GKE places a regional cluster's node pools in three zones unless told
SYSTEM_POOL_NODES = 1  # CPU system pool size per zone: system pods and the in-cluster load generator


def zones_used(node_locations: tuple[str, ...]) -> int:
    """Zones a pool spans: GKE's node count is *per zone*. A regional cluster without ``gcp:zones``
    puts its pools in three of the region's zones (GKE's default)."""
    return len(node_locations) if node_locations else REGIONAL_DEFAULT_ZONES


@dataclass(frozen=True)
class ClusterSpec:
    name: str  # the stack that declares the cluster
    source: str
    project: str
    region: str
    zone: str | None
    node_locations: tuple[str, ...]
    cluster: ClusterConfig
    names: ResourceNames
    # catalog/cluster.yaml: None when the system machine type has no catalog price
    system_usd_per_node_hour: float | None = None
    cluster_fee_usd_h: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    @property
    def location(self) -> str:
        return self.zone or self.region

    @property
    def zones_used(self) -> int:
        return zones_used(self.node_locations)

    @property
    def usd_per_hour(self) -> float:
        """GKE's management fee plus the CPU system pool (``SYSTEM_POOL_NODES`` per zone)."""
        return self.cluster_fee_usd_h + (self.system_usd_per_node_hour or 0.0) * SYSTEM_POOL_NODES * self.zones_used

    def summary(self) -> dict[str, Any]:
        """What ``stacks check`` and the offline plan show for a cluster stack (nothing secret)."""
        return {"stack": self.name, "role": "cluster", "cluster": self.names.cluster,
                "location": {"project": self.project, "region": self.region, "zone": self.zone,
                             "zones": list(self.node_locations)},
                "systemMachineType": self.cluster.system_machine_type,
                "cost": {"usdPerHour": round(self.usd_per_hour, 4)},
                "warnings": list(self.warnings)}


def cluster_outputs(spec: ClusterSpec) -> dict[str, Any]:
    """What a cluster stack exports before deployment (``endpoint``, ``caCertificate`` and the node
    service account's e-mail are added by Pulumi once they exist)."""
    return {"role": "cluster", "clusterName": spec.names.cluster, "clusterLocation": spec.location,
            "project": spec.project, "region": spec.region, "zones": list(spec.node_locations),
            "getCredentials": f"gcloud container clusters get-credentials {spec.names.cluster} "
                              f"--location {spec.location} --project {spec.project}",
            "costPerHour": round(spec.usd_per_hour, 4), "spec": spec.summary()}
