"""Every committed stack can be `pulumi up`-ed into one project beside the others: no two create the
same cluster, GCP service account or bucket, and no two landing in the same cluster declare the same
node pool, namespace or namespaced Kubernetes object (the second `pulumi up` would fail with 409, and
destroying one stack would delete another's resources)."""

from __future__ import annotations

from collections import defaultdict

from stacks.names import CLUSTER_NAME, NAMESPACE, ResourceNames

from .conftest import STACKS, program


def _claims() -> dict[tuple, list[str]]:
    """(what, identity) -> the stacks that create it."""
    claims: dict[tuple, list[str]] = defaultdict(list)
    for name in sorted(STACKS):
        run = program(name)
        spec = run.spec
        cluster = (spec.project, spec.location, spec.names.cluster)
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


def test_both_modes_are_committed_and_the_shared_stack_lands_in_its_owner_cluster():
    specs = {name: program(name).spec for name in STACKS}
    shared = [s for s in specs.values() if s.cluster.existing is not None]
    assert shared and len(shared) < len(specs)
    owners = {(s.location, s.names.cluster): n for n, s in specs.items() if s.cluster.existing is None}
    for s in shared:
        assert (s.cluster.existing.location, s.cluster.existing.name) in owners, s.name
        assert not program(s.name).by_type("gcp:container/cluster:Cluster")  # it creates no cluster


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
