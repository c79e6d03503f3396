"""The roofline: what bounds a step, how TP and precision move it, and where factors come from."""

from __future__ import annotations

import pytest

from loadtest.simulator.calibration import build_spec
from loadtest.simulator.efficiency import EfficiencyError, efficiency
from loadtest.simulator.perf_model import PerfModel


def test_prefill_is_compute_bound_and_decode_memory_bound(spec_7b_a3):
    perf = PerfModel(spec_7b_a3)
    prefill = perf.step(2048, 1, 2048 * 2049 / 2, 0)
    decode = perf.step(1, 1, 513, 512)
    assert prefill.bound == "compute"
    assert decode.bound == "memory"
    # a decode step reads all weights once: its memory time is weights / effective bandwidth
    eff_bw = spec_7b_a3.machine.chip.bandwidth_gbps * 1e9 * perf.eff.mbu
    assert decode.memory_s == pytest.approx((spec_7b_a3.sizing.weight_bytes + 513 * perf.kv_bytes_per_token) / eff_bw)


def test_batching_decodes_is_nearly_free_until_compute_bound(spec_7b_a3):
    perf = PerfModel(spec_7b_a3)
    one = perf.step_seconds(1, 1, 129, 128)
    many = perf.step_seconds(64, 64, 64 * 129, 64 * 128)
    assert many < 2 * one  # 64x the tokens for < 2x the time: why batching raises throughput


def test_kv_bytes_come_from_the_sizing(stacks):
    spec = stacks["llama2-70b-a3"]
    assert PerfModel(spec).kv_bytes_per_token == spec.sizing.kv_bytes_per_token


def test_tensor_parallel_adds_communication(stacks):
    tp8 = PerfModel(stacks["llama2-70b-a3"]).step(256, 256, 256 * 300, 256 * 300)
    tp1 = PerfModel(stacks["llama2-7b-a3"]).step(256, 256, 256 * 300, 256 * 300)
    assert tp8.comm_s > 0
    assert tp1.comm_s == 0


def test_pcie_l4_communication_costs_more_than_nvlink(stacks):
    g2 = PerfModel(stacks["llama2-70b-g2"]).step(256, 256, 0, 0)
    a3 = PerfModel(stacks["llama2-70b-a3"]).step(256, 256, 0, 0)
    assert g2.comm_s > 3 * a3.comm_s


def test_fp8_weights_halve_decode_memory_time(stacks):
    bf16 = PerfModel(stacks["llama2-70b-g2"]).step(1, 1, 0, 0)
    fp8 = PerfModel(stacks["llama2-70b-g2-fp8"]).step(1, 1, 0, 0)
    assert fp8.memory_s == pytest.approx(bf16.memory_s / 2, rel=0.02)


def test_efficiency_most_specific_entry_wins():
    a100 = efficiency("triton-trtllm", "nvidia-a100-80gb", "fp16")
    h100 = efficiency("triton-trtllm", "nvidia-h100-80gb", "fp16")
    assert a100.mbu != h100.mbu  # the H100 override applies only to the H100
    assert a100.sources[0]  # every factor set names its source


def test_unknown_engine_or_chip_is_a_clear_error():
    with pytest.raises(EfficiencyError, match=r"engines\.nope"):
        efficiency("nope", "nvidia-l4", "bf16")
    with pytest.raises(EfficiencyError, match=r"hardware\.nvidia-x9"):
        efficiency("vllm", "nvidia-x9", "bf16")


def test_engines_keep_their_own_factors():
    spec = build_spec("a2-ultragpu-1g", "llama-2-7b", "bf16", "triton-trtllm")
    trt = PerfModel(spec, efficiency("triton-trtllm", spec.accelerator, "bf16")).step_seconds(1, 1, 129, 128)
    vllm = PerfModel(spec, efficiency("vllm", spec.accelerator, "bf16")).step_seconds(1, 1, 129, 128)
    assert vllm != trt
    assert PerfModel(spec).step_seconds(1, 1, 129, 128) == trt  # the spec's own server picks its factors
