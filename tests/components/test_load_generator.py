"""The in-cluster load generator as the program declares it (``gke-llm-bench:loadgen``), under mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from loadtest.cli import build_parser, config_from_args
from stacks.errors import SpecErrors
from stacks.loader import read_stack_document, spec_from_config, stack_files
from stacks.loadgen import allocatable
from stacks.outputs import stack_outputs

from .conftest import program
from .test_program import JOB, NODE_POOL, plaintext

STACK = "llama3-8b-g2-fleet"


def _one(run, type_token: str, name: str) -> dict:
    found = [r for r in run.resources if r.type == type_token and r.name == name]
    assert len(found) == 1, [r.name for r in run.by_type(type_token)]
    return plaintext(found[0].inputs)


def test_the_indexed_job_runs_one_share_per_pod_on_its_own_cpu_pool():
    run = program(STACK)
    job = _one(run, JOB, "loadgen-job")
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == \
        ("Indexed", 4, 4, 0)
    assert job["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    pod = spec["template"]["spec"]
    pool = _one(run, NODE_POOL, "loadgen-pool")
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": pool["name"]}
    (taint,) = pool["nodeConfig"]["taints"]
    assert pod["tolerations"] == [{"key": taint["key"], "operator": "Equal", "value": taint["value"],
                                   "effect": "NoSchedule"}]
    assert "guestAccelerators" not in pool["nodeConfig"] and pool["nodeConfig"]["machineType"] == "n2-standard-8"
    # 4 pods of 2 vCPU (+ 0.25 for the uploader): 3 fit on an n2-standard-8 (7.91 allocatable - 0.4) -> 2 nodes
    assert allocatable(8, 32)[0] == pytest.approx(7.91)
    assert pool["nodeCount"] == 2
    (main,) = pod["containers"]
    assert main["resources"]["requests"] == main["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert not any("nvidia.com/gpu" in str(c.get("resources")) for c in [main, *pod["initContainers"]])
    (uploader,) = pod["initContainers"]
    assert uploader["restartPolicy"] == "Always"  # a native sidecar: stopped when the load tester exits
    bucket = _one(run, "gcp:storage/bucket:Bucket", "loadgen-bucket")
    assert uploader["args"] == ["upload", "/results", f"gs://{bucket['name']}/r1/$(JOB_COMPLETION_INDEX)",
                                "--interval", "5"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in [main, uploader])


def test_the_pods_args_are_a_valid_load_test_of_the_stacks_own_outputs(monkeypatch):
    run = program(STACK)
    pod = _one(run, JOB, "loadgen-job")["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    cfg, _ = config_from_args(build_parser().parse_args(args))
    assert (cfg.pods, cfg.pod_index, cfg.start_at, cfg.levels) == (4, 3, "job+120", [8.0, 16.0, 32.0])
    assert args[args.index("--outputs") + 1] == "/etc/loadgen/outputs.json" and "--in-cluster" in args
    outputs = json.loads(_one(run, "kubernetes:core/v1:ConfigMap", "loadgen-outputs")["data"]["outputs.json"])
    expected = json.loads(json.dumps(stack_outputs(run.spec)))
    for doc in (outputs, expected):  # the plan's warnings depend on which secrets are set
        doc["spec"].pop("warnings")
    assert outputs == expected
    assert not {"apiKey", "kubeconfig", "hfToken"} & set(outputs)
    assert {e["name"] for e in pod["containers"][0]["env"]} == {"JOB_NAME", "POD_NAMESPACE"}  # no API key here


def test_the_account_may_create_results_and_read_its_own_job_only():
    run = program(STACK)
    ns = run.spec.namespace
    access = _one(run, "gcp:storage/bucketIAMMember:BucketIAMMember", "loadgen-bucket-access")
    assert access["role"] == "roles/storage.objectCreator"  # no read, no overwrite, no delete
    gsa = _one(run, "gcp:serviceaccount/account:Account", "loadgen-sa")
    email = f"{gsa['accountId']}@{run.spec.project}.iam.gserviceaccount.com"
    assert access["member"] == f"serviceAccount:{email}"
    wi = _one(run, "gcp:serviceaccount/iAMMember:IAMMember", "loadgen-wi")
    assert wi["member"] == f"serviceAccount:{run.spec.project}.svc.id.goog[{ns}/loadgen]"
    ksa = _one(run, "kubernetes:core/v1:ServiceAccount", "loadgen-ksa")
    assert ksa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": email}
    bucket = _one(run, "gcp:storage/bucket:Bucket", "loadgen-bucket")
    assert bucket["publicAccessPrevention"] == "enforced" and bucket["uniformBucketLevelAccess"] is True
    role = _one(run, "kubernetes:rbac.authorization.k8s.io/v1:Role", "loadgen-role")
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": ["loadgen-r1"],
                              "verbs": ["get"]},
                             {"apiGroups": ["apps"], "resources": ["deployments"],  # the stack autoscales
                              "resourceNames": ["vllm-llama-3-1-8b"], "verbs": ["get"]}]
    # nothing else in the project is granted to it
    grants = [r for r in run.resources if "IAMMember" in r.type
              and plaintext(r.inputs).get("member") == f"serviceAccount:{email}"]
    assert [g.name for g in grants] == ["loadgen-bucket-access"]


def test_the_server_api_key_reaches_the_load_tester_as_a_secret(tmp_path: Path):
    doc = yaml.safe_load(stack_files()[STACK].read_text())
    doc["config"]["gke-llm-bench:exposure"] = {"mode": "internal"}
    doc["config"]["gke-llm-bench:apiKey"] = {"secure": "v1:abc"}
    path = tmp_path / "Pulumi.fleet-key.yaml"
    path.write_text(yaml.safe_dump(doc))
    run = program("fleet-key", path)
    pod = _one(run, JOB, "loadgen-job")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    ref = env["LOADTEST_API_KEY"]["valueFrom"]["secretKeyRef"]
    secret = _one(run, "kubernetes:core/v1:Secret", "server-api-key")
    assert ref == {"name": secret["metadata"]["name"], "key": "key"}


def _spec(loadgen: dict, *, deploying: bool = False):
    flat = dict(read_stack_document(stack_files()[STACK]))
    flat["gke-llm-bench:loadgen"] = {**flat["gke-llm-bench:loadgen"], **loadgen}
    if deploying:
        flat["gke-llm-bench:hfToken"] = {"secure": "v1:abc"}
    return spec_from_config(flat, STACK, require_secrets=deploying)


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"args": ["--mode", "sweep"]}, "loadgen.args", "--mode sweep"),
    ({"args": ["--mode", "rate", "--levels", "4", "--endpoint", "http://x"]}, "loadgen.args", "--endpoint is set by"),
    ({"args": ["--levels", "4"]}, "loadgen.args", "no --mode"),
    ({"runId": "Run_1"}, "loadgen.runId", "cannot name a Job"),
    ({"machineType": "c9-weird-8"}, "loadgen.machineType", "no catalog price"),
    ({"cpu": 16}, "loadgen.cpu", "does not fit on n2-standard-8"),
    ({"pods": 500}, "loadgen.pods", "500 pods"),
    ({"image": "loadtest"}, "loadgen.image", "not pinned by digest"),
])
def test_bad_loadgen_config_names_the_key_and_the_fix(change, key, words):
    with pytest.raises(SpecErrors) as exc:
        _spec(change)
    text = exc.value.render()
    assert f"gke-llm-bench:{key}" in text and words in text


def test_a_tag_is_refused_when_deploying_and_a_digest_accepted():
    with pytest.raises(SpecErrors, match="not pinned by digest"):
        _spec({}, deploying=True)
    pinned = "us-central1-docker.pkg.dev/p/r/loadtest@sha256:" + "a" * 64
    spec = _spec({"image": pinned}, deploying=True)
    assert spec.loadgen is not None and spec.loadgen.image == pinned
    assert spec.summary()["loadgen"]["merge"] == \
        f"python -m loadtest merge gs://{spec.names.loadgen_bucket}/r1 --results-dir results"
