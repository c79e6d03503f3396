"""A stack's all-in $/h: its accelerators plus a whole GKE cluster (management fee and system pool)."""

from __future__ import annotations

import pytest

from stacks.catalog import load_catalog
from stacks.loader import load_stack_file, stack_files


def test_all_in_adds_the_management_fee_and_the_system_pool(stack_file) -> None:
    spec = load_stack_file(stack_file(), "t")
    cat = load_catalog()
    assert spec.usd_per_hour == pytest.approx(0.8536)  # one g2-standard-8
    assert spec.usd_per_hour_cluster == pytest.approx(cat.cluster_fee_usd_h + cat.system_machines["e2-standard-4"])
    assert spec.summary()["cost"]["usdPerHourAllIn"] == pytest.approx(0.8536 + 0.10 + 0.134012, abs=1e-4)


def test_a_regional_cluster_pays_a_system_node_per_zone(stack_file) -> None:
    spec = load_stack_file(stack_file({"gcp:zone": None, "gcp:zones": ["us-central1-a", "us-central1-b"]}), "t")
    assert spec.usd_per_hour_cluster == pytest.approx(0.10 + 2 * 0.134012)


def test_a_stack_joining_another_cluster_is_still_charged_a_whole_cluster() -> None:
    joined = load_stack_file(stack_files()["llama2-7b-a3"], "llama2-7b-a3")
    assert joined.shared_cluster == "organization/gke-llm-bench/bench-cluster"
    assert joined.usd_per_hour_all_in == pytest.approx(joined.usd_per_hour + 0.10 + 0.134012, abs=1e-4)


def test_an_unpriced_system_machine_is_left_out_with_a_warning(stack_file) -> None:
    spec = load_stack_file(stack_file({"gke-llm-bench:cluster": {"systemMachineType": "c3-standard-4"}}), "t")
    assert spec.usd_per_hour_cluster == pytest.approx(0.10)
    assert any("cluster.systemMachineType: no catalog price for c3-standard-4" in w for w in spec.warnings)
