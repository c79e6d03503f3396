"""The HorizontalPodAutoscaler and its custom-metrics adapter as the program declares them, under mocks."""

from __future__ import annotations

from .conftest import program
from .test_program import DEPLOYMENT, plaintext

STACK = "llama3-8b-g2-fleet"


def _one(run, type_token: str, name: str) -> dict:
    (found,) = [r for r in run.resources if r.type == type_token and r.name == name]
    return plaintext(found.inputs)


def test_the_hpa_scales_the_server_on_its_queue():
    run = program(STACK)
    hpa = _one(run, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "autoscaler-hpa")
    server = plaintext(run.one(DEPLOYMENT, "model_server").inputs)
    assert hpa["metadata"]["namespace"] == server["metadata"]["namespace"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": server["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "prometheus.googleapis.com|vllm:num_requests_waiting|gauge"},
        "target": {"type": "AverageValue", "averageValue": "8"}}}]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert "replicas" not in server["spec"]  # the HPA owns the count
    # Managed Prometheus collects the series the HPA reads
    monitoring = plaintext(run.one("kubernetes:monitoring.googleapis.com/v1:PodMonitoring").inputs)
    assert monitoring["spec"]["selector"]["matchLabels"].items() <= \
        server["spec"]["template"]["metadata"]["labels"].items()


def test_the_adapter_serves_the_metrics_apis_as_a_monitoring_viewer():
    run = program(STACK)
    apis = {plaintext(r.inputs)["metadata"]["name"]
            for r in run.by_type("kubernetes:apiregistration.k8s.io/v1:APIService")}
    assert apis == {"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io",
                    "v1beta1.external.metrics.k8s.io"}
    gsa = _one(run, "gcp:serviceaccount/account:Account", "autoscaler-adapter-sa")
    email = f"{gsa['accountId']}@{run.spec.project}.iam.gserviceaccount.com"
    viewer = _one(run, "gcp:projects/iAMMember:IAMMember", "autoscaler-adapter-monitoring-viewer")
    assert (viewer["role"], viewer["member"]) == ("roles/monitoring.viewer", f"serviceAccount:{email}")
    wi = _one(run, "gcp:serviceaccount/iAMMember:IAMMember", "autoscaler-adapter-wi")
    ksa_ref = "custom-metrics/custom-metrics-stackdriver-adapter"
    assert wi["member"] == f"serviceAccount:{run.spec.project}.svc.id.goog[{ksa_ref}]"
    ksa = _one(run, "kubernetes:core/v1:ServiceAccount", "autoscaler-adapter-ksa")
    assert ksa["metadata"] == {"name": "custom-metrics-stackdriver-adapter", "namespace": "custom-metrics",
                               "annotations": {"iam.gke.io/gcp-service-account": email}}
    adapter = _one(run, DEPLOYMENT, "autoscaler-adapter")["spec"]["template"]["spec"]
    assert adapter["serviceAccountName"] == "custom-metrics-stackdriver-adapter"
    assert "--use-new-resource-model=true" in adapter["containers"][0]["command"]


def test_stacks_without_autoscaling_declare_none_of_it():
    run = program("llama2-7b-g2")
    assert not run.by_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert not run.by_type("kubernetes:apiregistration.k8s.io/v1:APIService")
    assert plaintext(run.one(DEPLOYMENT, "model_server").inputs)["spec"]["replicas"] == 1
