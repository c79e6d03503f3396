"""``server.autoscaling``: the HPA's metric per server, its rule, and the stack rules around it."""

from __future__ import annotations

import pytest

from loadtest.protocols import PROTOCOLS
from stacks.autoscale import AUTOSCALE_METRICS, AutoscaleSpec
from stacks.catalog import load_catalog
from stacks.errors import SpecErrors
from stacks.loader import read_stack_document, spec_from_config, stack_files

STACK = "llama3-8b-g2-fleet"


def test_each_metric_is_the_servers_own_series_for_that_role():
    servers = load_catalog().servers
    assert set(AUTOSCALE_METRICS) == set(servers)
    for kind, roles in AUTOSCALE_METRICS.items():
        protocol = PROTOCOLS[servers[kind].dialect]
        for role, name in roles.items():
            assert name in protocol.METRIC_ROLES[role], (kind, role, name)
            assert "{" not in name  # the HPA reads one unlabelled gauge


def test_the_hpa_rule_by_hand():
    s = AutoscaleSpec(min_replicas=1, max_replicas=4, role="waiting", metric="vllm:num_requests_waiting",
                      target=8.0, scale_down_window=300)
    assert s.hpa_metric == "prometheus.googleapis.com|vllm:num_requests_waiting|gauge"
    assert s.desired(1, 20.0) == 3  # ceil(1 x 20 / 8)
    assert s.desired(2, 8.7) == 2  # within 10 % of the target: unchanged
    assert s.desired(2, 40.0) == 4  # ceil(10) clamped to max
    assert s.desired(3, 0.0) == 1  # clamped to min


def _spec(**sections: dict):
    """The committed stack with whole sections replaced (``server`` is merged: its autoscaling stays)."""
    flat = dict(read_stack_document(stack_files()[STACK]))
    for key, section in sections.items():
        merged = {**flat[f"gke-llm-bench:{key}"], **section} if key == "server" else section
        flat[f"gke-llm-bench:{key}"] = merged
    return spec_from_config(flat, STACK)


def test_the_committed_stack_autoscales_one_to_four():
    spec = _spec()
    assert spec.autoscale is not None and (spec.autoscale.min_replicas, spec.autoscale.max_replicas) == (1, 4)
    assert spec.replicas == 1 and spec.node_count == 4  # $/h: the pool at its maximum
    assert spec.summary()["server"]["autoscaling"]["series"] == "vllm:num_requests_waiting"


G2 = "g2-standard-8"


@pytest.mark.parametrize(("sections", "key", "words"), [
    ({"accelerator": {"machineType": G2, "autoscaling": {"min": 1, "max": 2}}}, "server.autoscaling.maxReplicas",
     "grows to 2"),
    ({"accelerator": {"machineType": G2, "nodeCount": 4}}, "accelerator.autoscaling", "fixed size"),
    ({"server": {"replicas": 2}}, "server.replicas", "beside `autoscaling`"),
    ({"server": {"autoscaling": {"minReplicas": 3, "maxReplicas": 2, "target": 8}}},
     "server.autoscaling.minReplicas", "> maxReplicas"),
    ({"cluster": {"deletionProtection": False, "managedPrometheus": False}}, "server.autoscaling",
     "Managed Prometheus"),
])
def test_autoscaling_rules_name_the_key_and_the_fix(sections, key, words):
    with pytest.raises(SpecErrors) as exc:
        _spec(**sections)
    text = exc.value.render()
    assert f"gke-llm-bench:{key}" in text and words in text and "fix" in text.lower()


def test_triton_has_no_single_running_gauge():
    flat = dict(read_stack_document(stack_files()["llama2-7b-triton-l4"]))
    flat["gke-llm-bench:accelerator"] = {**flat["gke-llm-bench:accelerator"], "autoscaling": {"min": 1, "max": 2}}
    flat["gke-llm-bench:accelerator"].pop("nodeCount", None)
    flat["gke-llm-bench:server"] = {**flat["gke-llm-bench:server"],
                                    "autoscaling": {"maxReplicas": 2, "metric": "running", "target": 32}}
    with pytest.raises(SpecErrors, match="no single gauge for `running`"):
        spec_from_config(flat, "llama2-7b-triton-l4")
