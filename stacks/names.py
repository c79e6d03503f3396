"""Every name that must be unique in a project, a cluster or a namespace, derived from the stack.

Why here: two stacks of one Pulumi project must coexist. A name the user did not give is derived
from the stack name, so the 12 committed stacks never declare the same cluster, node pool, service
account or namespace; it is a pure function of the stack name, so it stays the same across
``pulumi up`` runs and previews stay meaningful. Names follow the GKE / GCP / Kubernetes rules:
GCP ids allow ``[a-z0-9-]`` and start with a letter; a truncated name keeps a short hash of the full
one, so two long stack names never truncate to the same name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: GKE cluster names: 1-40 characters, lowercase letters, digits and hyphens, a letter first, no hyphen last
CLUSTER_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
#: Kubernetes namespaces: an RFC 1123 label (at most 63 characters)
NAMESPACE = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")


def resource_suffix(stack: str, limit: int) -> str:
    """``stack`` as a GCP-id fragment of at most ``limit`` chars; a short hash keeps truncations unique."""
    clean = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-") or "stack"
    if not clean[0].isalpha():
        clean = "s-" + clean
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
    return f"{clean[: limit - 7].rstrip('-')}-{digest}"


def cluster_name(stack: str) -> str:
    """The cluster a stack creates unless ``cluster.name`` says otherwise."""
    return f"llmb-{resource_suffix(stack, 35)}"


@dataclass(frozen=True)
class ResourceNames:
    """The names one stack's resources get (the components use these, never their own)."""

    cluster: str  # the GKE cluster created, or the existing one joined
    namespace: str
    node_pool: str
    node_service_account: str  # account id (6-30 characters)
    checkpoint_service_account: str
    nat_prefix: str  # Cloud Router / NAT for private nodes
    checkpoint_bucket: str  # JetStream's converted checkpoints (bucket names are global)
    loadgen_bucket: str = ""  # the in-cluster load generator's results
    loadgen_service_account: str = ""
    loadgen_pool: str = ""
    metrics_adapter_service_account: str = ""  # the custom-metrics adapter reads Cloud Monitoring as it

    @classmethod
    def derive(cls, stack: str, accelerator_kind: str, cluster: str | None = None,
               namespace: str | None = None, project: str = "") -> ResourceNames:
        return cls(cluster=cluster or cluster_name(stack),
                   namespace=namespace or f"llm-{resource_suffix(stack, 59)}",
                   node_pool=f"{'tpu' if accelerator_kind == 'tpu' else 'gpu'}-{resource_suffix(stack, 36)}",
                   node_service_account=f"nodes-{resource_suffix(stack, 24)}",
                   checkpoint_service_account=f"ckpt-{resource_suffix(stack, 23)}",
                   nat_prefix=resource_suffix(stack, 50),
                   checkpoint_bucket=f"{project}-{stack}-ckpt"[:63].lower(),
                   loadgen_bucket=f"{project}-{resource_suffix(stack, 40)}-loadgen"[:63].lower(),
                   loadgen_service_account=f"lgen-{resource_suffix(stack, 25)}",
                   loadgen_pool=f"loadgen-{resource_suffix(stack, 32)}",
                   metrics_adapter_service_account=f"cmsa-{resource_suffix(stack, 25)}")
