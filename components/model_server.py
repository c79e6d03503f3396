"""The model server: namespace, Secrets, the server Deployment (and its preparation Jobs), Service, PodMonitoring.

Everything common to the four servers lives here; what differs (image, flags, extra containers,
engine builds) comes from ``components.servers.<kind>``. Values come from ``ModelServerArgs``, built
from the ``StackSpec`` by ``from_spec``: GPU limit = TP, node selector and toleration from the
accelerator, probe budgets and rollout timeouts from ``startup_budget_s`` / ``rollout_timeout_s``,
exposure and allowlist from ``exposure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.outputs import service_name
from stacks.spec import StackSpec

from .servers import TRANSLATORS, PrepJob, SecretRefs, ServerArgs, ServerWorkload, auth_proxy
from .servers.base import MODEL_CACHE_VOLUME, SHM_VOLUME
from .workload_bucket import GSA_ANNOTATION, WorkloadBucket, workload_bucket

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
    """What the model-server component reads: the server's own knobs (``ServerArgs``) and where and
    how its pods run. Built from the spec by ``from_spec``; the component decides none of it."""

    server: ServerArgs
    stack: str
    service_name: str  # the Deployment, Service, ServiceAccount and PodMonitoring
    namespace: str
    replicas: int  # None of it is declared when an autoscaler owns the count
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]
    accelerator_limit: dict[str, str]  # what one pod takes of its node's GPUs / TPU chips
    resources: dict[str, dict[str, str]]  # CPU / memory of the server container
    model_cache_gb: int
    shm_gb: int
    rollout_timeout_s: int
    await_rollout: bool
    exposure: str  # cluster | internal | external
    allowlist: tuple[str, ...]
    service_port: int
    auth_proxy: bool
    pod_monitoring: bool  # Managed Prometheus is on in the cluster: its CRD exists
    checkpoints: WorkloadBucket | None = None  # JetStream's converted checkpoints
    hf_token: pulumi.Input[str] | None = None  # a Pulumi secret
    api_key: pulumi.Input[str] | None = None  # a Pulumi secret
    kaggle_json: pulumi.Input[str] | None = None  # a Pulumi secret
    autoscaled: bool = False  # a HorizontalPodAutoscaler sets the replica count

    @classmethod
    def from_spec(cls, spec: StackSpec, *, hf_token: pulumi.Input[str] | None = None,
                  api_key: pulumi.Input[str] | None = None,
                  kaggle_json: pulumi.Input[str] | None = None) -> ModelServerArgs:
        """Secrets are passed only when the spec uses them (a Secret is created for each one given)."""
        node_selector, tolerations, limit = scheduling(spec)
        store = (WorkloadBucket(bucket=spec.names.checkpoint_bucket,
                                service_account=spec.names.checkpoint_service_account, project=spec.project,
                                location=spec.region, force_destroy=not spec.cluster.deletion_protection,
                                role="roles/storage.objectUser", purpose="checkpoint read/write")
                 if spec.server.name == "jetstream" else None)
        return cls(server=ServerArgs.from_spec(spec), stack=spec.name, service_name=service_name(spec),
                   namespace=spec.namespace, replicas=spec.replicas, node_selector=node_selector,
                   tolerations=tuple(tolerations), accelerator_limit=limit, resources=spec.server_resources,
                   model_cache_gb=spec.model_cache_gb, shm_gb=spec.shm_gb, rollout_timeout_s=spec.rollout_timeout_s,
                   await_rollout=spec.await_rollout, exposure=spec.exposure, allowlist=spec.allowlist,
                   service_port=spec.service_port, auth_proxy=spec.auth_proxy,
                   pod_monitoring=spec.cluster.managed_prometheus, checkpoints=store,
                   hf_token=hf_token if spec.hf_token_key else None,
                   api_key=api_key if spec.api_key_key else None,
                   kaggle_json=kaggle_json if spec.kaggle_key_key else None, autoscaled=spec.autoscale is not None)


def labels(a: ModelServerArgs) -> dict[str, str]:
    """Recommended app.kubernetes.io labels; the first two are the selector."""
    image = a.server.image
    version = image.rsplit(":", 1)[-1] if ":" in image else "latest"
    return {
        "app.kubernetes.io/name": a.server.kind.name,
        "app.kubernetes.io/instance": a.service_name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "gke-llm-bench",
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/version": version[:63],
    }


def selector(a: ModelServerArgs) -> dict[str, str]:
    full = labels(a)
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


def probes(a: ModelServerArgs, w: ServerWorkload) -> dict[str, dict[str, Any]]:
    """Startup budget sized for multi-GB downloads; readiness and liveness on the real health path."""
    def get(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": w.http_port, "scheme": "HTTP"}}
    period = 10
    return {
        "startupProbe": {**get(w.health_path), "periodSeconds": period, "timeoutSeconds": 5,
                         "failureThreshold": math.ceil(a.server.startup_budget_s / period)},
        "readinessProbe": {**get(w.health_path), "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**get(w.liveness_path or w.health_path), "periodSeconds": 30, "timeoutSeconds": 10,
                          "failureThreshold": 5},
    }


def pod_spec(a: ModelServerArgs, w: ServerWorkload, service_account: str) -> dict[str, Any]:
    """The complete pod spec (a plain Kubernetes dict: schema-validated in the tests)."""
    limit = a.accelerator_limit
    res = a.resources
    server = {
        **w.server,
        "resources": {"requests": {**res["requests"], **limit}, "limits": {**res["limits"], **limit}},
    }
    containers = [server, *w.containers[1:]]
    containers[w.probe_container] = {**containers[w.probe_container], **probes(a, w)}
    mounted = {m["name"] for c in [*w.containers, *w.init_containers] for m in c.get("volumeMounts", [])}
    if MODEL_CACHE_VOLUME in mounted:
        server["resources"]["requests"]["ephemeral-storage"] = f"{a.model_cache_gb}Gi"
    init = [{**c, "resources": {"requests": {**res["requests"], **limit}, "limits": {**res["limits"], **limit}}}
            for c in w.init_containers]
    volumes = list(w.volumes)
    if SHM_VOLUME in mounted:
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": f"{a.shm_gb}Gi"}})
    if MODEL_CACHE_VOLUME in mounted:
        volumes.append({"name": MODEL_CACHE_VOLUME, "emptyDir": {"sizeLimit": f"{a.model_cache_gb}Gi"}})
    out: dict[str, Any] = {
        "serviceAccountName": service_account,
        "nodeSelector": dict(a.node_selector),
        "tolerations": [dict(t) for t in a.tolerations],
        "containers": containers,
        "volumes": volumes,
        "terminationGracePeriodSeconds": 60,
    }
    if init:
        out["initContainers"] = init
    return out


def service_spec(a: ModelServerArgs, w: ServerWorkload) -> tuple[dict[str, Any], dict[str, str]]:
    """Service spec and annotations for the exposure mode (allowlist only ever widens a LoadBalancer)."""
    # an external vLLM is reached only through the authenticating proxy
    target = auth_proxy.PORT_NAME if a.auth_proxy else "http"
    ports = [{"name": "http", "port": a.service_port, "targetPort": target, "protocol": "TCP"}]
    grpc = a.server.kind.grpc_port
    if grpc and a.exposure == "cluster":  # a load balancer publishes HTTP, never gRPC
        ports.append({"name": "grpc", "port": grpc, "targetPort": "grpc", "protocol": "TCP"})
    if w.metrics_port != w.http_port:
        ports.append({"name": "metrics", "port": w.metrics_port, "targetPort": "metrics", "protocol": "TCP"})
    svc: dict[str, Any] = {"selector": selector(a), "ports": ports}
    annotations: dict[str, str] = {}
    if a.exposure == "cluster":
        svc["type"] = "ClusterIP"
    else:
        svc["type"] = "LoadBalancer"
        if a.exposure == "internal":
            annotations[INTERNAL_LB_ANNOTATION] = "Internal"
        if a.allowlist:
            svc["loadBalancerSourceRanges"] = list(a.allowlist)
    return svc, annotations


def pod_monitoring_spec(a: ModelServerArgs, w: ServerWorkload) -> dict[str, Any]:
    """GMP PodMonitoring (monitoring.googleapis.com/v1): scrape the server's real metrics port and path."""
    port = "metrics" if w.metrics_port != w.http_port else "http"
    return {"selector": {"matchLabels": selector(a)},
            "endpoints": [{"port": port, "path": w.metrics_path, "interval": SCRAPE_INTERVAL}]}


class ModelServer(pulumi.ComponentResource):
    """Serves the spec's model with the spec's server on the accelerator pool."""

    TYPE = "gke-llm-bench:model_server:ModelServer"

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        a = args
        svc_name, ns_name = a.service_name, a.namespace
        child = pulumi.ResourceOptions(parent=self)
        meta_labels = labels(a)

        namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": ns_name, "labels": {
            "app.kubernetes.io/part-of": "gke-llm-bench", "app.kubernetes.io/managed-by": "pulumi"}}, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        wait_for: list[pulumi.Resource] = []  # what the server's pods (and Jobs) need before they start

        def secret(key: str, suffix: str, data_key: str, value: pulumi.Input[str] | None) -> tuple[str, str] | None:
            if value is None:
                return None
            wait_for.append(k8s.core.v1.Secret(
                f"{name}-{key}",
                metadata={"name": f"{svc_name}-{suffix}", "namespace": ns_name, "labels": meta_labels},
                type="Opaque", string_data={data_key: pulumi.Output.secret(value)}, opts=in_ns))
            return f"{svc_name}-{suffix}", data_key

        refs = SecretRefs(hf_token=secret("hf-token", "hf-token", "token", a.hf_token),
                          api_key=secret("api-key", "api-key", "key", a.api_key))
        kaggle = secret("kaggle", "kaggle", "kaggle.json", a.kaggle_json)
        self.api_key_ref = refs.api_key  # the in-cluster load generator sends the same key

        translator = TRANSLATORS[a.server.kind.name]
        ksa_name = svc_name
        ksa_annotations: dict[str, Any] = {}
        self.bucket: pulumi.Output[str] | None = None
        if a.checkpoints is not None:
            # aliases: deployed stacks keep the bucket they had before the shared helper named it
            bucket, gsa, iam = workload_bucket(f"{name}-checkpoint", self, a.checkpoints, a.stack, ns_name, ksa_name,
                                               former={"bucket": f"{name}-checkpoints",
                                                       "bucket-access": f"{name}-checkpoint-object-user"})
            self.bucket = bucket.name
            ksa_annotations[GSA_ANNOTATION] = gsa.email
            wait_for += iam
            workload = translator.workload(a.server, refs, bucket=bucket.name, kaggle=kaggle)
        else:
            workload = translator.workload(a.server, refs)
        if a.auth_proxy:
            config_name = f"{svc_name}-auth-proxy"
            wait_for.append(k8s.core.v1.ConfigMap(
                f"{name}-auth-proxy", metadata={"name": config_name, "namespace": ns_name, "labels": meta_labels},
                data={"default.conf.template": auth_proxy.nginx_template(a.server.kind.http_port)}, opts=in_ns))
            sidecar, volume = auth_proxy.container(refs, config_name)
            workload = replace(workload, containers=[*workload.containers, sidecar],
                               volumes=[*workload.volumes, volume])

        ksa = k8s.core.v1.ServiceAccount(f"{name}-ksa", metadata={
            "name": ksa_name, "namespace": ns_name, "labels": meta_labels, "annotations": ksa_annotations},
            automount_service_account_token=False, opts=in_ns)
        wait_for.append(ksa)
        pod = pod_spec(a, workload, ksa_name)
        jobs = [self._job(name, a, job, ksa_name, meta_labels, wait_for) for job in workload.jobs]

        timeout = f"{a.rollout_timeout_s}s"
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": svc_name, "namespace": ns_name, "labels": meta_labels,
                      # queued capacity can take hours: do not hold `pulumi up` on the rollout
                      "annotations": {} if a.await_rollout else {SKIP_AWAIT_ANNOTATION: "true"}},
            spec={
                # with an autoscaler, the count is its alone: a declared one would be reset on every `pulumi up`
                **({} if a.autoscaled else {"replicas": a.replicas}),
                "selector": {"matchLabels": selector(a)},
                # The pool holds exactly replicas x TP accelerators: replace pods one at a time, no surge.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "progressDeadlineSeconds": a.rollout_timeout_s,
                "template": {"metadata": {"labels": meta_labels}, "spec": pod},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*wait_for, *jobs],
                                        custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)),
        )
        svc_spec, svc_annotations = service_spec(a, workload)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": svc_name, "namespace": ns_name, "labels": meta_labels, "annotations": svc_annotations},
            spec=svc_spec, opts=in_ns)
        # The PodMonitoring CRD exists only where Managed Prometheus is on (the cluster setting decides).
        self.pod_monitoring = k8s.apiextensions.CustomResource(
            f"{name}-podmonitoring", api_version="monitoring.googleapis.com/v1", kind="PodMonitoring",
            metadata={"name": svc_name, "namespace": ns_name, "labels": meta_labels},
            spec=pod_monitoring_spec(a, workload), opts=in_ns) if a.pod_monitoring else None

        self.service_name = pulumi.Output.from_input(svc_name)
        self.namespace = pulumi.Output.from_input(ns_name)
        self.external_address: pulumi.Output[str | None] = (
            self.service.status.apply(_lb_address) if a.exposure != "cluster" else pulumi.Output.from_input(None))
        self.register_outputs({"serviceName": self.service_name, "namespace": self.namespace,
                               "externalAddress": self.external_address})

    def _job(self, name: str, a: ModelServerArgs, job: PrepJob, ksa: str, meta_labels: dict[str, str],
             wait_for: list[pulumi.Resource]):
        limit = a.accelerator_limit
        pod = dict(job.pod_spec)
        pod["containers"] = [{**c, "resources": {"requests": dict(limit), "limits": dict(limit)}}
                             for c in pod["containers"]]
        pod.update(serviceAccountName=ksa, nodeSelector=dict(a.node_selector),
                   tolerations=[dict(t) for t in a.tolerations])
        timeout = f"{job.timeout_s}s"
        return k8s.batch.v1.Job(
            f"{name}-{job.name}",
            metadata={"name": f"{a.service_name}-{job.name}"[:63], "namespace": a.namespace,
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
