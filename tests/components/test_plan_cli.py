"""``python -m offline plan`` and ``diff``: what a user reads, and what machines parse."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from offline.cli import main
from offline.program_run import placeholder
from stacks.loader import all_stack_files, stack_files


def test_plan_shows_driver_taint_flags_cost_and_hides_secrets(capsys) -> None:
    assert main(["plan", "llama2-7b-g2"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.replace("│", " ").split())  # long lines wrap inside the tree: compare unwrapped
    for expected in ("gcp:container/nodePool:NodePool accelerators", "accelerators: 1 x nvidia-l4", "driver: DEFAULT",
                     "nvidia.com/gpu=present:NO_SCHEDULE", "nvidia.com/gpu=present:NoSchedule",
                     "--tensor-parallel-size 1", "--max-num-seqs 256",
                     "args: meta-llama/Llama-2-7b-hf --revision main", "startup /health:8000",
                     "sizing: fits", "$1.09/h all-in", "$794/month", "accelerators $0.85/h", "cluster $0.23/h",
                     "kubeconfig: [secret]", "stringData: [secret]",
                     "portForward: kubectl port-forward -n llm-llama2-7b-g2 svc/vllm-llama-2-7b 8000:80"):
        assert expected in flat, expected
    assert placeholder("hfToken") not in out


def test_plan_all_json_lists_every_committed_stack(capsys) -> None:
    assert main(["plan", "--all", "--json"]) == 0
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert doc["errors"] == []
    assert [s["stack"] for s in doc["stacks"]] == list(all_stack_files())  # serving and cluster stacks
    assert "placeholder-secret" not in text
    for s in doc["stacks"]:
        assert s["outputs"]["kubeconfig"] == "[secret]"
        types = {r["type"] for r in s["resources"]}
        if s["role"] == "cluster":  # only a cluster, and what serving stacks read of it
            assert "gcp:container/cluster:Cluster" in types and not any(t.startswith("kubernetes:") for t in types)
            assert {"clusterName", "clusterLocation", "nodeServiceAccount", "endpoint"} <= set(s["outputs"])
            continue
        assert s["cost"]["usdPerMonth"] == round(s["cost"]["usdPerHour"] * 730, 2)
        assert "kubernetes:apps/v1:Deployment" in types
        # a stack creates its cluster unless it joins an existing one (shared mode)
        assert ("gcp:container/cluster:Cluster" in types) is (not s["outputs"]["spec"]["cluster"]["shared"]), s["stack"]
        pools = [r for r in s["resources"]
                 if r["type"] == "gcp:container/nodePool:NodePool" and r["name"] == "accelerators"]
        assert pools and pools[0]["properties"]["taints"]


def test_plan_of_an_invalid_file_exits_2_without_traceback(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(yaml.safe_dump({"config": {"gcp:project": "p", "gcp:region": "us-central1",
                                              "gke-llm-bench:accelerator": {"gpu": "nvidia-l5"},
                                              "gke-llm-bench:model": {"name": "llama-2-7b"},
                                              "gke-llm-bench:server": {"kind": "vllm"}}}))
    assert main(["plan", str(bad)]) == 2
    out = capsys.readouterr().out
    assert 'unknown GPU type "nvidia-l5"' in out and "Traceback" not in out


def test_diff_marks_node_pool_replacement(capsys) -> None:
    assert main(["diff", "llama2-7b-g2", "llama2-7b-a3"]) == 0
    out = capsys.readouterr().out
    assert "+- gcp:container/nodePool:NodePool accelerators  (REPLACE" in out
    assert "nodeConfig.machineType: g2-standard-8 -> a3-highgpu-1g  forces replacement" in out
    assert "nodeConfig.guestAccelerators[0].type: nvidia-l4 -> nvidia-h100-80gb  forces replacement" in out
    assert "~ kubernetes:apps/v1:Deployment server-deployment" in out
    assert "costPerHour: 0.8536 -> 11.0311" in out
    # Names derived from the stack stay put: B's config is applied to stack A.
    assert "    name:" not in out and "metadata.namespace" not in out
    # A3 joins the cluster stack bench-cluster: A's own cluster goes, a StackReference comes
    assert "- gcp:container/cluster:Cluster cluster" in out and "+ pulumi:pulumi:StackReference cluster" in out


def test_diff_precision_change_updates_server_in_place(capsys) -> None:
    assert main(["diff", "llama2-70b-g2", "llama2-70b-g2-fp8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (dep,) = doc["resources"]
    assert dep["type"] == "kubernetes:apps/v1:Deployment" and dep["op"] == "update"
    (change,) = dep["changes"]
    assert "--quantization" in change["after"] and "fp8" in change["after"] and "--dtype" in change["before"]
    assert {"key": "precision", "before": "bf16", "after": "fp8"} in doc["outputs"]


def test_diff_to_a_tpu_stack_swaps_the_pool(capsys) -> None:
    assert main(["diff", "gemma7b-tgi-l4", "gemma7b-jetstream-v5e", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ops = {(r["type"], r["name"]): r["op"] for r in doc["resources"]}
    assert ops[("gcp:container/nodePool:NodePool", "accelerators")] == "replace"
    assert ops[("kubernetes:batch/v1:Job", "server-checkpoint-converter")] == "create"
    assert ops[("gcp:storage/bucket:Bucket", "server-checkpoint-bucket")] == "create"


def test_diff_driver_version_change_recreates_the_pool(tmp_path: Path, capsys) -> None:
    base = yaml.safe_load(stack_files()["llama2-7b-g2"].read_text())
    latest = yaml.safe_load(stack_files()["llama2-7b-g2"].read_text())
    latest["config"]["gke-llm-bench:accelerator"]["driverVersion"] = "LATEST"
    a, b = tmp_path / "Pulumi.a.yaml", tmp_path / "Pulumi.b.yaml"
    a.write_text(yaml.safe_dump(base))
    b.write_text(yaml.safe_dump(latest))
    assert main(["diff", str(a), str(b), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (pool,) = [r for r in doc["resources"] if r["type"] == "gcp:container/nodePool:NodePool"]
    assert pool["op"] == "replace"
    (change,) = pool["changes"]
    assert change["path"].endswith("gpuDriverInstallationConfig.gpuDriverVersion")
    assert (change["before"], change["after"], change["replaces"]) == ("DEFAULT", "LATEST", True)


def test_plan_and_diff_report_bad_files_without_a_traceback(tmp_path: Path, capsys) -> None:
    from stacks.cli import main as stacks_main
    from tests.stack_configs import write_stack_file

    base = write_stack_file(tmp_path, name="base").read_text()
    path = write_stack_file(tmp_path, raw=base.replace("  gcp:region:", "\tgcp:region:"))
    for run, argv in ((main, ["plan", str(path)]), (main, ["diff", str(path), "llama2-7b-g2"]),
                      (stacks_main, ["check", str(path)])):
        code = run(argv)
        out = capsys.readouterr()
        assert code == 2 and "Traceback" not in out.out + out.err and "tabs" in out.out + out.err, argv


def test_stacks_never_imports_pulumi() -> None:
    """``stacks`` (the spec, the catalog, ``check``) stays pure: only ``offline`` and ``components`` load Pulumi."""
    import subprocess
    import sys

    code = ("import sys, stacks, stacks.cli, stacks.spec, stacks.serving, stacks.names, stacks.stack_yaml; "
            "stacks.cli.main(['check', 'llama2-7b-g2']); "
            "bad = sorted(m for m in sys.modules if m == 'pulumi' or m.startswith(('pulumi.', 'pulumi_'))); "
            "print('PULUMI', bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-1500:]
