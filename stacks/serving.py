"""What each server's limits are for a spec, in the server's own terms: one place that both the
component translators (the flags a real server is started with) and the simulator (what the
simulated server reports and enforces) read, so the two can never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the spec imports this module's flag lists
    from .spec import StackSpec

#: TGI's admission limit as a multiple of the running batch: requests beyond the batch wait in TGI's
#: queue (as in vLLM) instead of being refused with 429, so a batch sweep measures batching
ADMISSION_PER_BATCH_SLOT = 4


@dataclass(frozen=True)
class TgiLimits:
    """TGI's launcher limits (``--max-input-tokens`` ... ``--max-concurrent-requests``).

    ``max_batch_size`` is the stack's ``maxBatch``: the most requests in one running batch.
    ``max_concurrent_requests`` is admission, not batching: above it TGI answers 429 at once.
    """

    max_input_tokens: int
    max_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_total_tokens: int
    max_batch_size: int
    max_concurrent_requests: int


def tgi_limits(spec: StackSpec) -> TgiLimits:
    """TGI requires max input < max total, and a prefill budget that holds the longest input."""
    max_total = spec.max_model_len
    return TgiLimits(max_input_tokens=max_total - 1, max_total_tokens=max_total,
                     max_batch_prefill_tokens=max(spec.max_batched_tokens, max_total - 1),
                     max_batch_total_tokens=spec.sizing.kv_tokens, max_batch_size=spec.max_batch,
                     max_concurrent_requests=ADMISSION_PER_BATCH_SLOT * spec.max_batch)


#: the flags each server's translator sets from the spec (``components/servers/``). ``extraArgs`` may
#: not set them again: the server would take whichever came last, and the plan would show the spec's
#: value while the server ran another. JetStream's are ``key=value`` names. A test checks that every
#: flag a translator emits is listed here.
MANAGED_FLAGS: dict[str, frozenset[str]] = {
    "vllm": frozenset({"--model", "--revision", "--served-model-name", "--host", "--port", "--download-dir",
                       "--tensor-parallel-size", "--max-num-seqs", "--max-model-len", "--max-num-batched-tokens",
                       "--gpu-memory-utilization", "--dtype", "--quantization", "--kv-cache-dtype",
                       "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill",
                       "--no-enable-chunked-prefill", "--enable-lora", "--lora-modules", "--max-lora-rank",
                       "--max-loras"}),
    "tgi": frozenset({"--model-id", "--revision", "--hostname", "--port", "--num-shard", "--max-input-tokens",
                      "--max-total-tokens", "--max-batch-prefill-tokens", "--max-batch-total-tokens",
                      "--max-batch-size", "--max-concurrent-requests", "--quantize", "--dtype", "--kv-cache-dtype",
                      "--lora-adapters"}),
    "triton-trtllm": frozenset({"--model-repository", "--http-port", "--grpc-port", "--metrics-port",
                                "--http-restricted-api", "--grpc-restricted-protocol", "--disable-auto-complete-config",
                                "--backend-config", "--model-control-mode", "--load-model", "--allow-http",
                                "--allow-grpc", "--allow-metrics"}),
    "jetstream": frozenset({"model_name", "tokenizer_path", "per_device_batch_size", "max_prefill_predict_length",
                            "max_target_length", "async_checkpointing", "ici_fsdp_parallelism",
                            "ici_autoregressive_parallelism", "ici_tensor_parallelism", "scan_layers", "weight_dtype",
                            "load_parameters_path", "prometheus_port", "quantization", "checkpoint_is_quantized",
                            "quantize_kvcache"}),
}
MANAGED_FLAGS["vllm-tpu"] = MANAGED_FLAGS["vllm"]  # the same `vllm serve` CLI and translator

#: servers whose own API key guards only ``/v1/*`` (vLLM's ``--api-key``): an external endpoint is
#: published through the authenticating proxy instead (``StackSpec.auth_proxy``)
KEY_GUARDS_V1_ONLY = frozenset({"vllm", "vllm-tpu"})

#: flags that carry a credential: secrets reach servers through Kubernetes Secrets, never arguments
SECRET_FLAGS = ("--api-key", "--hf-token", "--token", "--password", "--http-header", "api_key", "hf_token")


def flag_name(arg: str) -> str:
    """``--max-num-seqs=8`` -> ``--max-num-seqs``; JetStream's ``key=value`` -> ``key``."""
    return arg.split("=", 1)[0]


#: JetStream serves a MaxText checkpoint, converted from the model's own by a Job: the recipes that
#: converter knows, per catalog model. A JetStream stack for any other model is refused at resolve.
@dataclass(frozen=True)
class MaxTextModel:
    """How MaxText names a catalog model, and where its converter finds and writes the checkpoint."""

    model_name: str  # MaxText `model_name=`
    tokenizer: str  # path inside the maxengine-server image
    source: str  # "kaggle" | "huggingface"
    path: str  # converter `-m=`
    params_path: str  # under gs://<bucket>/, what the converter writes for serving


MAXTEXT_RECIPES: dict[str, MaxTextModel] = {
    # Kaggle's MaxText variations of the base models (the catalog serves google/gemma-7b, not -it);
    # the converter writes final/unscanned/<model>_<variation>/0/checkpoints/0/items.
    "gemma-7b": MaxTextModel("gemma-7b", "assets/tokenizer.gemma", "kaggle", "google/gemma/maxtext/7b/2",
                             "final/unscanned/gemma_7b/0/checkpoints/0/items"),
    "gemma-2b": MaxTextModel("gemma-2b", "assets/tokenizer.gemma", "kaggle", "google/gemma/maxtext/2b/2",
                             "final/unscanned/gemma_2b/0/checkpoints/0/items"),
    "llama-2-7b": MaxTextModel("llama2-7b", "assets/tokenizer.llama2", "huggingface", "meta-llama/Llama-2-7b-hf",
                               "llama-2-7b/bf16/unscanned/checkpoints/0/items"),
    "llama-2-13b": MaxTextModel("llama2-13b", "assets/tokenizer.llama2", "huggingface",
                                "meta-llama/Llama-2-13b-hf", "llama-2-13b/bf16/unscanned/checkpoints/0/items"),
}
