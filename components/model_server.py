"""The model server: namespace, Secrets, the server Deployment (and its preparation Jobs), Service, PodMonitoring.

Everything common to the four servers lives here; what differs (image, flags, extra containers,
engine builds) comes from ``components.servers.<kind>``. Values come from the ``StackSpec``: GPU
limit = TP, node selector and toleration from the accelerator, probe budgets and rollout timeouts
from ``startup_budget_s`` / ``rollout_timeout_s``, exposure and allowlist from ``exposure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.outputs import service_name
from stacks.spec import StackSpec

from .gcp import gcp
from .servers import TRANSLATORS, PrepJob, SecretRefs, ServerWorkload, auth_proxy
from .servers.base import MODEL_CACHE_VOLUME, SHM_VOLUME

GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GPU_TAINT_KEY = GPU_RESOURCE
TPU_TAINT_KEY = TPU_RESOURCE
INTERNAL_LB_ANNOTATION = "networking.gke.io/load-balancer-type"
SCRAPE_INTERVAL = "15s"

#: pulumi-kubernetes: declare the object without waiting for it to become ready
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"


@dataclass(frozen=True)
class ModelServerArgs:
    spec: StackSpec
    hf_token: pulumi.Input[str] | None = None  # a Pulumi secret
    api_key: pulumi.Input[str] | None = None  # a Pulumi secret
    kaggle_json: pulumi.Input[str] | None = None  # a Pulumi secret
    project: pulumi.Input[str] | None = None  # for the Workload Identity binding (JetStream's bucket)


def labels(spec: StackSpec) -> dict[str, str]:
    """Recommended app.kubernetes.io labels; the first two are the selector."""
    version = spec.image.rsplit(":", 1)[-1] if ":" in spec.image else "latest"
    return {
        "app.kubernetes.io/name": spec.server.name,
        "app.kubernetes.io/instance": service_name(spec),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "gke-llm-bench",
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/version": version[:63],
    }


def selector(spec: StackSpec) -> dict[str, str]:
    full = labels(spec)
    # component is part of the selector so preparation Jobs (their own component) never match the Service.
    return {k: full[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")}


def scheduling(spec: StackSpec) -> tuple[dict[str, str], list[dict[str, str]], dict[str, str]]:
    """nodeSelector, tolerations and the accelerator limit that pin the pod to the pool."""
    if spec.accelerator_kind == "tpu":
        node_selector = {"cloud.google.com/gke-tpu-accelerator": spec.accelerator,
                         "cloud.google.com/gke-tpu-topology": str(spec.machine.topology)}
        tolerations = [{"key": TPU_TAINT_KEY, "operator": "Equal", "value": "present", "effect": "NoSchedule"}]
        limit = {TPU_RESOURCE: str(spec.chips_per_node)}
    else:
        node_selector = {"cloud.google.com/gke-accelerator": spec.accelerator}
        tolerations = [{"key": GPU_TAINT_KEY, "operator": "Equal", "value": "present", "effect": "NoSchedule"}]
        limit = {GPU_RESOURCE: str(spec.tensor_parallel)}
    if spec.spot:
        node_selector["cloud.google.com/gke-spot"] = "true"
    return node_selector, tolerations, limit


def probes(spec: StackSpec, w: ServerWorkload) -> dict[str, dict[str, Any]]:
    """Startup budget sized for multi-GB downloads; readiness and liveness on the real health path."""
    def get(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": w.http_port, "scheme": "HTTP"}}
    period = 10
    return {
        "startupProbe": {**get(w.health_path), "periodSeconds": period, "timeoutSeconds": 5,
                         "failureThreshold": math.ceil(spec.startup_budget_s / period)},
        "readinessProbe": {**get(w.health_path), "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**get(w.liveness_path or w.health_path), "periodSeconds": 30, "timeoutSeconds": 10,
                          "failureThreshold": 5},
    }


def pod_spec(spec: StackSpec, w: ServerWorkload, service_account: str) -> dict[str, Any]:
    """The complete pod spec (a plain Kubernetes dict: schema-validated in the tests)."""
    node_selector, tolerations, limit = scheduling(spec)
    res = spec.server_resources
    server = {
        **w.server,
        "resources": {"requests": {**res["requests"], **limit}, "limits": {**res["limits"], **limit}},
    }
    containers = [server, *w.containers[1:]]
    containers[w.probe_container] = {**containers[w.probe_container], **probes(spec, w)}
    mounted = {m["name"] for c in [*w.containers, *w.init_containers] for m in c.get("volumeMounts", [])}
    if MODEL_CACHE_VOLUME in mounted:
        server["resources"]["requests"]["ephemeral-storage"] = f"{spec.model_cache_gb}Gi"
    init = [{**c, "resources": {"requests": {**res["requests"], **limit}, "limits": {**res["limits"], **limit}}}
            for c in w.init_containers]
    volumes = list(w.volumes)
    if SHM_VOLUME in mounted:
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": f"{spec.shm_gb}Gi"}})
    if MODEL_CACHE_VOLUME in mounted:
        volumes.append({"name": MODEL_CACHE_VOLUME, "emptyDir": {"sizeLimit": f"{spec.model_cache_gb}Gi"}})
    out: dict[str, Any] = {
        "serviceAccountName": service_account,
        "nodeSelector": node_selector,
        "tolerations": tolerations,
        "containers": containers,
        "volumes": volumes,
        "terminationGracePeriodSeconds": 60,
    }
    if init:
        out["initContainers"] = init
    return out


def service_spec(spec: StackSpec, w: ServerWorkload) -> tuple[dict[str, Any], dict[str, str]]:
    """Service spec and annotations for the exposure mode (allowlist only ever widens a LoadBalancer)."""
    # an external vLLM is reached only through the authenticating proxy
    target = auth_proxy.PORT_NAME if spec.auth_proxy else "http"
    ports = [{"name": "http", "port": spec.service_port, "targetPort": target, "protocol": "TCP"}]
    if spec.server.grpc_port and spec.exposure == "cluster":  # a load balancer publishes HTTP, never gRPC
        ports.append({"name": "grpc", "port": spec.server.grpc_port, "targetPort": "grpc", "protocol": "TCP"})
    if w.metrics_port != w.http_port:
        ports.append({"name": "metrics", "port": w.metrics_port, "targetPort": "metrics", "protocol": "TCP"})
    svc: dict[str, Any] = {"selector": selector(spec), "ports": ports}
    annotations: dict[str, str] = {}
    if spec.exposure == "cluster":
        svc["type"] = "ClusterIP"
    else:
        svc["type"] = "LoadBalancer"
        if spec.exposure == "internal":
            annotations[INTERNAL_LB_ANNOTATION] = "Internal"
        if spec.allowlist:
            svc["loadBalancerSourceRanges"] = list(spec.allowlist)
    return svc, annotations


def pod_monitoring_spec(spec: StackSpec, w: ServerWorkload) -> dict[str, Any]:
    """GMP PodMonitoring (monitoring.googleapis.com/v1): scrape the server's real metrics port and path."""
    port = "metrics" if w.metrics_port != w.http_port else "http"
    return {"selector": {"matchLabels": selector(spec)},
            "endpoints": [{"port": port, "path": w.metrics_path, "interval": SCRAPE_INTERVAL}]}


class ModelServer(pulumi.ComponentResource):
    """Serves the spec's model with the spec's server on the accelerator pool."""

    TYPE = "gke-llm-bench:model_server:ModelServer"

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        spec = args.spec
        svc_name, ns_name = service_name(spec), spec.namespace
        child = pulumi.ResourceOptions(parent=self)
        meta_labels = labels(spec)

        namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": ns_name, "labels": {
            "app.kubernetes.io/part-of": "gke-llm-bench", "app.kubernetes.io/managed-by": "pulumi"}}, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        wait_for: list[pulumi.Resource] = []  # what the server's pods (and Jobs) need before they start

        def secret(key: str, suffix: str, data_key: str, value: pulumi.Input[str] | None):
            if value is None:
                return None, None
            wait_for.append(k8s.core.v1.Secret(
                f"{name}-{key}",
                metadata={"name": f"{svc_name}-{suffix}", "namespace": ns_name, "labels": meta_labels},
                type="Opaque", string_data={data_key: pulumi.Output.secret(value)}, opts=in_ns))
            return f"{svc_name}-{suffix}", data_key

        hf = secret("hf-token", "hf-token", "token", args.hf_token if spec.hf_token_key else None)
        api = secret("api-key", "api-key", "key", args.api_key if spec.api_key_key else None)
        kaggle = secret("kaggle", "kaggle", "kaggle.json", args.kaggle_json if spec.kaggle_key_key else None)
        refs = SecretRefs(hf_token=hf if hf[0] else None, api_key=api if api[0] else None)

        translator = TRANSLATORS[spec.server.name]
        ksa_name = svc_name
        ksa_annotations: dict[str, Any] = {}
        self.bucket: pulumi.Output[str] | None = None
        if spec.server.name == "jetstream":
            bucket, gsa, iam = self._checkpoint_bucket(name, spec, ns_name, ksa_name, args.project)
            self.bucket = bucket.name
            ksa_annotations["iam.gke.io/gcp-service-account"] = gsa.email
            wait_for += iam
            workload = translator.workload(spec, refs, bucket=bucket.name, kaggle=kaggle if kaggle[0] else None)
        else:
            workload = translator.workload(spec, refs)
        if spec.auth_proxy:
            config_name = f"{svc_name}-auth-proxy"
            wait_for.append(k8s.core.v1.ConfigMap(
                f"{name}-auth-proxy", metadata={"name": config_name, "namespace": ns_name, "labels": meta_labels},
                data={"default.conf.template": auth_proxy.nginx_template(spec.server.http_port)}, opts=in_ns))
            sidecar, volume = auth_proxy.container(refs, config_name)
            workload = replace(workload, containers=[*workload.containers, sidecar],
                               volumes=[*workload.volumes, volume])

        ksa = k8s.core.v1.ServiceAccount(f"{name}-ksa", metadata={
            "name": ksa_name, "namespace": ns_name, "labels": meta_labels, "annotations": ksa_annotations},
            automount_service_account_token=False, opts=in_ns)
        wait_for.append(ksa)
        pod = pod_spec(spec, workload, ksa_name)
        node_selector, tolerations, _ = scheduling(spec)
        jobs = [self._job(name, spec, job, ns_name, ksa_name, node_selector, tolerations, meta_labels, wait_for)
                for job in workload.jobs]

        timeout = f"{spec.rollout_timeout_s}s"
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": svc_name, "namespace": ns_name, "labels": meta_labels,
                      # queued capacity can take hours: do not hold `pulumi up` on the rollout
                      "annotations": {} if spec.await_rollout else {SKIP_AWAIT_ANNOTATION: "true"}},
            spec={
                "replicas": spec.replicas,
                "selector": {"matchLabels": selector(spec)},
                # The pool holds exactly replicas x TP accelerators: replace pods one at a time, no surge.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "progressDeadlineSeconds": spec.rollout_timeout_s,
                "template": {"metadata": {"labels": meta_labels}, "spec": pod},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*wait_for, *jobs],
                                        custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)),
        )
        svc_spec, svc_annotations = service_spec(spec, workload)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": svc_name, "namespace": ns_name, "labels": meta_labels, "annotations": svc_annotations},
            spec=svc_spec, opts=in_ns)
        # The PodMonitoring CRD exists only where Managed Prometheus is on (the cluster setting decides).
        self.pod_monitoring = k8s.apiextensions.CustomResource(
            f"{name}-podmonitoring", api_version="monitoring.googleapis.com/v1", kind="PodMonitoring",
            metadata={"name": svc_name, "namespace": ns_name, "labels": meta_labels},
            spec=pod_monitoring_spec(spec, workload), opts=in_ns) if spec.cluster.managed_prometheus else None

        self.service_name = pulumi.Output.from_input(svc_name)
        self.namespace = pulumi.Output.from_input(ns_name)
        self.external_address: pulumi.Output[str | None] = (
            self.service.status.apply(_lb_address) if spec.exposure != "cluster" else pulumi.Output.from_input(None))
        self.register_outputs({"serviceName": self.service_name, "namespace": self.namespace,
                               "externalAddress": self.external_address})

    def _checkpoint_bucket(self, name: str, spec: StackSpec, ns: str, ksa: str, project: pulumi.Input[str] | None):
        """Cloud Storage bucket for converted checkpoints, reachable from the pods via Workload Identity."""
        child = pulumi.ResourceOptions(parent=self)
        bucket = gcp.storage.Bucket(
            f"{name}-checkpoints", name=spec.names.checkpoint_bucket, location=spec.region,
            uniform_bucket_level_access=True, public_access_prevention="enforced",
            force_destroy=not spec.cluster.deletion_protection, project=spec.project, opts=child)
        gsa = gcp.serviceaccount.Account(
            f"{name}-checkpoint-sa", account_id=spec.names.checkpoint_service_account, project=spec.project,
            display_name=f"gke-llm-bench {spec.name}: checkpoint read/write", opts=child)
        member = gsa.email.apply(lambda e: f"serviceAccount:{e}")
        iam = [
            gcp.storage.BucketIAMMember(f"{name}-checkpoint-object-user", bucket=bucket.name,
                                        role="roles/storage.objectUser", member=member, opts=child),
            gcp.serviceaccount.IAMMember(
                f"{name}-checkpoint-wi", service_account_id=gsa.name, role="roles/iam.workloadIdentityUser",
                member=f"serviceAccount:{spec.project}.svc.id.goog[{ns}/{ksa}]", opts=child),
        ]
        return bucket, gsa, iam

    def _job(self, name: str, spec: StackSpec, job: PrepJob, ns: str, ksa: str, node_selector: dict[str, str],
             tolerations: list[dict[str, str]], meta_labels: dict[str, str], wait_for: list[pulumi.Resource]):
        _, _, limit = scheduling(spec)
        pod = dict(job.pod_spec)
        pod["containers"] = [{**c, "resources": {"requests": dict(limit), "limits": dict(limit)}}
                             for c in pod["containers"]]
        pod.update(serviceAccountName=ksa, nodeSelector=node_selector, tolerations=tolerations)
        timeout = f"{job.timeout_s}s"
        return k8s.batch.v1.Job(
            f"{name}-{job.name}",
            metadata={"name": f"{service_name(spec)}-{job.name}"[:63], "namespace": ns,
                      "labels": {**meta_labels, "app.kubernetes.io/component": job.name}},
            spec={"backoffLimit": job.backoff_limit, "activeDeadlineSeconds": job.timeout_s,
                  "template": {"metadata": {"labels": {**meta_labels, "app.kubernetes.io/component": job.name}},
                               "spec": pod}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=wait_for,
                                        custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)))


def _lb_address(status: Any) -> str | None:
    """The load balancer's IP (or hostname) once GKE has assigned one."""
    try:
        ingress = status.load_balancer.ingress or []
    except AttributeError:
        return None
    for entry in ingress:
        if getattr(entry, "ip", None) or getattr(entry, "hostname", None):
            return entry.ip or entry.hostname
    return None
