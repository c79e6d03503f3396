"""Server translators and component options on specs the committed stacks do not cover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config_source import SECRET_MARKER, flat_config
from components.kubeconfig import kubeconfig_yaml
from components.servers import SecretRefs, ServerArgs, tgi, triton_trtllm, vllm
from offline.program_run import ProgramError, plaintext, run_program, run_stack_file
from stacks import SpecErrors, load_stack_file
from stacks.loader import stack_files
from tests.stack_configs import BASE
from tests.stack_configs import write_stack_file as write

from .test_program import DEPLOYMENT, NODE_POOL


def spec_of(tmp_path: Path, changes: dict[str, Any]):
    return load_stack_file(write(tmp_path, changes))


def server_of(tmp_path: Path, changes: dict[str, Any]) -> ServerArgs:
    """What a translator is given for a stack file with ``changes``."""
    return ServerArgs.from_spec(spec_of(tmp_path, changes))


def test_vllm_quantization_and_kv_flags(tmp_path: Path) -> None:
    args = vllm.args(server_of(tmp_path, {"gke-llm-bench:precision": {"weights": "awq", "kvCache": "fp8"}}))
    assert args[0] == "TheBloke/Llama-2-7B-AWQ"
    assert args[args.index("--quantization") + 1] == "awq_marlin"
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8"
    assert "--dtype" not in args


def test_vllm_api_key_only_through_the_environment(tmp_path: Path) -> None:
    srv = server_of(tmp_path, {"gke-llm-bench:exposure": {"mode": "external", "allowlist": ["203.0.113.0/24"]}})
    w = vllm.workload(srv, SecretRefs(hf_token=("s-hf", "token"), api_key=("s-key", "key")))
    env = {e["name"]: e for e in w.server["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s-key", "key": "key"}
    assert "--api-key" not in w.server["args"]


def test_tgi_flags_for_fp8_kv_and_prefill_budget(tmp_path: Path) -> None:
    srv = server_of(tmp_path, {"gke-llm-bench:accelerator": {"machineType": "g2-standard-24"},
                               "gke-llm-bench:precision": {"weights": "fp8", "kvCache": "fp8"},
                               "gke-llm-bench:server": {"kind": "tgi", "maxModelLen": 4096, "tensorParallel": 2}})
    args = tgi.args(srv)
    assert args[args.index("--quantize") + 1] == "fp8"
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8_e4m3fn"
    assert args[args.index("--num-shard") + 1] == "2"
    assert int(args[args.index("--max-batch-prefill-tokens") + 1]) >= int(args[args.index("--max-input-tokens") + 1])


def test_triton_multi_gpu_runs_one_mpi_rank_per_gpu(tmp_path: Path) -> None:
    srv = server_of(tmp_path, {"gke-llm-bench:accelerator": {"machineType": "g2-standard-24"},
                               "gke-llm-bench:server": {"kind": "triton-trtllm", "maxModelLen": 4096,
                                                        "tensorParallel": 2, "maxBatch": 32}})
    cmd = triton_trtllm.server_command(srv, restricted=True)
    assert cmd[0] == "mpirun" and cmd.count("tritonserver") == 2 and cmd.count(":") == 1
    restricted = "inference,model-repository,shared-memory,trace,logging:authorization=Bearer $(API_KEY)"
    assert f"--http-restricted-api={restricted}" in cmd and f"--grpc-restricted-protocol={restricted}" in cmd
    script = triton_trtllm.build_script(srv)
    assert "--tp_size 2" in script
    # only what the conversion needs is downloaded, and the intermediate copies are deleted after the build
    assert "--include '*.safetensors' '*.json' tokenizer.model" in script
    assert script.index("trtllm-build") < script.index("rm -rf /data/trtllm-checkpoint")


def test_queued_provisioning_is_flex_start_from_zero() -> None:
    run = run_stack_file(stack_files()["llama2-7b-a3"], "llama2-7b-a3")
    pool = plaintext(next(r for r in run.by_type(NODE_POOL) if r.name == "accelerators").inputs)
    assert pool["nodeConfig"]["flexStart"] is True
    assert pool["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 1, "locationPolicy": "ANY"}
    assert pool["management"]["autoRepair"] is False
    assert pool["nodeConfig"]["reservationAffinity"]["consumeReservationType"] == "NO_RESERVATION"


def test_specific_reservation_and_compact_placement(tmp_path: Path) -> None:
    path = write(tmp_path, {"gke-llm-bench:accelerator": {"machineType": "g2-standard-96", "reservation": "my-res",
                                                          "compactPlacement": True, "driverVersion": "LATEST"}},
                 name="res")
    run = run_stack_file(path, "res")
    pool = plaintext(next(r for r in run.by_type(NODE_POOL) if r.name == "accelerators").inputs)
    assert pool["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "SPECIFIC_RESERVATION",
                                                         "key": "compute.googleapis.com/reservation-name",
                                                         "values": ["my-res"]}
    assert pool["placementPolicy"] == {"type": "COMPACT"}
    assert pool["nodeConfig"]["guestAccelerators"][0]["gpuDriverInstallationConfig"]["gpuDriverVersion"] == "LATEST"


def test_existing_cluster_is_looked_up_not_created(tmp_path: Path) -> None:
    path = write(tmp_path, {"gke-llm-bench:cluster": {"existing": {"name": "shared", "location": "us-central1"}}},
                 name="existing")
    run = run_stack_file(path, "existing")
    types = {r.type for r in run.resources}
    assert "gcp:container/cluster:Cluster" not in types
    (pool,) = run.by_type(NODE_POOL)  # only the accelerator pool: the existing cluster has its own system pool
    assert plaintext(pool.inputs)["cluster"] == "shared"
    assert run.one(DEPLOYMENT)


def test_private_nodes_get_cloud_nat() -> None:
    run = run_stack_file(stack_files()["llama2-7b-g2-external"], "llama2-7b-g2-external")
    cluster = plaintext(run.one("gcp:container/cluster:Cluster").inputs)
    assert cluster["privateClusterConfig"]["enablePrivateNodes"] is True
    nat = plaintext(run.one("gcp:compute/routerNat:RouterNat").inputs)
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_invalid_config_fails_the_program_cleanly(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, {})
    bad = {**BASE, "gke-llm-bench:accelerator": {"gpu": "nvidia-l5"}}
    with pytest.raises(ProgramError) as err:
        run_program("bad", bad, spec)
    text = str(err.value)
    assert 'unknown GPU type "nvidia-l5"' in text and "invalid" in text and "Traceback" not in text


def test_config_source_marks_secrets_and_decodes_json() -> None:
    from pulumi.runtime.config import set_all_config

    set_all_config({"gke-llm-bench:server": '{"kind": "vllm", "maxBatch": 8}', "gke-llm-bench:precision": "fp8",
                    "gke-llm-bench:hfToken": "hf_x", "gcp:zones": '["us-central1-a"]'},
                   ["gke-llm-bench:hfToken"])
    try:
        flat = flat_config()
    finally:
        set_all_config({}, [])
    assert flat["gke-llm-bench:server"] == {"kind": "vllm", "maxBatch": 8}
    assert flat["gke-llm-bench:precision"] == "fp8"
    assert flat["gke-llm-bench:hfToken"] == SECRET_MARKER
    assert flat["gcp:zones"] == ["us-central1-a"]


def test_kubeconfig_uses_the_gke_auth_plugin() -> None:
    doc = yaml.safe_load(kubeconfig_yaml("c", "203.0.113.10", "Q0E="))
    user = doc["users"][0]["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin" and "token" not in user
    assert doc["clusters"][0]["cluster"] == {"server": "https://203.0.113.10", "certificate-authority-data": "Q0E="}


def test_no_pod_monitoring_without_managed_prometheus(tmp_path: Path) -> None:
    path = write(tmp_path, {"gke-llm-bench:cluster": {"managedPrometheus": False}}, name="nogmp")
    run = run_stack_file(path, "nogmp")
    assert not run.by_type("kubernetes:monitoring.googleapis.com/v1:PodMonitoring")
    monitoring = plaintext(run.one("gcp:container/cluster:Cluster").inputs)["monitoringConfig"]
    assert monitoring["managedPrometheus"] == {"enabled": False}


def test_zonal_and_regional_node_locations(tmp_path: Path) -> None:
    zonal = run_stack_file(write(tmp_path, {}, name="zonal"), "zonal")
    assert "nodeLocations" not in plaintext(zonal.one("gcp:container/cluster:Cluster").inputs)
    regional_cfg = {"gcp:zone": None, "gcp:zones": ["us-central1-a", "us-central1-b"]}
    path = write(tmp_path, regional_cfg, name="regional")  # None removes gcp:zone
    regional = run_stack_file(path, "regional")
    cluster = plaintext(regional.one("gcp:container/cluster:Cluster").inputs)
    assert cluster["location"] == "us-central1"
    assert cluster["nodeLocations"] == ["us-central1-a", "us-central1-b"]
    pool = plaintext(next(r for r in regional.by_type(NODE_POOL) if r.name == "accelerators").inputs)
    assert pool["nodeLocations"] == ["us-central1-a", "us-central1-b"]


def test_node_count_is_per_zone_so_the_pool_is_pinned_and_priced_per_zone(tmp_path: Path) -> None:
    one = spec_of(tmp_path, {})
    path = write(tmp_path, {"gcp:zone": None, "gcp:zones": ["us-central1-a", "us-central1-b"]}, name="two-zones")
    two = load_stack_file(path)
    assert two.zones_used == 2 and two.usd_per_hour == pytest.approx(2 * one.usd_per_hour)
    run = run_stack_file(path, "two-zones")
    pool = plaintext(next(r for r in run.by_type(NODE_POOL) if r.name == "accelerators").inputs)
    assert pool["nodeLocations"] == ["us-central1-a", "us-central1-b"]


def test_queued_capacity_does_not_hold_pulumi_up_on_the_rollout() -> None:
    queued = run_stack_file(stack_files()["llama2-7b-a3"], "llama2-7b-a3")  # flex-start
    annotations = plaintext(queued.one(DEPLOYMENT).inputs)["metadata"].get("annotations") or {}
    assert annotations.get("pulumi.com/skipAwait") == "true"
    on_demand = run_stack_file(stack_files()["llama2-7b-g2"], "llama2-7b-g2")
    assert "pulumi.com/skipAwait" not in (plaintext(on_demand.one(DEPLOYMENT).inputs)["metadata"].get("annotations")
                                         or {})


def test_every_flag_a_translator_sets_is_a_managed_flag() -> None:
    """``extraArgs`` are refused when they repeat one of these (stacks/serving.py keeps the list)."""
    from stacks.serving import MANAGED_FLAGS, flag_name

    seen: set[str] = set()
    for name, path in stack_files().items():
        run = run_stack_file(path, name)
        kind = run.spec.server.name
        containers = plaintext(run.one(DEPLOYMENT, "model_server").inputs)["spec"]["template"]["spec"]["containers"]
        server = next(c for c in containers if c.get("args"))
        args = [a for a in server["args"] if isinstance(a, str)]
        flags = {flag_name(a) for a in args if a.startswith("--") or (kind == "jetstream" and "=" in a)}
        assert flags <= MANAGED_FLAGS[kind], (name, flags - MANAGED_FLAGS[kind])
        seen.add(kind)
    assert seen == set(MANAGED_FLAGS)


def test_an_external_vllm_is_published_only_through_the_authenticating_proxy() -> None:
    from components.servers import auth_proxy

    run = run_stack_file(stack_files()["llama2-7b-g2-external"], "llama2-7b-g2-external")
    assert run.spec.auth_proxy
    pod = plaintext(run.one(DEPLOYMENT, "model_server").inputs)["spec"]["template"]["spec"]
    proxy = next(c for c in pod["containers"] if c["name"] == "auth-proxy")
    assert proxy["image"] == auth_proxy.IMAGE
    assert proxy["env"][0]["valueFrom"]["secretKeyRef"]  # the key comes from the Secret, never a literal
    svc = plaintext(run.one("kubernetes:core/v1:Service").inputs)["spec"]
    assert [p["targetPort"] for p in svc["ports"]] == [auth_proxy.PORT_NAME]  # only the proxy is published
    config = plaintext(run.one("kubernetes:core/v1:ConfigMap").inputs)["data"]["default.conf.template"]
    assert '"Bearer ${API_KEY}" 1;' in config and "return 401" in config and "proxy_buffering off" in config
    assert not any(v in config for v in run.placeholders.values())
    # the probes still reach vLLM itself, inside the pod
    server = pod["containers"][0]
    assert server["readinessProbe"]["httpGet"]["port"] == run.spec.server.http_port


def test_a_model_from_its_config_json_plans_clean(tmp_path: Path) -> None:
    import shutil

    shutil.copy(Path(__file__).resolve().parents[1] / "models" / "qwen3-30b-a3b.config.json", tmp_path / "cfg.json")
    path = write(tmp_path, {"gke-llm-bench:model": {"name": None, "hfId": "Qwen/Qwen3-30B-A3B",
                                                    "configFile": "cfg.json"},
                            "gke-llm-bench:accelerator": {"machineType": "a3-highgpu-1g", "queuedProvisioning": True},
                            "gke-llm-bench:server": {"maxModelLen": 8192}}, name="qwen3")
    run = run_stack_file(path, "qwen3")
    args = run.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "Qwen/Qwen3-30B-A3B" and run.outputs["spec"]["model"]["experts"] == 128


def test_vllm_on_tpu_serves_like_vllm_and_is_keyed_like_vllm(tmp_path: Path) -> None:
    tpu = {"gke-llm-bench:accelerator": {"machineType": None, "tpu": {"topology": "2x2"}},
           "gke-llm-bench:model": {"name": "gemma-7b"},
           "gke-llm-bench:server": {"kind": "vllm-tpu", "maxModelLen": 2048}}
    spec = spec_of(tmp_path, tpu)
    assert spec.tensor_parallel == 4 and spec.server.dialect == "openai"
    args = vllm.args(ServerArgs.from_spec(spec))
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    external = write(tmp_path, {**tpu, "gke-llm-bench:exposure": {"mode": "external",
                                                                   "allowlist": ["203.0.113.0/24"]}}, name="ext")
    run = run_stack_file(external, "ext")
    containers = run.one(DEPLOYMENT, "model_server").inputs["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["vllm", "auth-proxy"]  # /health and /metrics need the key too
    with pytest.raises(SpecErrors) as info:
        spec_of(tmp_path, {**tpu, "gke-llm-bench:precision": "fp8"})
    assert any("vllm-tpu does not serve fp8" in e.message for e in info.value.errors)
