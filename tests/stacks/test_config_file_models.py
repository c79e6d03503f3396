"""A model outside the catalog, described by its Hugging Face config.json (``model.configFile``):
parameter counts checked by hand against the catalog and the model cards, mixtures of experts sized
from every expert and timed from the routed ones, and each bad file named with its key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadtest.simulator.perf_model import PerfModel
from stacks import SpecErrors, load_stack_file
from stacks.catalog import load_catalog
from stacks.hf_config import ConfigFileError, read_architecture

MODELS = Path(__file__).resolve().parents[1] / "models"


def arch(name: str):
    return read_architecture(json.loads((MODELS / f"{name}.config.json").read_text())).model


def test_dense_and_moe_counts_match_the_catalog_exactly() -> None:
    catalog = load_catalog().models
    llama = arch("llama-2-7b")
    assert llama.params == catalog["llama-2-7b"].params == 6_738_415_616 and llama.active_params is None
    mixtral = arch("mixtral-8x7b")
    assert mixtral.params == catalog["mixtral-8x7b"].params == 46_702_792_704
    assert mixtral.active_params == catalog["mixtral-8x7b"].active_params == 12_879_925_248
    assert (mixtral.experts, mixtral.experts_per_token, mixtral.family) == (8, 2, "mixtral")


def test_qwen3_moe_matches_its_model_card() -> None:
    q = arch("qwen3-30b-a3b")  # model card: 30.5 B parameters, 3.3 B activated, 128 experts, 8 activated
    assert q.params == pytest.approx(30.5e9, rel=0.01) and q.active_params == pytest.approx(3.3e9, rel=0.03)
    assert (q.experts, q.experts_per_token, q.ffn, q.head_dim, q.family) == (128, 8, 768, 128, "qwen3_moe")


def test_the_language_model_of_a_multimodal_config() -> None:
    g = arch("multimodal-text-config")
    assert (g.family, g.layers, g.hidden, g.heads, g.kv_heads, g.head_dim) == ("gemma3", 34, 2560, 8, 4, 256)
    # tied embeddings (Transformers' default): 262208 x 2560 once; per layer attention + MLP + norms
    per_layer = 2560 * 8 * 256 * 2 + 2560 * 4 * 256 * 2 + 3 * 2560 * 10240 + 2 * 2560
    assert g.params == 262208 * 2560 + 2560 + 34 * per_layer


@pytest.mark.parametrize(("change", "key"), [
    ({"num_hidden_layers": None}, "num_hidden_layers"),
    ({"num_key_value_heads": 5}, "num_key_value_heads"),
    ({"hidden_size": "4096"}, "hidden_size"),
    ({"quantization_config": {"quant_method": "bitsandbytes"}}, "quantization_config.quant_method"),
    ({"quantization_config": {"quant_method": "modelopt", "quant_algo": "W4A8_AWQ"}}, "quantization_config.quant_algo"),
    ({"layer_types": ["full_attention"], "sliding_window": 4096}, "layer_types"),
    ({"model_type": None}, "model_type"),
])
def test_a_bad_config_names_the_json_key(change: dict, key: str) -> None:
    doc = json.loads((MODELS / "llama-2-7b.config.json").read_text())
    for k, v in change.items():
        if v is None:
            doc.pop(k)
        else:
            doc[k] = v
    with pytest.raises(ConfigFileError) as info:
        read_architecture(doc)
    assert info.value.key == key


def _stack_with(stack_file, tmp_path: Path, name: str, **model) -> Path:
    shutil.copy(MODELS / f"{name}.config.json", tmp_path / "config.json")
    return stack_file({"gke-llm-bench:model": {"name": None, "hfId": f"org/{name}", "configFile": "config.json",
                                               **model}})


def test_a_config_file_model_plans_like_the_catalog_one(stack_file, tmp_path: Path) -> None:
    spec = load_stack_file(_stack_with(stack_file, tmp_path, "llama-2-7b", gated=True))
    catalog = load_stack_file(stack_file())  # the base stack: llama-2-7b from the catalog, same machine
    assert spec.model.params == catalog.model.params
    assert spec.sizing.weight_gb == catalog.sizing.weight_gb and spec.sizing.kv_tokens == catalog.sizing.kv_tokens
    assert spec.model.gated and spec.hf_token_key == "hfToken"
    assert spec.summary()["model"]["experts"] is None


def test_a_moe_is_sized_from_all_experts_and_reads_only_the_routed_ones(stack_file, tmp_path: Path) -> None:
    shutil.copy(MODELS / "qwen3-30b-a3b.config.json", tmp_path / "config.json")
    spec = load_stack_file(stack_file({
        "gke-llm-bench:model": {"name": None, "hfId": "org/qwen3-30b-a3b", "configFile": "config.json"},
        "gke-llm-bench:accelerator": {"machineType": "a3-highgpu-1g", "queuedProvisioning": True},
        "gke-llm-bench:server": {"maxModelLen": 8192}}))
    weights = spec.model.params * 2  # bf16: every expert is resident (the guide's 80 % rule applies to it)
    assert spec.sizing.weight_bytes == pytest.approx(weights)
    perf = PerfModel(spec)
    one = perf.weights_read(1)  # one token: the dense part and its 8 routed experts = the active parameters
    assert one == pytest.approx(spec.model.active_params * 2, rel=1e-9)
    assert perf.weights_read(256) == pytest.approx(weights, rel=1e-3)  # a large batch touches every expert
    assert one < perf.weights_read(8) < perf.weights_read(64) < weights


def test_config_file_errors_name_the_key_and_the_fix(stack_file, tmp_path: Path) -> None:
    with pytest.raises(SpecErrors) as info:
        load_stack_file(stack_file({"gke-llm-bench:model": {"hfId": "org/x", "configFile": "missing.json"}}))
    keys = {e.key: e for e in info.value.errors}
    assert "does not exist" in keys["gke-llm-bench:model.configFile"].message
    shutil.copy(MODELS / "fp8-checkpoint.config.json", tmp_path / "config.json")
    with pytest.raises(SpecErrors) as info:
        load_stack_file(stack_file({"gke-llm-bench:model": {"name": None, "hfId": "org/fp8",
                                                            "configFile": "config.json"}}))
    e = {e.key: e for e in info.value.errors}["gke-llm-bench:precision.weights"]
    assert "fp8 checkpoint" in e.message and e.fix == "set precision.weights: fp8"
    with pytest.raises(SpecErrors) as info:
        load_stack_file(stack_file({"gke-llm-bench:model": {"hfId": "org/fp8", "configFile": "config.json"}}))
    assert "given together with `configFile`" in {e.key: e for e in info.value.errors}[
        "gke-llm-bench:model.name"].message


#: the catalog's newer models against their model cards (total, active parameters)
MODEL_CARDS = {"qwen3-8b": (8.2e9, None), "qwen3-32b": (32.8e9, None), "qwen3-30b-a3b": (30.5e9, 3.3e9),
               "qwen3-235b-a22b": (235e9, 22e9), "llama-3.3-70b": (70.6e9, None),
               "deepseek-r1-distill-llama-70b": (70.6e9, None), "gemma-3-4b": (4.3e9, None),
               "gemma-3-12b": (12.2e9, None), "gemma-3-27b": (27.4e9, None),
               "mistral-small-3.1-24b": (24.0e9, None)}


@pytest.mark.parametrize("alias", sorted(MODEL_CARDS))
def test_catalog_counts_agree_with_the_model_cards(alias: str) -> None:
    m = load_catalog().models[alias]
    total, active = MODEL_CARDS[alias]
    assert m.params == pytest.approx(total, rel=0.01)
    assert (m.active_params is None) is (active is None)
    if active:
        assert m.active_params == pytest.approx(active, rel=0.03) and m.expert_params > 0
    assert m.heads % m.kv_heads == 0


def test_the_catalog_moe_is_the_config_file_moe() -> None:
    from_file, catalog = arch("qwen3-30b-a3b"), load_catalog().models["qwen3-30b-a3b"]
    assert (catalog.params, catalog.active_params, catalog.experts, catalog.experts_per_token, catalog.ffn) == (
        from_file.params, from_file.active_params, from_file.experts, from_file.experts_per_token, from_file.ffn)


def test_the_2026_stacks_size_as_computed_by_hand() -> None:
    from stacks.loader import stack_files

    def spec(name: str):
        return load_stack_file(stack_files()[name], name)

    a3x2, g2 = spec("llama3-70b-fp8-a3x2"), spec("llama3-70b-fp8-g2")
    # 70,553,706,496 parameters x 1 byte (FP8) over 2 x 80 GB and 8 x 24 GB
    assert a3x2.sizing.weight_bytes == g2.sizing.weight_bytes == 70_553_706_496
    assert a3x2.sizing.weight_share == pytest.approx(70.553706496 / 160) and g2.sizing.weight_share == pytest.approx(
        70.553706496 / 192)
    # KV per token: 2 (K, V) x 80 layers x 8 KV heads x 128 x 2 bytes, whole model (TP splits it)
    assert a3x2.model.kv_bytes_per_token(2) == 2 * 80 * 8 * 128 * 2 == 327_680
    moe = spec("qwen3-moe-a3")  # 30,532,110,336 parameters, every expert resident, in FP8
    assert moe.sizing.weight_bytes == 30_532_110_336 and moe.model.kv_bytes_per_token(2) == 2 * 48 * 4 * 128 * 2


STACK_MODELS = Path(__file__).resolve().parents[2] / "stacks" / "models"


@pytest.mark.parametrize(("alias", "total", "active"), [("gpt-oss-20b", 21e9, 3.6e9), ("gpt-oss-120b", 117e9, 5.1e9)])
def test_gpt_oss_from_its_config_is_the_catalog_and_the_model_card(alias: str, total: float, active: float) -> None:
    read = read_architecture(json.loads((STACK_MODELS / f"{alias}.config.json").read_text()), f"openai/{alias}")
    m = load_catalog().models[alias]
    assert read.quantization == "mxfp4" and m.quantized["mxfp4"] == m.hf_id
    fields = ("params", "active_params", "experts", "experts_per_token", "layers", "sliding_window", "sliding_layers")
    assert [getattr(read.model, f) for f in fields] == [getattr(m, f) for f in fields]
    assert m.params == pytest.approx(total, rel=0.01)
    # the card's active count leaves out the input embedding (a lookup, not a matmul)
    assert m.active_params - m.vocab * m.hidden == pytest.approx(active, rel=0.01)
    assert (m.sliding_window, m.sliding_layers) == (128, m.layers // 2)


def test_the_gpt_oss_stacks_size_as_computed_by_hand() -> None:
    from stacks.loader import stack_files

    specs = {n: load_stack_file(stack_files()[n], n) for n in ("gpt-oss-120b-a3", "gpt-oss-120b-a4", "gpt-oss-120b-g4")}
    # MXFP4 holds the experts only: 114,661,785,600 expert parameters x 4.25 bits (E2M1 + an E8M0
    # scale per 32) + the other 2,127,263,040 (attention, router, embeddings, head) x 2 bytes
    weights = 114_661_785_600 * 17 // 32 + 2_127_263_040 * 2
    assert weights == 65_168_599_680
    for s in specs.values():
        assert s.sizing.weight_bytes == weights and s.tensor_parallel == 1
        assert s.checkpoint_gb == pytest.approx(weights / 1e9)  # the download is the MXFP4 checkpoint
    assert specs["gpt-oss-120b-a3"].sizing.weight_share == pytest.approx(65.16859968 / 80)  # past 80 %: 0.85 set
    assert specs["gpt-oss-120b-a4"].sizing.weight_share == pytest.approx(65.16859968 / 180)
    assert specs["gpt-oss-120b-g4"].sizing.weight_share == pytest.approx(65.16859968 / 96)
    # Blackwell runs MXFP4 on FP4 tensor cores; the H100 dequantizes to bf16
    assert PerfModel(specs["gpt-oss-120b-a4"]).flops_per_s / PerfModel(specs["gpt-oss-120b-a4"]).eff.mfu == 9000e12
    a3 = PerfModel(specs["gpt-oss-120b-a3"])
    assert a3.flops_per_s / a3.eff.mfu == 989e12


def test_a_sliding_window_layer_reads_at_most_its_window() -> None:
    from stacks.loader import stack_files

    perf = PerfModel(load_stack_file(stack_files()["gpt-oss-120b-g4"], "gpt-oss-120b-g4"))
    per_token = perf.kv_bytes_per_token
    # one sequence decoding with 4,096 cached tokens: the 18 full layers read 4,097 positions, the 18
    # sliding ones 128 + 1
    _, kv = perf._attention(new_tokens=1, seqs=1, attn_pairs=4096.5, kv_read_tokens=4096)
    assert kv == pytest.approx(per_token * (0.5 * 4097 + 0.5 * 129))
    # below the window nothing changes
    _, short = perf._attention(new_tokens=1, seqs=1, attn_pairs=64.5, kv_read_tokens=64)
    assert short == pytest.approx(per_token * 65)


def test_a_modelopt_nvfp4_checkpoint_is_read_as_nvfp4() -> None:
    doc = json.loads((MODELS / "llama-2-7b.config.json").read_text())
    doc["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "NVFP4"}
    assert read_architecture(doc).quantization == "nvfp4"


@pytest.mark.parametrize("alias", ["gemma-3-4b", "gemma-3-12b", "gemma-3-27b"])
def test_gemma_3_is_its_text_config_plus_the_vision_tower(alias: str) -> None:
    """The catalog's Gemma 3 = the text model read from its config.json's text_config + the SigLIP
    tower computed from vision_config (what vLLM loads for Gemma3ForConditionalGeneration)."""
    m = load_catalog().models[alias]
    text = {"model_type": "gemma3_text", "hidden_size": m.hidden, "num_attention_heads": m.heads,
            "num_key_value_heads": m.kv_heads, "head_dim": m.head_dim, "intermediate_size": m.ffn,
            "num_hidden_layers": m.layers, "max_position_embeddings": m.max_context, "vocab_size": m.vocab,
            "sliding_window": 1024, "sliding_window_pattern": 6}
    read = read_architecture({"model_type": "gemma3", "text_config": text}, m.hf_id).model
    h, ffn, layers, patch, image = 1152, 4304, 27, 14, 896  # vision_config
    vision = (layers * (4 * h * h + 4 * h + 2 * h * ffn + h + ffn + 4 * h) + patch * patch * 3 * h + h
              + (image // patch) ** 2 * h + 2 * h + h * m.hidden + m.hidden)
    assert m.params == read.params + vision
    assert (m.sliding_window, m.sliding_layers) == (read.sliding_window, read.sliding_layers) == (
        1024, m.layers - m.layers // 6)


def test_mistral_small_3_1_is_its_text_config_plus_the_pixtral_tower() -> None:
    """The catalog's Mistral Small 3.1 = the text model read from text_config (untied embeddings) +
    the Pixtral vision tower and the projector computed from vision_config (what vLLM loads for
    Mistral3ForConditionalGeneration)."""
    m = load_catalog().models["mistral-small-3.1-24b"]
    text = {"model_type": "mistral", "hidden_size": m.hidden, "num_attention_heads": m.heads,
            "num_key_value_heads": m.kv_heads, "head_dim": m.head_dim, "intermediate_size": m.ffn,
            "num_hidden_layers": m.layers, "max_position_embeddings": m.max_context, "vocab_size": m.vocab,
            "sliding_window": None}
    read = read_architecture({"model_type": "mistral3", "text_config": text, "tie_word_embeddings": False},
                             m.hf_id).model
    assert read.params == 23_572_403_200 and read.family == m.family == "mistral3"
    h, ffn, layers, patch, merge = 1024, 4096, 24, 14, 2  # vision_config, spatial_merge_size
    tower = patch * patch * 3 * h + h + layers * (4 * h * h + 3 * h * ffn + 2 * h)  # conv, ln_pre, layers
    projector = h + merge * merge * h * h + h * m.hidden + m.hidden * m.hidden  # norm, patch merger, 2 linears
    assert tower + projector == 438_958_080
    assert m.params == read.params + tower + projector
    assert read.sliding_window is None
