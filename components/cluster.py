"""The GKE Standard cluster: control plane, a small CPU system pool, and the node service account.

Why each setting (all values from ``spec.cluster`` / ``spec``):
- the default node pool is removed: every pool is declared, so each has a known machine type,
  service account and taints (GKE's default pool would use the Compute Engine default account);
- a dedicated node service account with only logging/monitoring write and Artifact Registry read,
  instead of the default compute account (Editor on the project);
- Workload Identity (``<project>.svc.id.goog``) and the GKE metadata server on every pool, so pods
  reach Google APIs as their own identity and never see node credentials;
- Google Managed Prometheus on (PodMonitoring objects are scraped), DCGM GPU metrics optional;
- private nodes optional, with Cloud NAT so nodes without public IPs still pull images and weights;
- shielded nodes, a release channel, and ``deletion_protection`` from the spec.
With ``cluster.existing`` nothing of the cluster is created: it is looked up and the pools join it.
A serving stack with ``cluster.fromStack`` declares no cluster at all: ``ClusterReference`` reads
the cluster stack's outputs (``components/cluster_reference.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.cluster_spec import SYSTEM_POOL_NODES, ClusterSpec
from stacks.config import ClusterConfig
from stacks.names import ResourceNames

from .gcp import gcp
from .pool_config import CLOUD_PLATFORM_SCOPE, cpu_node_config

NODE_SA_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)



@dataclass(frozen=True)
class ClusterArgs:
    project: str
    region: str
    location: str  # zone for a zonal cluster, region for a regional one
    node_locations: tuple[str, ...]  # zones beyond the cluster's own (GKE rejects a zonal cluster's zone here)
    cluster: ClusterConfig
    stack: str
    names: ResourceNames

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> ClusterArgs:
        """From a cluster stack's spec, or a serving stack's own cluster (``StackSpec.cluster_spec``)."""
        return cls(project=spec.project, region=spec.region, location=spec.location,
                   node_locations=tuple(z for z in spec.node_locations if z != spec.zone),
                   cluster=spec.cluster, stack=spec.name, names=spec.names)


class Cluster(pulumi.ComponentResource):
    """A GKE Standard cluster (or an existing one) plus the node service account all pools use."""

    TYPE = "gke-llm-bench:cluster:Cluster"

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        c = args.cluster
        child = pulumi.ResourceOptions(parent=self)
        self.project = pulumi.Output.from_input(args.project)

        self.node_service_account = gcp.serviceaccount.Account(
            f"{name}-nodes", account_id=args.names.node_service_account, project=args.project,
            display_name=f"gke-llm-bench {args.stack}: GKE nodes (least privilege)", opts=child)
        member = self.node_service_account.email.apply(lambda e: f"serviceAccount:{e}")
        self.node_roles = [
            gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[-1].replace('.', '-').lower()}",
                                   project=args.project, role=role, member=member, opts=child)
            for role in NODE_SA_ROLES
        ]

        if c.existing is not None:
            found = gcp.container.get_cluster_output(name=c.existing.name, location=c.existing.location,
                                                     project=c.existing.project or args.project)
            self.name = found.name
            self.location = pulumi.Output.from_input(c.existing.location)
            self.endpoint = found.endpoint
            self.ca_certificate = found.master_auths.apply(lambda auths: auths[0].cluster_ca_certificate)
            self.system_pool: gcp.container.NodePool | None = None
            self.ready: list[pulumi.Resource] = list(self.node_roles)
        else:
            nat = self._nat(name, args) if c.private_nodes else []
            components = ["SYSTEM_COMPONENTS", *(["DCGM"] if c.dcgm_metrics else [])]
            self.cluster = gcp.container.Cluster(
                name,
                name=args.names.cluster,
                project=args.project,
                location=args.location,
                node_locations=list(args.node_locations) or None,
                remove_default_node_pool=True,
                initial_node_count=1,
                node_config={"service_account": self.node_service_account.email,
                             "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
                             "shielded_instance_config": {"enable_secure_boot": True,
                                                          "enable_integrity_monitoring": True},
                             "workload_metadata_config": {"mode": "GKE_METADATA"}},
                release_channel={"channel": c.release_channel},
                workload_identity_config={"workload_pool": f"{args.project}.svc.id.goog"},
                monitoring_config={"enable_components": components,
                                   "managed_prometheus": {"enabled": c.managed_prometheus}},
                logging_config={"enable_components": ["SYSTEM_COMPONENTS", "WORKLOADS"]},
                ip_allocation_policy={},
                private_cluster_config=({"enable_private_nodes": True, "enable_private_endpoint": False}
                                        if c.private_nodes else None),
                enable_shielded_nodes=True,
                deletion_protection=c.deletion_protection,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.node_roles, *nat],
                                            ignore_changes=["nodeConfig", "initialNodeCount"]),
            )
            self.name = self.cluster.name
            self.location = self.cluster.location
            self.endpoint = self.cluster.endpoint
            self.ca_certificate = self.cluster.master_auth.apply(lambda a: a.cluster_ca_certificate)
            self.system_pool = gcp.container.NodePool(
                f"{name}-system",
                name="system",
                project=args.project,
                cluster=self.cluster.name,
                location=args.location,
                node_count=SYSTEM_POOL_NODES,
                management={"auto_repair": True, "auto_upgrade": True},
                node_config=cpu_node_config(c.system_machine_type, self.node_service_account.email,
                                            {"gke-llm-bench/pool": "system", "gke-llm-bench/stack": args.stack}),
                opts=child,
            )
            self.ready = [self.cluster, self.system_pool]
        self.node_service_account_email = self.node_service_account.email
        self.register_outputs({"name": self.name, "location": self.location, "endpoint": self.endpoint,
                               "nodeServiceAccount": self.node_service_account.email})

    def _nat(self, name: str, args: ClusterArgs) -> list[pulumi.Resource]:
        """Cloud NAT on the default network: private nodes have no public IP but must pull images/weights."""
        child = pulumi.ResourceOptions(parent=self)
        router = gcp.compute.Router(f"{name}-router", name=f"{args.names.nat_prefix}-router",
                                    project=args.project, region=args.region, network="default", opts=child)
        nat = gcp.compute.RouterNat(
            f"{name}-nat", name=f"{args.names.nat_prefix}-nat", project=args.project, region=args.region,
            router=router.name, nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"}, opts=child)
        return [router, nat]
