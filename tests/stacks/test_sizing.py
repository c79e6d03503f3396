"""The guide's worked examples and the sizing rules, with exact units."""

from __future__ import annotations

import pytest

from stacks.catalog import ModelArch, load_catalog
from stacks.precision import PRECISIONS
from stacks.sizing import GB, GiB, default_tp, fits, size, weight_bytes

CAT = load_catalog()
SEVEN_B = ModelArch(
    alias="7b",
    hf_id="x/7b",
    family="llama",
    params=7_000_000_000,
    layers=32,
    hidden=4096,
    heads=32,
    kv_heads=32,
    head_dim=128,
    ffn=11008,
    vocab=32000,
    max_context=4096,
)


def test_guide_worked_examples_7b_at_16_and_8_bit():
    # The guide: 7 B x 2 bytes = 14 GB; 7 B x 1 byte = 7 GB (it writes "GiB"; the bytes are GB).
    assert weight_bytes(SEVEN_B, PRECISIONS["bf16"]) == 14 * GB
    assert weight_bytes(SEVEN_B, PRECISIONS["fp8"]) == 7 * GB
    assert weight_bytes(SEVEN_B, PRECISIONS["int8"]) == 7 * GB
    assert weight_bytes(SEVEN_B, PRECISIONS["awq"]) == 3.5 * GB
    assert 14 * GB / GiB == pytest.approx(13.04, abs=0.01)


def test_guide_l4_budget_is_19_2_gb():
    l4 = CAT.chips["nvidia-l4"]
    # 19.2 GB of weights fit on one L4 (24 GB x 0.8); one byte more does not.
    just_fits = ModelArch(**{**SEVEN_B.__dict__, "params": int(19.2 * GB / 2)})
    too_big = ModelArch(**{**SEVEN_B.__dict__, "params": int(19.2 * GB / 2) + 1})
    assert fits(just_fits, PRECISIONS["bf16"], l4, 1)
    assert not fits(too_big, PRECISIONS["bf16"], l4, 1)


def test_kv_bytes_per_token_matches_reference_table():
    m = CAT.models
    assert m["llama-2-7b"].kv_bytes_per_token(2) == 512 * 1024
    assert m["llama-2-70b"].kv_bytes_per_token(2) == 320 * 1024
    assert m["gemma-7b"].kv_bytes_per_token(2) == 448 * 1024
    assert m["llama-3-8b"].kv_bytes_per_token(1) == 64 * 1024  # fp8 KV halves it
    assert m["flan-t5-xxl"].kv_bytes_per_token(2) == 384 * 1024  # decoder self-attention only


def test_default_tp_is_smallest_power_of_two_that_fits_and_divides_heads():
    l4, h100 = CAT.chips["nvidia-l4"], CAT.chips["nvidia-h100-80gb"]
    seventy = CAT.models["llama-2-70b"]
    assert default_tp(CAT.models["llama-2-7b"], PRECISIONS["bf16"], l4, 8) == 1
    assert default_tp(seventy, PRECISIONS["bf16"], h100, 8) == 4  # 138 GB > 0.8 x 160 GB, <= 0.8 x 320 GB
    assert default_tp(seventy, PRECISIONS["bf16"], l4, 8) == 8
    assert default_tp(seventy, PRECISIONS["bf16"], l4, 4) is None  # 4 x L4 is not enough
    falcon = CAT.models["falcon-7b"]  # 71 heads: only TP 1 divides them
    assert default_tp(falcon, PRECISIONS["bf16"], l4, 8) == 1


def test_kv_capacity_is_what_remains_after_weights_and_activations():
    l4 = CAT.chips["nvidia-l4"]
    model = CAT.models["llama-2-7b"]
    z = size(
        model,
        PRECISIONS["bf16"],
        "auto",
        l4,
        1,
        memory_utilization=0.9,
        max_model_len=4096,
        max_batch=256,
        tokens_per_step=8192,
    )
    expected_kv = l4.usable_bytes * 0.9 - model.params * 2 - z.activation_bytes
    assert z.kv_bytes == pytest.approx(expected_kv)
    assert z.kv_tokens == int(expected_kv // (512 * 1024))
    assert z.max_seqs_at_max_len == z.kv_tokens // 4096
    assert z.kv_blocks == z.kv_tokens // 16
    assert any("exceeds the KV capacity" in w for w in z.warnings)  # 256 x 4096 tokens do not fit


def test_fp8_kv_cache_doubles_capacity_and_replication_across_tp():
    h100 = CAT.chips["nvidia-h100-80gb"]
    model = CAT.models["llama-2-70b"]  # 8 KV heads
    args = dict(memory_utilization=0.9, max_model_len=4096, max_batch=64, tokens_per_step=8192)
    auto = size(model, PRECISIONS["bf16"], "auto", h100, 8, **args)
    fp8 = size(model, PRECISIONS["bf16"], "fp8", h100, 8, **args)
    assert fp8.kv_tokens == pytest.approx(2 * auto.kv_tokens, rel=1e-6, abs=1)
    gemma2b = CAT.models["gemma-2b"]  # 1 KV head: replicated on every GPU at TP 4
    z = size(gemma2b, PRECISIONS["bf16"], "auto", h100, 4, **args)
    assert z.kv_bytes_per_token == gemma2b.kv_bytes_per_token(2) * 4


def test_low_kv_share_warns_with_the_guides_20_percent():
    l4 = CAT.chips["nvidia-l4"]
    z = size(
        CAT.models["llama-2-70b"],
        PRECISIONS["bf16"],
        "auto",
        l4,
        8,
        memory_utilization=0.9,
        max_model_len=4096,
        max_batch=16,
        tokens_per_step=8192,
    )
    assert z.fits and z.kv_share < 0.20
    assert any("20 %" in w for w in z.warnings)


def test_a_stack_may_raise_the_weights_share_and_is_warned(tmp_path) -> None:
    """Llama-2-70B fp16 on 4 x A100 40GB (87 % of memory): refused by the guide's 80 %, served at 0.9."""
    import pytest

    from stacks.errors import SpecErrors
    from stacks.loader import spec_from_config

    flat = {
        "gcp:project": "my-project", "gcp:region": "us-central1", "gcp:zone": "us-central1-a",
        "gke-llm-bench:accelerator": {"machineType": "a2-highgpu-4g", "queuedProvisioning": True},
        "gke-llm-bench:model": {"name": "llama-2-70b"},
        "gke-llm-bench:precision": {"weights": "fp16"},
        "gke-llm-bench:server": {"kind": "vllm", "maxModelLen": 1024, "maxBatch": 32},
    }
    with pytest.raises(SpecErrors) as exc:
        spec_from_config(flat, "tight")
    assert "(80 % of 160 GB)" in str(exc.value) and "sizing.weightsShareMax" in str(exc.value)
    spec = spec_from_config({**flat, "gke-llm-bench:sizing": {"weightsShareMax": 0.9}}, "tight")
    assert spec.sizing.fits and spec.sizing.weight_share > 0.8 and spec.sizing.kv_tokens >= 1024
    assert any("above the guide's 80 %" in w for w in spec.sizing.warnings)
    with pytest.raises(SpecErrors) as exc:
        spec_from_config({**flat, "gke-llm-bench:sizing": {"weightsShareMax": 0.99}}, "tight")
    assert "weightsShareMax" in str(exc.value)
