"""`python -m stacks list|check` as a user runs them: exit codes, messages, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stacks import load_stack_file, stack_files
from stacks.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stacks", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", sorted(stack_files()))
def test_every_committed_stack_is_valid(name):
    spec = load_stack_file(stack_files()[name], name)
    assert spec.sizing.fits and spec.sizing.kv_tokens >= spec.max_model_len
    assert spec.usd_per_hour > 0


def test_the_guides_demo_pairs_are_committed():
    specs = {n: load_stack_file(p, n) for n, p in stack_files().items()}
    pairs = {(s.model.alias, s.machine.name.split("-")[0]) for s in specs.values()}
    assert {("llama-2-7b", "g2"), ("llama-2-7b", "a3"), ("llama-2-70b", "g2"), ("llama-2-70b", "a3")} <= pairs


def test_check_all_committed_stacks_exits_zero_and_prints_sizing(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for name in stack_files():
        assert name in out
    assert "KV tokens" in out and "valid" in out


def test_list_prints_one_line_per_stack(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "llama2-7b-g2" in out and "g2-standard-8" in out and "0.85" in out


def test_mutated_stack_exits_2_naming_key_and_fix(tmp_path):
    text = stack_files()["llama2-7b-g2"].read_text()
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(text.replace("machineType: g2-standard-8", "gpu: nvidia-l5"))
    result = run_cli("check", str(bad))
    assert result.returncode == 2
    assert "gke-llm-bench:accelerator.gpu" in result.stdout and 'did you mean "nvidia-l4"' in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    big = tmp_path / "Pulumi.big.yaml"
    big.write_text(text.replace("name: llama-2-7b", "name: llama-2-70b"))
    result = run_cli("check", str(big))
    assert result.returncode == 2 and "cheapest that fit" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_unknown_stack_name_and_mixed_batch(capsys, tmp_path):
    assert main(["check", "llama2-7b-g3"]) == 2
    out = capsys.readouterr().out
    assert 'did you mean "llama2-7b-g2"' in out
    assert main(["check", "llama2-7b-g2", "nope"]) == 2


def test_deploy_check_requires_the_hf_token():
    result = run_cli("check", "--deploy", "llama2-7b-g2")
    assert result.returncode == 2 and "pulumi config set --secret hfToken" in result.stdout


def test_check_says_what_a_stack_declares_beside_its_server(capsys):
    assert main(["check", "llama3-8b-g2-fleet"]) == 0
    out = capsys.readouterr().out
    assert "autoscales 1-4 replicas on vllm:num_requests_waiting (target 8 per replica)" in out
    # 4 pods of 2 vCPU + uploader: 3 per n2-standard-8, 2 nodes at $0.388472/h
    assert "load generator: 4 pods, 3 per n2-standard-8 on 2 node(s), $0.78/h" in out
