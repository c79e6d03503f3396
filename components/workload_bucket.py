"""A Cloud Storage bucket that one Kubernetes service account reaches through Workload Identity.

JetStream's checkpoint converter and the in-cluster load generator both need one: a private bucket
(uniform access, public access prevention enforced), a Google service account holding exactly one
role on that bucket and nothing else in the project, and the binding that lets the pods' Kubernetes
service account act as it (``roles/iam.workloadIdentityUser`` for ``<project>.svc.id.goog[ns/ksa]``;
the KSA carries the ``iam.gke.io/gcp-service-account`` annotation).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .gcp import gcp

#: the annotation that ties a Kubernetes service account to the Google one
GSA_ANNOTATION = "iam.gke.io/gcp-service-account"


@dataclass(frozen=True)
class WorkloadBucket:
    bucket: str
    service_account: str  # account id
    project: str
    location: str
    force_destroy: bool
    role: str  # the one role the account gets on the bucket
    purpose: str  # shown as the account's display name


def workload_bucket(name: str, parent: pulumi.Resource, store: WorkloadBucket, stack: str, ns: str, ksa: str,
                    former: dict[str, str] | None = None
                    ) -> tuple[gcp.storage.Bucket, gcp.serviceaccount.Account, list[pulumi.Resource]]:
    """The bucket, the account and its two bindings (what the pods must wait for). ``former``: the
    logical names resources had before (``{"bucket": ..., "bucket-access": ...}``), as aliases, so a
    deployed stack keeps them instead of replacing them."""
    child = pulumi.ResourceOptions(parent=parent)

    def opts(suffix: str) -> pulumi.ResourceOptions:
        old = (former or {}).get(suffix)
        return pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(name=old)] if old else None)

    bucket = gcp.storage.Bucket(
        f"{name}-bucket", name=store.bucket, location=store.location,
        uniform_bucket_level_access=True, public_access_prevention="enforced",
        force_destroy=store.force_destroy, project=store.project, opts=opts("bucket"))
    gsa = gcp.serviceaccount.Account(
        f"{name}-sa", account_id=store.service_account, project=store.project,
        display_name=f"gke-llm-bench {stack}: {store.purpose}", opts=child)
    member = gsa.email.apply(lambda e: f"serviceAccount:{e}")
    iam: list[pulumi.Resource] = [
        gcp.storage.BucketIAMMember(f"{name}-bucket-access", bucket=bucket.name, role=store.role, member=member,
                                    opts=opts("bucket-access")),
        gcp.serviceaccount.IAMMember(
            f"{name}-wi", service_account_id=gsa.name, role="roles/iam.workloadIdentityUser",
            member=f"serviceAccount:{store.project}.svc.id.goog[{ns}/{ksa}]", opts=child),
    ]
    return bucket, gsa, iam
