"""Cluster stacks (``role: cluster``), serving stacks that join them (``cluster.fromStack``), and
where a stack may run (``gcp:*`` against the catalog's regions): each bad input names its key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stacks import ClusterSpec, SpecErrors, load_any_stack_file, load_stack_file
from stacks.cluster_spec import cluster_outputs

REF = "organization/gke-llm-bench/shared"
CLUSTER = {"gcp:project": "test-project", "gcp:region": "us-central1", "gcp:zone": "us-central1-a",
           "gke-llm-bench:role": "cluster", "gke-llm-bench:cluster": {"systemMachineType": "e2-standard-8"}}
TPU = {"gke-llm-bench:accelerator": {"machineType": None, "tpu": {"topology": "2x2"}},
       "gke-llm-bench:model": {"name": "gemma-7b"}, "gke-llm-bench:server": {"kind": "jetstream"},
       "gke-llm-bench:precision": "bf16"}


def write_cluster(directory: Path, changes: dict | None = None, name: str = "shared") -> Path:
    path = directory / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {**CLUSTER, **(changes or {})}}))
    return path


def errors(path: Path) -> dict[str, str]:
    with pytest.raises(SpecErrors) as info:
        load_any_stack_file(path)
    return {e.key: f"{e.message} | {e.fix}" for e in info.value.errors}


def test_a_cluster_stack_resolves_to_its_cluster_and_outputs(tmp_path: Path) -> None:
    spec = load_any_stack_file(write_cluster(tmp_path))
    assert isinstance(spec, ClusterSpec) and spec.names.cluster == "llmb-shared"
    assert spec.usd_per_hour == pytest.approx(0.10 + 0.268024)
    out = cluster_outputs(spec)
    assert out["clusterName"] == "llmb-shared" and out["clusterLocation"] == "us-central1-a"
    assert out["getCredentials"] == ("gcloud container clusters get-credentials llmb-shared "
                                     "--location us-central1-a --project test-project")


def test_a_cluster_stack_serves_no_model(tmp_path: Path) -> None:
    found = errors(write_cluster(tmp_path, {"gke-llm-bench:model": {"name": "llama-2-7b"},
                                            "gke-llm-bench:cluster": {"fromStack": REF}}))
    assert "serves no model" in found["gke-llm-bench:model"] and "cluster.fromStack" in found["gke-llm-bench:model"]
    assert "declares its own cluster" in found["gke-llm-bench:cluster.fromStack"]


def test_an_unknown_role_is_refused(stack_file) -> None:
    found = errors(stack_file({"gke-llm-bench:role": "clustre"}))
    assert "is not a stack role" in found["gke-llm-bench:role"] and "serving, cluster" in found["gke-llm-bench:role"]


def test_a_cluster_stack_is_no_benchmark_target(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors) as info:
        load_stack_file(write_cluster(tmp_path))
    assert "is a cluster stack" in info.value.errors[0].message


def test_a_joining_stack_takes_the_cluster_stacks_settings(tmp_path: Path, stack_file) -> None:
    write_cluster(tmp_path, {"gke-llm-bench:cluster": {"managedPrometheus": False,
                                                       "systemMachineType": "e2-standard-8"}})
    spec = load_stack_file(stack_file({"gke-llm-bench:cluster": {"fromStack": REF}}))
    assert spec.shared_cluster == REF and spec.names.cluster == "llmb-shared"
    assert spec.cluster.managed_prometheus is False  # no PodMonitoring where the CRD does not exist
    assert spec.usd_per_hour_cluster == pytest.approx(0.10 + 0.268024)  # still charged a whole cluster
    assert spec.summary()["cluster"] == {"name": "llmb-shared", "shared": True, "fromStack": REF,
                                         "namespace": "llm-t", "nodePool": "gpu-t"}


def test_a_joining_stack_sets_nothing_of_the_cluster(tmp_path: Path, stack_file) -> None:
    write_cluster(tmp_path)
    found = errors(stack_file({"gke-llm-bench:cluster": {"fromStack": REF, "privateNodes": True,
                                                         "existing": {"name": "x", "location": "us-central1-a"}}}))
    assert "is the cluster stack's to set" in found["gke-llm-bench:cluster.privateNodes"]
    assert "is the cluster stack's to set" in found["gke-llm-bench:cluster.existing"]


def test_a_joining_stack_must_be_where_the_cluster_is(tmp_path: Path, stack_file) -> None:
    write_cluster(tmp_path)
    found = errors(stack_file({"gke-llm-bench:cluster": {"fromStack": REF}, "gcp:zone": "us-central1-b"}))
    assert "is zonal, in us-central1-a" in found["gcp:zone"] and "gcp:zone: us-central1-a" in found["gcp:zone"]
    found = errors(stack_file({"gke-llm-bench:cluster": {"fromStack": REF}, "gcp:project": "other-project"}))
    assert "test-project/us-central1" in found["gcp:project"]


def test_a_reference_to_a_serving_stack_or_a_bad_name_is_refused(stack_file) -> None:
    stack_file(name="server")
    found = errors(stack_file({"gke-llm-bench:cluster": {"fromStack": "organization/gke-llm-bench/server"}}))
    assert "is a serving stack" in found["gke-llm-bench:cluster.fromStack"]
    found = errors(stack_file({"gke-llm-bench:cluster": {"fromStack": "org/proj/stack/extra"}}))
    assert "is not a Pulumi stack name" in found["gke-llm-bench:cluster.fromStack"]


def test_an_unseen_cluster_stack_is_a_warning_checked_at_pulumi_up(stack_file) -> None:
    spec = load_stack_file(stack_file({"gke-llm-bench:cluster": {"fromStack": "acme/gke-llm-bench/elsewhere"}}))
    assert spec.names.cluster == "llmb-elsewhere"
    assert any("checked only at `pulumi up`" in w for w in spec.warnings)


def test_unknown_region_and_foreign_zone_name_the_fix(stack_file) -> None:
    found = errors(stack_file({"gcp:region": "us-centrall1", "gcp:zone": "us-centrall1-a"}))
    assert 'did you mean "us-central1"' in found["gcp:region"] and "regions.yaml" in found["gcp:region"]
    found = errors(stack_file({"gcp:zone": "europe-west4-a"}))
    assert 'zone "europe-west4-a" is not in region "us-central1"' in found["gcp:zone"]
    found = errors(stack_file({"gcp:zone": "us-central1-zz"}))
    assert "gcp:zone" in found
    load_stack_file(stack_file({"gcp:zone": "us-central1-ai1a"}))  # an AI zone is a zone of its region


def test_an_accelerator_the_zone_does_not_offer_is_refused(stack_file) -> None:
    found = errors(stack_file({**TPU, "gcp:zone": "us-central1-b"}))
    message = found["gcp:zone"]
    assert "tpu-v5-lite-podslice is not offered in us-central1-b" in message and "use us-central1-a" in message
    found = errors(stack_file({**TPU, "gcp:region": "us-east4", "gcp:zone": "us-east4-a"}))
    assert "us-east4 has no zone with tpu-v5-lite-podslice" in found["gcp:zone"]
    load_stack_file(stack_file({**TPU, "gcp:zone": "us-central1-a"}))
