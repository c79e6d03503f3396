"""The deployment decisions the spec makes for the components, and the import boundary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stacks import load_stack_file
from stacks.loader import stack_files

ROOT = Path(__file__).resolve().parents[2]


def test_importing_stacks_does_not_import_pulumi() -> None:
    code = ("import sys, stacks, stacks.cli, stacks.loader, stacks.spec, stacks.outputs; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_gcp', 'pulumi_kubernetes')); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(stack_files()))
def test_decisions_fit_the_machine(name: str) -> None:
    spec = load_stack_file(stack_files()[name], name)
    res = spec.server_resources
    share = spec.tensor_parallel / spec.chips_per_node
    assert 1 <= int(res["requests"]["cpu"]) < spec.machine.vcpu * share
    assert int(res["requests"]["memory"].removesuffix("Gi")) < spec.machine.memory_gb * share
    assert spec.model_cache_gb > spec.checkpoint_gb  # the download always fits its scratch space
    if not spec.local_ssd_count:
        assert spec.boot_disk_gb >= 200 + spec.model_cache_gb
    assert spec.rollout_timeout_s > spec.startup_budget_s > 0
    assert spec.shm_gb >= (16 if spec.tensor_parallel > 1 else 1)


def test_startup_budget_grows_with_the_download() -> None:
    small = load_stack_file(stack_files()["llama2-7b-g2"], "llama2-7b-g2")
    large = load_stack_file(stack_files()["llama2-70b-g2"], "llama2-70b-g2")
    assert large.checkpoint_gb > 10 * small.checkpoint_gb
    assert large.startup_budget_s > small.startup_budget_s + 900  # 125 GB more at 0.1 GB/s


def test_awq_downloads_the_four_bit_checkpoint() -> None:
    awq = load_stack_file(stack_files()["llama2-7b-g2-awq"], "llama2-7b-g2-awq")
    fp8 = load_stack_file(stack_files()["llama2-7b-g2-fp8"], "llama2-7b-g2-fp8")
    assert awq.checkpoint_gb == pytest.approx(awq.model.params * 0.5 / 1e9)
    assert fp8.checkpoint_gb == pytest.approx(fp8.model.params * 2 / 1e9)  # fp8 is quantized at load
