"""The in-cluster load generator: a CPU pool, a create-only bucket, and an Indexed Job of load-tester pods.

Everything comes from ``stacks.loadgen`` (``LoadgenSpec``); this component only translates it:
- a node pool of ``machineType`` nodes, tainted so nothing else lands there and labelled so the
  pods land nowhere else (never on the accelerator nodes they are measuring);
- a private bucket and a Google service account with ``roles/storage.objectCreator`` on it and
  nothing else (it can write results, it cannot read or overwrite anything), bound to the pods'
  Kubernetes service account through Workload Identity (``workload_bucket``);
- a Role that may ``get`` the Job itself (the pods read its creation time, their shared start:
  ``loadtest/pods.py``) and, for an autoscaled server, its Deployment (replicas over time), nothing else;
- the stack's outputs as a ConfigMap (``outputs.json``), so every pod finds the server at its
  in-cluster address and every result carries the spec and $/h;
- the Job: ``completionMode: Indexed``, ``parallelism = completions = pods``, no retries (a
  retried pod would send its share late, into another stage), ``pulumi up`` not held while it runs.
  Each pod runs ``python -m loadtest run --pods N --start-at job+S ...`` and, as a native sidecar
  (an init container with ``restartPolicy: Always``), ``python -m loadtest upload`` streaming its
  share to ``gs://<bucket>/<runId>/<index>/``. Kubernetes stops the sidecar when the load tester
  exits; its last sync ships the final summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.loadgen import LoadgenSpec
from stacks.outputs import stack_outputs
from stacks.spec import StackSpec

from .gcp import gcp
from .model_server import SKIP_AWAIT_ANNOTATION
from .pool_config import cpu_node_config, node_locations
from .workload_bucket import GSA_ANNOTATION, WorkloadBucket, workload_bucket

TAINT_KEY = "gke-llm-bench/loadgen"
KSA = "loadgen"
RESULTS_DIR = "/results"
OUTPUTS_DIR = "/etc/loadgen"
UID = 10001  # the image's non-root user (docker/loadtest.Dockerfile)


@dataclass(frozen=True)
class LoadGeneratorArgs:
    stack: str
    project: str
    cluster_name: pulumi.Input[str]
    location: pulumi.Input[str]
    node_locations: list[str] | None
    node_service_account: pulumi.Input[str]
    namespace: str
    loadgen: LoadgenSpec
    store: WorkloadBucket
    outputs: dict[str, Any]  # the stack's public outputs (outputs.json in every pod)
    deployment: str | None  # an autoscaled server's Deployment: pod 0 records its replicas
    api_key: tuple[str, str] | None  # the server's API key Secret (name, key), sent by the load tester

    @classmethod
    def from_spec(cls, spec: StackSpec, cluster_name: pulumi.Input[str], location: pulumi.Input[str],
                  node_service_account: pulumi.Input[str], api_key: tuple[str, str] | None) -> LoadGeneratorArgs:
        lg = spec.loadgen
        assert lg is not None
        outputs = stack_outputs(spec)
        store = WorkloadBucket(bucket=lg.bucket, service_account=lg.service_account, project=spec.project,
                               location=spec.region, force_destroy=not spec.cluster.deletion_protection,
                               role="roles/storage.objectCreator", purpose="load-test results (create only)")
        return cls(stack=spec.name, project=spec.project, cluster_name=cluster_name, location=location,
                   node_locations=node_locations(spec), node_service_account=node_service_account,
                   namespace=spec.namespace, loadgen=lg, store=store, outputs=outputs, api_key=api_key,
                   deployment=outputs["deployment"] if spec.autoscale is not None else None)


def container_args(a: LoadGeneratorArgs) -> list[str]:
    lg = a.loadgen
    return ["run", "--stack", a.stack, "--outputs", f"{OUTPUTS_DIR}/outputs.json", "--in-cluster",
            "--pods", str(lg.pods), "--start-at", f"job+{lg.start_delay}", "--results-dir", RESULTS_DIR,
            "--run-id", lg.run_id, "--no-progress", *lg.args]


def pod_spec(a: LoadGeneratorArgs, config_map: str) -> dict[str, Any]:
    lg = a.loadgen
    mounts = [{"name": "results", "mountPath": RESULTS_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    hardened = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]}}
    env = [{"name": "JOB_NAME", "value": lg.job_name},
           {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    if a.api_key is not None:
        name, key = a.api_key
        env.append({"name": "LOADTEST_API_KEY", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
    cpu, memory = f"{lg.cpu:g}", f"{lg.memory_gb}Gi"
    return {
        "restartPolicy": "Never",
        "serviceAccountName": KSA,
        "automountServiceAccountToken": True,  # the pods read their Job's creation time
        "nodeSelector": {"cloud.google.com/gke-nodepool": lg.pool},
        "tolerations": [{"key": TAINT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{
            "name": "uploader", "image": lg.image, "restartPolicy": "Always",
            "args": ["upload", RESULTS_DIR, f"gs://{lg.bucket}/{lg.run_id}/$(JOB_COMPLETION_INDEX)",
                     "--interval", "5"],
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                          "limits": {"cpu": "250m", "memory": "256Mi"}},
            "volumeMounts": mounts, "securityContext": hardened,
        }],
        "containers": [{
            "name": "loadtest", "image": lg.image, "args": container_args(a), "env": env,
            # requests = limits: Guaranteed QoS, so the load tester's timing is never throttled
            "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
            "volumeMounts": [*mounts, {"name": "outputs", "mountPath": OUTPUTS_DIR, "readOnly": True}],
            "securityContext": hardened,
        }],
        "volumes": [{"name": "results", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
                    {"name": "outputs", "configMap": {"name": config_map}}],
    }


class LoadGenerator(pulumi.ComponentResource):
    TYPE = "gke-llm-bench:load_generator:LoadGenerator"

    def __init__(self, name: str, a: LoadGeneratorArgs, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        lg = a.loadgen
        labels = {"app.kubernetes.io/name": "loadgen", "app.kubernetes.io/instance": lg.job_name,
                  "app.kubernetes.io/component": "load-generator", "app.kubernetes.io/part-of": "gke-llm-bench",
                  "app.kubernetes.io/managed-by": "pulumi"}
        self.pool = gcp.container.NodePool(
            f"{name}-pool", name=lg.pool, project=a.project, cluster=a.cluster_name, location=a.location,
            node_locations=a.node_locations, node_count=lg.nodes_per_zone,
            management={"auto_repair": True, "auto_upgrade": True},
            node_config=cpu_node_config(lg.machine_type, a.node_service_account,
                                        {"gke-llm-bench/pool": "loadgen", "gke-llm-bench/stack": a.stack},
                                        [{"key": TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}]),
            opts=pulumi.ResourceOptions(parent=self))
        bucket, gsa, iam = workload_bucket(name, self, a.store, a.stack, a.namespace, KSA)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        meta = {"namespace": a.namespace, "labels": labels}
        ksa = k8s.core.v1.ServiceAccount(f"{name}-ksa", metadata={**meta, "name": KSA,
                                                                   "annotations": {GSA_ANNOTATION: gsa.email}},
                                         opts=in_ns)
        rules = [{"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": [lg.job_name], "verbs": ["get"]}]
        if a.deployment is not None:  # replicas over time, read by pod 0 with each metrics scrape
            rules.append({"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [a.deployment],
                          "verbs": ["get"]})
        role = k8s.rbac.v1.Role(f"{name}-role", metadata={**meta, "name": f"{KSA}-read-own-job"}, rules=rules,
                                opts=in_ns)
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-rolebinding", metadata={**meta, "name": f"{KSA}-read-own-job"},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{KSA}-read-own-job"},
            subjects=[{"kind": "ServiceAccount", "name": KSA, "namespace": a.namespace}], opts=in_ns)
        config_map = f"{KSA}-outputs"
        outputs = k8s.core.v1.ConfigMap(f"{name}-outputs", metadata={**meta, "name": config_map},
                                        data={"outputs.json": json.dumps(a.outputs, indent=2, sort_keys=True)},
                                        opts=in_ns)
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata={**meta, "name": lg.job_name,
                      # the run takes as long as it takes: `pulumi up` does not wait for it
                      "annotations": {SKIP_AWAIT_ANNOTATION: "true"}},
            spec={"completionMode": "Indexed", "completions": lg.pods, "parallelism": lg.pods, "backoffLimit": 0,
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec(a, config_map)}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, self.pool, ksa, role, binding,
                                                                 outputs, *iam]))
        self.bucket = bucket.name
        self.register_outputs({"bucket": bucket.name, "job": lg.job_name})
