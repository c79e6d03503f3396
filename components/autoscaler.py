"""The model server's HorizontalPodAutoscaler, and the custom-metrics adapter it reads through.

From ``stacks.autoscale`` (``AutoscaleSpec``), translated as GKE documents it ("Configure autoscaling
for LLM workloads on GPUs"; "Optimize Pod autoscaling based on metrics"):
- the **Custom Metrics Stackdriver Adapter** (GoogleCloudPlatform/k8s-stackdriver, its production
  deployment with the new resource model): namespace ``custom-metrics``, its service account, the
  RBAC an aggregated API server needs, the Deployment and Service, and the three ``APIService``
  registrations of ``custom.metrics.k8s.io`` (v1beta1, v1beta2) and ``external.metrics.k8s.io``;
  it reads Cloud Monitoring as a Google service account holding ``roles/monitoring.viewer``, bound
  through Workload Identity. One per cluster: a stack with its own cluster declares it;
- the **HorizontalPodAutoscaler** (``autoscaling/v2``): the server's Deployment between min and max
  replicas, on the ``Pods`` metric ``prometheus.googleapis.com|<gauge>|gauge`` (the series Managed
  Prometheus collects through the stack's PodMonitoring) at an ``AverageValue`` target per replica,
  scaling up at once and down after the stabilization window.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from stacks.autoscale import AutoscaleSpec
from stacks.spec import StackSpec

from .gcp import gcp
from .workload_bucket import GSA_ANNOTATION

ADAPTER_NS = "custom-metrics"
ADAPTER = "custom-metrics-stackdriver-adapter"
ADAPTER_IMAGE = "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.15.1-gke.0"
ADAPTER_LABELS = {"run": ADAPTER, "k8s-app": ADAPTER}


@dataclass(frozen=True)
class AutoscalerArgs:
    project: str
    stack: str
    namespace: str
    deployment: str
    autoscale: AutoscaleSpec
    adapter_service_account: str  # Google account id

    @classmethod
    def from_spec(cls, spec: StackSpec, deployment: str) -> AutoscalerArgs:
        assert spec.autoscale is not None
        return cls(project=spec.project, stack=spec.name, namespace=spec.namespace, deployment=deployment,
                   autoscale=spec.autoscale, adapter_service_account=spec.names.metrics_adapter_service_account)


def hpa_spec(a: AutoscalerArgs) -> dict[str, object]:
    s = a.autoscale
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": a.deployment},
        "minReplicas": s.min_replicas,
        "maxReplicas": s.max_replicas,
        "metrics": [{"type": "Pods", "pods": {"metric": {"name": s.hpa_metric},
                                              "target": {"type": "AverageValue", "averageValue": f"{s.target:g}"}}}],
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0},
                     "scaleDown": {"stabilizationWindowSeconds": s.scale_down_window}},
    }


class Autoscaler(pulumi.ComponentResource):
    TYPE = "gke-llm-bench:autoscaler:Autoscaler"

    def __init__(self, name: str, a: AutoscalerArgs, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        adapter = self._adapter(name, a)
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa", metadata={"name": a.deployment, "namespace": a.namespace,
                                     "labels": {"app.kubernetes.io/part-of": "gke-llm-bench",
                                                "app.kubernetes.io/managed-by": "pulumi"}},
            spec=hpa_spec(a), opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *adapter]))
        self.register_outputs({"hpa": a.deployment})

    def _adapter(self, name: str, a: AutoscalerArgs) -> list[pulumi.Resource]:
        """The adapter's objects, and the Google account it reads Cloud Monitoring as."""
        child = pulumi.ResourceOptions(parent=self)
        gsa = gcp.serviceaccount.Account(f"{name}-adapter-sa", account_id=a.adapter_service_account,
                                         project=a.project,
                                         display_name=f"gke-llm-bench {a.stack}: custom metrics for the HPA",
                                         opts=child)
        iam = [
            gcp.projects.IAMMember(f"{name}-adapter-monitoring-viewer", project=a.project,
                                   role="roles/monitoring.viewer",
                                   member=gsa.email.apply(lambda e: f"serviceAccount:{e}"), opts=child),
            gcp.serviceaccount.IAMMember(f"{name}-adapter-wi", service_account_id=gsa.name,
                                         role="roles/iam.workloadIdentityUser",
                                         member=f"serviceAccount:{a.project}.svc.id.goog[{ADAPTER_NS}/{ADAPTER}]",
                                         opts=child),
        ]
        ns = k8s.core.v1.Namespace(f"{name}-adapter-ns", metadata={"name": ADAPTER_NS}, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        subject = [{"kind": "ServiceAccount", "name": ADAPTER, "namespace": ADAPTER_NS}]
        rbac = k8s.rbac.v1
        objects: list[pulumi.Resource] = [
            k8s.core.v1.ServiceAccount(f"{name}-adapter-ksa", metadata={
                "name": ADAPTER, "namespace": ADAPTER_NS, "annotations": {GSA_ANNOTATION: gsa.email}}, opts=in_ns),
            rbac.ClusterRoleBinding(f"{name}-adapter-auth-delegator",
                                    metadata={"name": "custom-metrics:system:auth-delegator"},
                                    role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                              "name": "system:auth-delegator"}, subjects=subject, opts=in_ns),
            rbac.RoleBinding(f"{name}-adapter-auth-reader",
                             metadata={"name": "custom-metrics-auth-reader", "namespace": "kube-system"},
                             role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                       "name": "extension-apiserver-authentication-reader"},
                             subjects=subject, opts=in_ns),
            rbac.ClusterRole(f"{name}-adapter-resource-reader", metadata={"name": "custom-metrics-resource-reader"},
                             rules=[{"apiGroups": [""], "resources": ["pods", "nodes", "nodes/stats"],
                                     "verbs": ["get", "list", "watch"]}], opts=in_ns),
            rbac.ClusterRoleBinding(f"{name}-adapter-resource-reader-binding",
                                    metadata={"name": "custom-metrics-resource-reader"},
                                    role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                              "name": "custom-metrics-resource-reader"}, subjects=subject,
                                    opts=in_ns),
            rbac.ClusterRole(f"{name}-external-metrics-reader", metadata={"name": "external-metrics-reader"},
                             rules=[{"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"],
                                     "verbs": ["list", "get", "watch"]}], opts=in_ns),
            rbac.ClusterRoleBinding(f"{name}-external-metrics-reader-binding",
                                    metadata={"name": "external-metrics-reader"},
                                    role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                              "name": "external-metrics-reader"},
                                    subjects=[{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler",
                                               "namespace": "kube-system"}], opts=in_ns),
        ]
        deployment = k8s.apps.v1.Deployment(f"{name}-adapter", metadata={
            "name": ADAPTER, "namespace": ADAPTER_NS, "labels": ADAPTER_LABELS}, spec={
            "replicas": 1, "selector": {"matchLabels": ADAPTER_LABELS},
            "template": {"metadata": {"labels": {**ADAPTER_LABELS, "kubernetes.io/cluster-service": "true"}},
                         "spec": {"serviceAccountName": ADAPTER, "containers": [{
                             "name": "pod-custom-metrics-stackdriver-adapter", "image": ADAPTER_IMAGE,
                             "command": ["/adapter", "--use-new-resource-model=true",
                                         "--fallback-for-container-metrics=true"],
                             "resources": {"requests": {"cpu": "250m", "memory": "400Mi"},
                                           "limits": {"cpu": "250m", "memory": "400Mi"}}}]}}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *objects, *iam]))
        service = k8s.core.v1.Service(f"{name}-adapter-service", metadata={
            "name": ADAPTER, "namespace": ADAPTER_NS, "labels": ADAPTER_LABELS}, spec={
            "ports": [{"port": 443, "protocol": "TCP", "targetPort": 443}], "selector": ADAPTER_LABELS,
            "type": "ClusterIP"}, opts=in_ns)
        apis = [k8s.apiregistration.v1.APIService(
            f"{name}-api-{version}-{group.split('.')[0]}", metadata={"name": f"{version}.{group}"}, spec={
                "insecureSkipTLSVerify": True, "group": group, "groupPriorityMinimum": 100,
                "versionPriority": priority, "service": {"name": ADAPTER, "namespace": ADAPTER_NS},
                "version": version}, opts=pulumi.ResourceOptions(parent=self, depends_on=[service, deployment]))
            for group, version, priority in (("custom.metrics.k8s.io", "v1beta1", 100),
                                             ("custom.metrics.k8s.io", "v1beta2", 200),
                                             ("external.metrics.k8s.io", "v1beta1", 100))]
        return [deployment, service, *apis]
