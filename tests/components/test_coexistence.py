"""Every committed stack can be `pulumi up`-ed into one project beside the others: no two create the
same cluster, GCP service account or bucket, and no two landing in the same cluster declare the same
node pool, namespace or namespaced Kubernetes object (the second `pulumi up` would fail with 409, and
destroying one stack would delete another's resources)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from offline.program_run import ProgramRun, referenced_outputs
from stacks.cluster_spec import ClusterSpec
from stacks.loader import all_stack_files, cluster_stack_files
from stacks.names import CLUSTER_NAME, NAMESPACE, ResourceNames

from .conftest import STACKS, program

EVERY_STACK = all_stack_files()  # serving stacks and cluster stacks


def _cluster_of(run: ProgramRun) -> tuple[str, str, str]:
    """(project, location, name) of the cluster a stack's resources land in."""
    spec = run.spec
    if not isinstance(spec, ClusterSpec) and spec.shared_cluster:
        ref = referenced_outputs(spec)
        assert ref is not None
        return ref["project"], ref["clusterLocation"], ref["clusterName"]
    if not isinstance(spec, ClusterSpec) and spec.cluster.existing:
        e = spec.cluster.existing
        return e.project or spec.project, e.location, e.name
    return spec.project, spec.location, spec.names.cluster


def _claims() -> dict[tuple, list[str]]:
    """(what, identity) -> the stacks that create it."""
    claims: dict[tuple, list[str]] = defaultdict(list)
    for name in sorted(EVERY_STACK):
        run = program(name, EVERY_STACK[name])
        cluster = _cluster_of(run)
        for r in run.resources:
            i = r.inputs
            if r.type == "gcp:container/cluster:Cluster":
                claims[("cluster", (i["project"], i["location"], i["name"]))].append(name)
            elif r.type == "gcp:container/nodePool:NodePool":
                claims[("node pool", cluster, i["name"])].append(name)
            elif r.type == "gcp:serviceaccount/account:Account":
                claims[("service account", i["project"], i["accountId"])].append(name)
            elif r.type == "gcp:storage/bucket:Bucket":
                claims[("bucket", i["name"])].append(name)
            elif r.type == "kubernetes:core/v1:Namespace":
                claims[("namespace", cluster, i["metadata"]["name"])].append(name)
            elif r.type.startswith("kubernetes:") and r.custom and "namespace" in (i.get("metadata") or {}):
                meta = i["metadata"]
                claims[("object", cluster, r.type, meta["namespace"], meta["name"])].append(name)
    return claims


def test_no_two_committed_stacks_declare_the_same_thing():
    claims = _claims()
    assert {k[0] for k in claims} >= {"cluster", "node pool", "service account", "namespace", "object", "bucket"}
    dupes = {k: v for k, v in claims.items() if len(v) > 1}
    assert not dupes, dupes


def test_both_modes_are_committed_and_a_shared_stack_adds_only_its_pool_namespace_and_server():
    clusters = {name: program(name, path) for name, path in cluster_stack_files().items()}
    created = {_cluster_of(run): name for name, run in clusters.items()}
    shared = [program(n) for n in STACKS if program(n).spec.shared_cluster]
    isolated = [program(n) for n in STACKS if not program(n).spec.shared_cluster]
    assert clusters and shared and isolated
    assert all(r.by_type("gcp:container/cluster:Cluster") for r in isolated)
    for run in shared:
        owner = created[_cluster_of(run)]  # it lands in a committed cluster stack's cluster
        reference = run.one("pulumi:pulumi:StackReference")
        assert reference.inputs["name"].rsplit("/", 1)[-1] == owner
        made = {r.type for r in run.resources if r.custom}
        assert not made & {"gcp:container/cluster:Cluster", "gcp:serviceaccount/account:Account",
                           "gcp:projects/iAMMember:IAMMember"}, run.stack
        pool = run.one("gcp:container/nodePool:NodePool").inputs
        owner_account = clusters[owner].outputs["nodeServiceAccount"]
        assert pool["nodeConfig"]["serviceAccount"] == owner_account
        assert pool["cluster"] == clusters[owner].outputs["clusterName"]


def test_derived_names_follow_the_rules_and_stay_unique_when_truncated():
    long_a, long_b = "a" * 80 + "-one", "a" * 80 + "-two"
    for stack in ("llama2-7b-g2", "7B_Model.Test", long_a, long_b):
        n = ResourceNames.derive(stack, "gpu", project="my-gcp-project")
        assert CLUSTER_NAME.match(n.cluster) and NAMESPACE.match(n.namespace), n
        assert 6 <= len(n.node_service_account) <= 30 and len(n.node_pool) <= 40 and len(n.checkpoint_bucket) <= 63
    a, b = ResourceNames.derive(long_a, "gpu"), ResourceNames.derive(long_b, "gpu")
    assert a.cluster != b.cluster and a.namespace != b.namespace and a.node_pool != b.node_pool
    # stable: the same stack always gets the same names (previews stay meaningful)
    assert ResourceNames.derive("llama2-7b-g2", "gpu") == ResourceNames.derive("llama2-7b-g2", "gpu")


def test_a_referenced_cluster_elsewhere_than_the_stack_file_says_fails_at_pulumi_up() -> None:
    import pulumi

    from components.cluster_reference import _check_location

    spec = program("llama2-7b-a3").spec
    assert _check_location(["us-central1-a", "my-gcp-project"], spec) == "us-central1-a"
    assert _check_location(["us-central1", "my-gcp-project"], spec) == "us-central1"  # regional: any zone
    for wrong in (["us-central1-b", "my-gcp-project"], ["us-central1-a", "other-project"]):
        with pytest.raises(pulumi.RunError, match=r"cluster\.fromStack"):
            _check_location(wrong, spec)
