"""What the GPU and TPU pools share: scaling, reservation affinity and the node settings every pool gets.

Plain dicts in pulumi-gcp's argument names; the pools add their accelerator-specific parts.
"""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.spec import StackSpec

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
RESERVATION_KEY = "compute.googleapis.com/reservation-name"


def reservation_affinity(spec: StackSpec) -> dict[str, Any]:
    """none | any | <name> -> GKE's consume_reservation_type (spot and flex-start consume none)."""
    if spec.reservation == "none" or spec.spot or spec.queued_provisioning:
        return {"consume_reservation_type": "NO_RESERVATION"}
    if spec.reservation == "any":
        return {"consume_reservation_type": "ANY_RESERVATION"}
    return {"consume_reservation_type": "SPECIFIC_RESERVATION", "key": RESERVATION_KEY,
            "values": [spec.reservation]}


def scaling(spec: StackSpec) -> dict[str, Any]:
    """Fixed size, autoscaling, or flex-start (which always scales from zero)."""
    if spec.queued_provisioning:
        lo, hi = (spec.autoscaling or (0, spec.node_count))
        return {"initial_node_count": 0,
                "autoscaling": {"total_min_node_count": 0, "total_max_node_count": hi, "location_policy": "ANY"}}
    if spec.autoscaling:
        lo, hi = spec.autoscaling
        return {"initial_node_count": lo,
                "autoscaling": {"total_min_node_count": lo, "total_max_node_count": hi,
                                "location_policy": "ANY" if spec.spot else "BALANCED"}}
    return {"node_count": spec.node_count}


def base_node_config(spec: StackSpec, service_account: pulumi.Input[str]) -> dict[str, Any]:
    """Settings every accelerator node gets (least-privilege SA, GKE metadata server, shielded boot...)."""
    config: dict[str, Any] = {
        "machine_type": spec.machine.name,
        "service_account": service_account,
        "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
        "labels": spec.pool_labels,
        "spot": spec.spot,
        "reservation_affinity": reservation_affinity(spec),
        "disk_size_gb": spec.boot_disk_gb,
        "image_type": "COS_CONTAINERD",
        "gvnic": {"enabled": True},  # required by A3, faster networking everywhere
        "gcfs_config": {"enabled": True},  # image streaming: multi-GB server images start in seconds
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
    }
    if spec.boot_disk_type:
        config["disk_type"] = spec.boot_disk_type
    if spec.local_ssd_count:
        config["ephemeral_storage_local_ssd_config"] = {"local_ssd_count": spec.local_ssd_count}
    if spec.queued_provisioning:
        config["flex_start"] = True
    return config


def node_locations(spec: StackSpec) -> list[str] | None:
    """The pool's zones, pinned to the stack's own: node counts are per zone, and a pool that
    inherited a (shared) cluster's other locations would multiply the accelerators and the cost."""
    return list(spec.node_locations) or None


def management(spec: StackSpec) -> dict[str, bool]:
    # Flex-start nodes cannot be repaired in place (GKE requires auto-repair off for them).
    return {"auto_repair": not spec.queued_provisioning, "auto_upgrade": True}


def cpu_node_config(machine_type: str, service_account: pulumi.Input[str], labels: dict[str, str],
                    taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A CPU pool's nodes (the cluster's system pool, the load generator's pool): the same
    least-privilege account, GKE metadata server and shielded boot as the accelerator nodes."""
    config: dict[str, Any] = {
        "machine_type": machine_type,
        "service_account": service_account,
        "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
        "labels": labels,
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "gvnic": {"enabled": True},
    }
    if taints:
        config["taints"] = taints
    return config
