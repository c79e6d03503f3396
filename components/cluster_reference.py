"""A cluster another stack declared (a cluster stack, ``role: cluster``), read through Pulumi's
StackReference: the serving stack's side of the shared mode.

Nothing of the cluster is declared here, so destroying a serving stack never touches the cluster or
another stack's pool. The node pool uses the cluster stack's node service account. The reference
also checks, once the outputs are known, that the cluster is where the serving stack's file says it
is: the pool's zones and its price come from that file.
"""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.spec import StackSpec


def _check_location(outputs: list[Any], spec: StackSpec) -> str:
    location, project = outputs
    # a regional cluster takes pools in any of its region's zones; a zonal one only in its own zone
    inside = location == spec.region or tuple(spec.node_locations) == (location,)
    if project != spec.project or not inside:
        raise pulumi.RunError(
            f"gke-llm-bench:cluster.fromStack: {spec.shared_cluster} is in {project}/{location}, but this stack's "
            f"gcp:project / gcp:region / gcp:zone say {spec.project}/{spec.zone or spec.region}; set them to the "
            "cluster stack's values")
    return location


class ClusterReference:
    """The attributes the program reads of a cluster (as ``components.Cluster`` has them)."""

    def __init__(self, name: str, spec: StackSpec):
        assert spec.shared_cluster is not None
        self.reference = pulumi.StackReference(name, stack_name=spec.shared_cluster)
        out = self.reference.require_output
        self.name: pulumi.Output[Any] = out("clusterName")
        self.location: pulumi.Output[Any] = pulumi.Output.all(out("clusterLocation"), out("project")).apply(
            lambda values: _check_location(values, spec))
        self.endpoint: pulumi.Output[Any] = out("endpoint")
        self.ca_certificate: pulumi.Output[Any] = out("caCertificate")
        self.node_service_account_email: pulumi.Output[Any] = out("nodeServiceAccount")
        self.ready: list[pulumi.Resource] = [self.reference]
