"""The real program under mocks, for every committed stack: what GKE and Kubernetes would receive."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from components.servers import TRANSLATORS, ServerArgs
from offline.program_run import ProgramRun, plaintext, shown
from stacks.spec import StackSpec

NODE_POOL = "gcp:container/nodePool:NodePool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
JOB = "kubernetes:batch/v1:Job"
POD_MONITORING = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
K8S_VERSION = "1.30.0"
EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}

# GMP's PodMonitoring (monitoring.googleapis.com/v1), the fields this project writes, from the CRD.
POD_MONITORING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.googleapis.com/v1"},
        "kind": {"const": "PodMonitoring"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["endpoints", "selector"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "additionalProperties": False, "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "matchExpressions": {"type": "array"}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["port"], "additionalProperties": False,
                    "properties": {
                        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": {"type": "string", "pattern": r"^((([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?"
                                     r"(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?|0)$"},
                        "timeout": {"type": "string"},
                        "scheme": {"enum": ["http", "https"]},
                        "params": {"type": "object"},
                        "metricRelabeling": {"type": "array"},
                    }}},
                "targetLabels": {"type": "object"},
                "limits": {"type": "object"},
            },
        },
    },
}


def pool(run: ProgramRun) -> dict[str, Any]:
    pools = [r for r in run.by_type(NODE_POOL) if r.name == "accelerators"]
    assert len(pools) == 1
    return plaintext(pools[0].inputs)


def deployment(run: ProgramRun) -> dict[str, Any]:
    return plaintext(run.one(DEPLOYMENT, "model_server").inputs)


def pod(run: ProgramRun) -> dict[str, Any]:
    return deployment(run)["spec"]["template"]["spec"]


def pods(run: ProgramRun) -> list[dict[str, Any]]:
    """The server pod and every preparation Job's pod (not the load generator's: it runs on CPU nodes)."""
    return [pod(run), *(plaintext(j.inputs)["spec"]["template"]["spec"] for j in run.by_type(JOB)
                        if not j.name.startswith("loadgen"))]


def declared_ports(pod_spec: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for c in pod_spec["containers"] for p in c.get("ports", [])}


def test_driver_installation_and_accelerator(run: ProgramRun) -> None:
    spec, nc = run.spec, pool(run)["nodeConfig"]
    assert nc["machineType"] == spec.machine.name
    if spec.accelerator_kind == "gpu":
        (acc,) = nc["guestAccelerators"]
        assert acc["type"] == spec.accelerator and acc["count"] == spec.chips_per_node
        assert acc["gpuDriverInstallationConfig"]["gpuDriverVersion"] == spec.driver_version
    else:
        assert "guestAccelerators" not in nc  # TPU machine types carry their chips
    assert nc["workloadMetadataConfig"]["mode"] == "GKE_METADATA"
    assert nc["gvnic"]["enabled"] and nc["gcfsConfig"]["enabled"]
    assert nc["serviceAccount"].startswith("nodes-")  # the least-privilege account, not the default one
    if spec.local_ssd_count:
        assert nc["ephemeralStorageLocalSsdConfig"]["localSsdCount"] == spec.local_ssd_count
    # the catalog's boot disk type per shape; the 2026 shapes leave it to GKE
    assert nc.get("diskType") == spec.machine.boot_disk
    assert (spec.machine.boot_disk is None) is (spec.machine.name.startswith(("a3-ultragpu", "a4-", "g4-")))


def test_taint_toleration_and_node_selector_agree(run: ProgramRun) -> None:
    spec = run.spec
    taints = pool(run)["nodeConfig"]["taints"]
    resource = "nvidia.com/gpu" if spec.accelerator_kind == "gpu" else "google.com/tpu"
    assert [t["key"] for t in taints] == [resource] and taints[0]["value"] == "present"
    for p in pods(run):
        for t in taints:
            assert {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": EFFECT[t["effect"]]} \
                in p["tolerations"]
        if spec.accelerator_kind == "gpu":
            assert p["nodeSelector"]["cloud.google.com/gke-accelerator"] == spec.accelerator
        else:
            assert p["nodeSelector"]["cloud.google.com/gke-tpu-accelerator"] == spec.accelerator
            assert p["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == spec.machine.topology
        assert ("cloud.google.com/gke-spot" in p["nodeSelector"]) == spec.spot


def test_accelerator_limit_equals_tensor_parallel(run: ProgramRun) -> None:
    spec, p = run.spec, pod(run)
    server = p["containers"][0]
    if spec.accelerator_kind == "gpu":
        assert server["resources"]["limits"]["nvidia.com/gpu"] == str(spec.tensor_parallel)
        assert server["resources"]["requests"]["nvidia.com/gpu"] == str(spec.tensor_parallel)
        for c in p.get("initContainers", []):
            assert c["resources"]["limits"]["nvidia.com/gpu"] == str(spec.tensor_parallel)
    else:
        assert server["resources"]["limits"]["google.com/tpu"] == str(spec.chips_per_node)
    if spec.autoscale is None:
        assert deployment(run)["spec"]["replicas"] == spec.replicas
    else:  # the autoscaler owns the count; the pool can grow to hold its maximum
        assert "replicas" not in deployment(run)["spec"]
        assert spec.autoscale.max_replicas * spec.tensor_parallel <= spec.chips_per_node * spec.node_count
    assert spec.replicas * spec.tensor_parallel <= spec.chips_per_node * spec.node_count


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_server_flags_match_spec(run: ProgramRun) -> None:
    spec: StackSpec = run.spec
    server = pod(run)["containers"][0]
    assert server["image"] == spec.image
    args = server.get("args", [])
    kind = spec.server.name
    if kind in ("vllm", "vllm-tpu"):  # the TPU image takes the same `vllm serve` flags
        assert args == TRANSLATORS["vllm"].args(ServerArgs.from_spec(spec))
        assert args[0] == spec.checkpoint and "--model" not in args  # `vllm serve <model>`
        assert _flag(args, "--tensor-parallel-size") == str(spec.tensor_parallel)
        assert _flag(args, "--max-num-seqs") == str(spec.max_batch)
        assert _flag(args, "--max-model-len") == str(spec.max_model_len)
        assert float(_flag(args, "--gpu-memory-utilization")) == spec.gpu_memory_utilization
        if spec.precision.name in ("fp8", "awq", "gptq"):
            assert _flag(args, "--quantization").startswith(spec.precision.name)
        if spec.kv_cache_dtype == "fp8":
            assert _flag(args, "--kv-cache-dtype") == "fp8"
    elif kind == "tgi":
        assert args == TRANSLATORS["tgi"].args(ServerArgs.from_spec(spec))
        assert _flag(args, "--model-id") == spec.checkpoint
        assert _flag(args, "--num-shard") == str(spec.tensor_parallel)
        assert int(_flag(args, "--max-total-tokens")) == spec.max_model_len
        assert int(_flag(args, "--max-input-tokens")) < spec.max_model_len
        assert _flag(args, "--max-batch-total-tokens") == str(spec.sizing.kv_tokens)
        # the running batch is the stack's maxBatch; admission (429 above it) is well above that
        assert _flag(args, "--max-batch-size") == str(spec.max_batch)
        assert int(_flag(args, "--max-concurrent-requests")) > spec.max_batch
        assert _flag(args, "--port") == str(spec.server.http_port)
    elif kind == "triton-trtllm":
        script = pod(run)["initContainers"][0]["command"][-1]
        assert f"--tp_size {spec.tensor_parallel}" in script
        assert f"--max_batch_size {spec.max_batch}" in script and f"--max_seq_len {spec.max_model_len}" in script
        assert "trtllm-build" in script and "fill_template.py" in script
        assert f"--http-port={spec.server.http_port}" in args
        assert f"--metrics-port={spec.server.metrics_port}" in args
    elif kind == "jetstream":
        assert f"per_device_batch_size={max(1, spec.max_batch // spec.chips_per_node)}" in args
        assert f"max_target_length={spec.max_model_len}" in args
        assert f"prometheus_port={spec.server.metrics_port}" in args
        assert any(a.startswith("load_parameters_path=gs://") for a in args)
        (job,) = run.by_type(JOB)
        converter = plaintext(job.inputs)["spec"]["template"]["spec"]["containers"][0]
        assert converter["image"] == spec.server.extra_images["checkpoint_image"]
        assert deployment(run)["spec"]["template"]["spec"]["containers"][1]["image"] \
            == spec.server.extra_images["http_image"]
    else:
        pytest.fail(f"no flag test for {kind}")


def test_probes_service_and_pod_monitoring_use_real_ports(run: ProgramRun) -> None:
    spec, p = run.spec, pod(run)
    ports = declared_ports(p)
    assert ports["http"] == spec.server.http_port
    # the container that serves the health path carries the probes (JetStream: the HTTP front end)
    (server,) = [c for c in p["containers"] if "readinessProbe" in c]
    assert any(port["containerPort"] == spec.server.http_port for port in server.get("ports", [])), server["name"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = server[probe]["httpGet"]
        assert get["port"] in ports.values(), f"{probe} targets an undeclared port"
        assert get["port"] == spec.server.http_port
    assert server["readinessProbe"]["httpGet"]["path"] == spec.server.health_path
    assert server["startupProbe"]["periodSeconds"] * server["startupProbe"]["failureThreshold"] \
        >= spec.startup_budget_s
    svc = plaintext(run.one(SERVICE, "model_server").inputs)["spec"]
    for sp in svc["ports"]:
        assert sp["targetPort"] in ports
    assert svc["selector"].items() <= deployment(run)["spec"]["template"]["metadata"]["labels"].items()
    (endpoint,) = plaintext(run.one(POD_MONITORING).inputs)["spec"]["endpoints"]
    assert ports[endpoint["port"]] == spec.server.metrics_port
    assert endpoint["path"] == spec.server.metrics_path
    for job in run.by_type(JOB):  # preparation pods must never receive Service traffic
        labels = plaintext(job.inputs)["spec"]["template"]["metadata"]["labels"]
        assert not svc["selector"].items() <= labels.items()


def test_rollout_timeouts_exceed_provider_default(run: ProgramRun) -> None:
    dep = run.one(DEPLOYMENT, "model_server")
    assert dep.custom_timeouts["create"] == f"{run.spec.rollout_timeout_s}s"
    assert run.spec.rollout_timeout_s > 600  # the provider's default is 10 minutes


def _strings(value: Any) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', json.dumps(value))


def test_no_plaintext_secret_in_inputs_or_outputs(run: ProgramRun) -> None:
    if not run.placeholders:  # an open model and no API key: nothing secret but the kubeconfig
        assert not run.spec.hf_token_key and not run.spec.api_key_key
        assert not run.by_type("kubernetes:core/v1:Secret") and "kubeconfig" in run.secret_outputs
        return
    secrets = set(run.placeholders.values())
    for r in run.resources:
        visible = json.dumps(shown(r.inputs))
        for value in secrets:
            assert value not in visible, f"{r.type} {r.name} carries a secret in plaintext"
    for key, value in run.outputs.items():
        for s in secrets:
            assert s not in json.dumps(value, default=str), f"output {key} leaks a secret"
    assert "kubeconfig" in run.secret_outputs
    if run.spec.api_key_key:
        assert "apiKey" in run.secret_outputs and run.raw_outputs["apiKey"] in secrets
    # The secret does reach the Kubernetes Secret (wrapped), and only there.
    holders = [r for r in run.resources if any(s in json.dumps(plaintext(r.inputs)) for s in secrets)]
    assert holders and {r.type for r in holders} == {"kubernetes:core/v1:Secret"}


def test_external_exposure_only_with_allowlist(run: ProgramRun) -> None:
    spec = run.spec
    svc = plaintext(run.one(SERVICE, "model_server").inputs)
    annotations = svc["metadata"].get("annotations") or {}
    if svc["spec"]["type"] == "LoadBalancer" and annotations.get("networking.gke.io/load-balancer-type") != "Internal":
        assert svc["spec"]["loadBalancerSourceRanges"] == list(spec.allowlist) and spec.allowlist
        assert spec.api_key_key
    assert (svc["spec"]["type"] == "ClusterIP") == (spec.exposure == "cluster")


def _manifest(inputs: dict[str, Any]) -> dict[str, Any]:
    return plaintext(inputs)


def test_every_kubernetes_object_validates(run: ProgramRun) -> None:
    checked = 0
    for r in run.resources:
        if not r.custom or not r.type.startswith("kubernetes:") or r.type.startswith("pulumi:providers"):
            continue
        manifest = _manifest(r.inputs)
        if r.type == POD_MONITORING:
            jsonschema.validate(manifest, POD_MONITORING_SCHEMA)
        else:
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 5


def test_component_tree(run: ProgramRun) -> None:
    components = [r for r in run.resources if r.is_component]
    want = {"gke-llm-bench:node_pool:AcceleratorNodePool", "gke-llm-bench:model_server:ModelServer"}
    if not run.spec.shared_cluster:  # a stack that joins a cluster stack declares no cluster of its own
        want.add("gke-llm-bench:cluster:Cluster")
    assert {r.type for r in components} >= want
    for r in components:
        assert re.fullmatch(r"gke-llm-bench:[a-z_]+:[A-Z][A-Za-z]+", r.type)
    urns = {r.urn: r for r in run.resources}
    for r in run.resources:
        # providers and the StackReference (a read of another stack, created by nobody) sit at the root
        if r.custom and not r.type.startswith(("pulumi:providers", "pulumi:pulumi:StackReference")):
            assert r.parent in urns and urns[r.parent].is_component, f"{r.type} {r.name} has no component parent"
    provider = run.one("pulumi:providers:kubernetes")
    pool_urns = {r.urn for r in run.resources if r.type.endswith("NodePool")}
    assert pool_urns & set(provider.dependencies), "the Kubernetes provider must wait for the node pools"
    for r in run.resources:
        if r.type.startswith("kubernetes:"):
            assert r.provider.startswith(provider.urn)


def test_outputs_are_the_documented_contract(run: ProgramRun) -> None:
    from stacks.outputs import stack_outputs

    expected = stack_outputs(run.spec)
    for key, value in expected.items():
        got = json.loads(json.dumps(run.outputs[key]))
        if key == "spec":  # offline, placeholder secrets count as set: no "secret not set" warnings
            got.pop("warnings"), value.pop("warnings")
        if key != "externalEndpoint":
            assert got == json.loads(json.dumps(value)), key
    if run.spec.exposure == "cluster":
        assert run.outputs["externalEndpoint"] is None
    else:
        assert run.outputs["externalEndpoint"].startswith("http://")


def test_server_waits_for_its_secrets_and_jobs(run: ProgramRun) -> None:
    dep = run.one(DEPLOYMENT, "model_server")
    needed = [r.urn for r in run.resources if r.type in ("kubernetes:core/v1:Secret", JOB,
                                                         "kubernetes:core/v1:ServiceAccount")
              and "gke-llm-bench:model_server:" in r.urn]  # the server's own (the load generator and the
    # autoscaler come after it)
    assert needed and set(needed) <= set(dep.dependencies)


def test_the_program_runs_after_asyncio_code_in_the_same_thread() -> None:
    # asyncio.run() leaves the thread with no event loop set; Pulumi's mocks need one.
    import asyncio

    from offline.program_run import run_stack_file
    from stacks.loader import stack_files

    async def nothing() -> None:
        return None

    asyncio.run(nothing())
    run = run_stack_file(stack_files()["llama2-7b-g2x2"], "llama2-7b-g2x2")
    assert run.outputs
