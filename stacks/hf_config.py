"""A model's architecture from its Hugging Face ``config.json``, so a model outside the catalog
needs no hand-typed fields (``gke-llm-bench:model: {hfId: org/name, configFile: path}``).

The file is read locally: nothing is fetched from the Hub at plan time. Parameter counts are
computed from the shapes the way the catalog's are (``reference/models.md``): embeddings (twice
when the output head is not tied), per layer the attention projections, the MLP (gated, three
matrices) or the experts plus their router, and the norms; biases are left out (well under 0.1 %).
For a mixture of experts, ``params`` counts every expert (what memory must hold) and
``active_params`` the experts one token is routed to (what its compute and weight reads touch).

Keys, as Hugging Face names them: ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
``num_key_value_heads`` (default: the heads), ``head_dim`` (default: hidden / heads),
``intermediate_size``, ``vocab_size``, ``max_position_embeddings``, ``tie_word_embeddings``
(Transformers' default: true); experts from ``num_local_experts`` (Mixtral, gpt-oss) or
``num_experts`` (Qwen3-MoE), routed per token from ``num_experts_per_tok`` or
``experts_per_token`` (gpt-oss), sized by ``moe_intermediate_size`` where the model has one;
``shared_expert_intermediate_size`` is always active. A multimodal config (Gemma 3) keeps the
language model's keys under ``text_config``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import ModelArch

#: config.json ``model_type`` -> the catalog's family (the server support matrix keys on it)
FAMILIES = {"gemma3_text": "gemma3", "gpt_oss": "gpt_oss"}
#: ``quantization_config.quant_method`` -> the precision (``stacks/precision.py``) the checkpoint is in
QUANT_METHODS = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "mxfp4": "mxfp4"}
#: NVIDIA ModelOpt checkpoints say ``quant_method: modelopt`` and name the format in ``quant_algo``
MODELOPT_ALGOS = {"FP8": "fp8", "NVFP4": "nvfp4"}


class ConfigFileError(ValueError):
    """A problem with config.json: ``key`` is the JSON key, the message says what is wrong."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class HfArchitecture:
    """A model as config.json describes it: its catalog-shaped architecture, and the precision its
    checkpoint is stored in when it is pre-quantized (``quantization_config``)."""

    model: ModelArch
    quantization: str | None


def _int(doc: dict[str, Any], key: str, default: int | None = None) -> int:
    value = doc.get(key, default)
    if value is None:
        raise ConfigFileError(key, "is missing")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigFileError(key, f"must be a positive integer, not {value!r}")
    return value


def read_architecture(doc: Any, hf_id: str = "config.json", *, gated: bool = False) -> HfArchitecture:
    """Every field the sizing and the performance model need; ``ConfigFileError`` names the key."""
    if not isinstance(doc, dict):
        raise ConfigFileError("(top level)", "is not a JSON object")
    nested = doc.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else doc
    model_type = str(doc.get("model_type") or text.get("model_type") or "")
    if not model_type:
        raise ConfigFileError("model_type", "is missing (which architecture is this?)")
    if doc.get("is_encoder_decoder"):
        raise ConfigFileError("is_encoder_decoder", "encoder-decoder models are sized from the catalog only "
                                                    "(flan-t5-xxl); give this one `architecture:` by hand")
    layers, hidden = _int(text, "num_hidden_layers"), _int(text, "hidden_size")
    heads = _int(text, "num_attention_heads")
    kv_heads = _int(text, "num_key_value_heads", heads)
    head_dim = _int(text, "head_dim", hidden // heads)
    vocab, max_context = _int(text, "vocab_size"), _int(text, "max_position_embeddings")
    if heads % kv_heads:
        raise ConfigFileError("num_key_value_heads", f"{kv_heads} does not divide num_attention_heads ({heads})")
    experts = text.get("num_local_experts") or text.get("num_experts")
    per_token = text.get("num_experts_per_tok") or text.get("experts_per_token")
    moe = bool(experts)
    if moe:
        experts = _int(text, "num_local_experts" if "num_local_experts" in text else "num_experts")
        per_token = _int(text, "num_experts_per_tok" if "num_experts_per_tok" in text else "experts_per_token")
        if per_token > experts:
            raise ConfigFileError("num_experts_per_tok", f"{per_token} is more than the {experts} experts")
        ffn = _int(text, "moe_intermediate_size" if "moe_intermediate_size" in text else "intermediate_size")
    else:
        ffn = _int(text, "intermediate_size")
    shared_ffn = text.get("shared_expert_intermediate_size") or 0

    tied = bool(text.get("tie_word_embeddings", doc.get("tie_word_embeddings", True)))
    embeddings = vocab * hidden * (1 if tied else 2)
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    norms = 2 * hidden
    expert = 3 * hidden * ffn
    if moe:
        assert experts is not None and per_token is not None
        fixed = attention + norms + hidden * experts + 3 * hidden * shared_ffn  # router and shared expert
        params = embeddings + hidden + layers * (fixed + experts * expert)
        active: int | None = embeddings + hidden + layers * (fixed + per_token * expert)
    else:
        params = embeddings + hidden + layers * (attention + norms + expert)
        active = None

    window, sliding = _sliding_window(text, layers)
    model = ModelArch(alias=hf_id.split("/")[-1].lower(), hf_id=hf_id, family=FAMILIES.get(model_type, model_type),
                      params=params, active_params=active, layers=layers, hidden=hidden, heads=heads,
                      kv_heads=kv_heads, head_dim=head_dim, ffn=ffn, vocab=vocab, max_context=max_context,
                      experts=experts if moe else None, experts_per_token=per_token if moe else None, gated=gated,
                      sliding_window=window, sliding_layers=sliding)
    return HfArchitecture(model, _quantization(doc.get("quantization_config")))


def _quantization(quant: Any) -> str | None:
    """The precision a pre-quantized checkpoint is stored in, from ``quantization_config``."""
    if not (isinstance(quant, dict) and quant.get("quant_method")):
        return None
    method = str(quant["quant_method"])
    if method == "modelopt":
        algo = str(quant.get("quant_algo", ""))
        if algo not in MODELOPT_ALGOS:
            raise ConfigFileError("quantization_config.quant_algo",
                                  f'"{algo}" is not modelled (modelled: {", ".join(MODELOPT_ALGOS)})')
        return MODELOPT_ALGOS[algo]
    if method not in QUANT_METHODS:
        raise ConfigFileError("quantization_config.quant_method",
                              f'"{method}" is not modelled (modelled: {", ".join([*QUANT_METHODS, "modelopt"])})')
    return QUANT_METHODS[method]


def _sliding_window(text: dict[str, Any], layers: int) -> tuple[int | None, int]:
    """The sliding window and how many layers use it. ``layer_types`` says it per layer (gpt-oss,
    Gemma 3); older Gemma 3 configs give ``sliding_window_pattern`` (every n-th layer is global).
    A ``sliding_window`` alone is not trusted: Qwen configs carry one with ``use_sliding_window: false``."""
    window = text.get("sliding_window")
    if not window or text.get("use_sliding_window") is False:
        return None, 0
    window = _int(text, "sliding_window")
    kinds = text.get("layer_types")
    if isinstance(kinds, list):
        if len(kinds) != layers:
            raise ConfigFileError("layer_types", f"lists {len(kinds)} layers, not num_hidden_layers ({layers})")
        sliding = sum(1 for kind in kinds if kind == "sliding_attention")
    elif text.get("sliding_window_pattern"):
        sliding = layers - layers // _int(text, "sliding_window_pattern")
    else:
        return None, 0
    return (window, sliding) if sliding else (None, 0)
