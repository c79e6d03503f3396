"""vLLM's OpenAI-compatible server (``vllm/vllm-openai``, entrypoint ``vllm serve``).

Flags as documented in vLLM's engine arguments (docs.vllm.ai, serving/engine_args):
``--tensor-parallel-size``, ``--max-num-seqs``, ``--max-model-len``, ``--max-num-batched-tokens``,
``--gpu-memory-utilization``, ``--quantization`` (fp8 quantizes a 16-bit checkpoint at load; awq /
gptq read pre-quantized checkpoints), ``--kv-cache-dtype fp8``, ``--enable-prefix-caching`` /
``--no-enable-prefix-caching``, ``--enable-chunked-prefill`` / ``--no-enable-chunked-prefill``;
LoRA adapters (docs.vllm.ai "LoRA Adapters"): ``--enable-lora``, ``--lora-modules name=source ...``
(a source that is not a local path is a Hugging Face repo, fetched at startup with ``HF_TOKEN``),
``--max-lora-rank``, ``--max-loras``.
vLLM's TPU image (server kind ``vllm-tpu``, the tpu-inference backend) takes the same arguments.
The API key comes from ``VLLM_API_KEY`` (a Secret); it guards ``/v1/*`` only, so the probes on
``/health`` and the scrape of ``/metrics`` keep working without it.
"""

from __future__ import annotations

from .base import (
    MODEL_CACHE_PATH,
    SecretRefs,
    ServerArgs,
    ServerWorkload,
    cache_mount,
    secret_env,
    server_ports,
    shm_mount,
)

# int8, mxfp4 and nvfp4 have no flag: vLLM serves them only from a pre-quantized checkpoint (the
# catalog's `quantized`, or `model.hfId`) and reads the method from its quantization config.
QUANTIZATION_FLAG = {"fp8": "fp8", "awq": "awq_marlin", "gptq": "gptq_marlin"}
DTYPE_FLAG = {"bf16": "bfloat16", "fp16": "float16"}


def args(srv: ServerArgs) -> list[str]:
    """The exact ``vllm serve`` arguments for the spec (the plan and the tests read these)."""
    out = [
        srv.checkpoint,  # `vllm serve <model>`: the positional model tag (`--model` is deprecated there)
        "--revision", srv.revision,
        "--served-model-name", srv.served_name,
        "--host", "0.0.0.0",
        "--port", str(srv.kind.http_port),
        "--download-dir", f"{MODEL_CACHE_PATH}/hf",
        "--tensor-parallel-size", str(srv.tensor_parallel),
        "--max-num-seqs", str(srv.max_batch),
        "--max-model-len", str(srv.max_model_len),
        "--max-num-batched-tokens", str(srv.max_batched_tokens),
        "--gpu-memory-utilization", f"{srv.gpu_memory_utilization:g}",
    ]
    p = srv.precision
    if p in DTYPE_FLAG:
        out += ["--dtype", DTYPE_FLAG[p]]
    if p in QUANTIZATION_FLAG:
        out += ["--quantization", QUANTIZATION_FLAG[p]]
    if srv.kv_cache_dtype not in ("auto", "bf16", "fp16"):
        out += ["--kv-cache-dtype", srv.kv_cache_dtype]
    out.append("--enable-prefix-caching" if srv.prefix_caching else "--no-enable-prefix-caching")
    out.append("--enable-chunked-prefill" if srv.chunked_prefill else "--no-enable-chunked-prefill")
    if srv.lora is not None:
        out += ["--enable-lora", "--lora-modules", *(f"{a.name}={a.source}" for a in srv.lora.adapters),
                "--max-lora-rank", str(srv.lora.max_rank), "--max-loras", str(srv.lora.max_loras)]
    return out + list(srv.extra_args)


def workload(srv: ServerArgs, secrets: SecretRefs) -> ServerWorkload:
    s = srv.kind
    container = {
        "name": "vllm",
        "image": srv.image,
        "args": args(srv),
        "env": [
            *secret_env("HF_TOKEN", secrets.hf_token),
            *secret_env("VLLM_API_KEY", secrets.api_key),
            {"name": "HF_HOME", "value": f"{MODEL_CACHE_PATH}/hf"},
        ],
        "ports": server_ports(srv.kind),
        "volumeMounts": [shm_mount(), cache_mount()],
    }
    return ServerWorkload(containers=[container], http_port=s.http_port, health_path=s.health_path,
                          metrics_port=s.metrics_port, metrics_path=s.metrics_path)
