"""Hugging Face Text Generation Inference (``text-generation-launcher``).

Flags from TGI's launcher reference (huggingface.co/docs/text-generation-inference/reference/launcher):
``--model-id``, ``--revision``, ``--num-shard``, ``--quantize`` (fp8, awq, gptq, eetq for 8-bit
weight-only), ``--kv-cache-dtype`` (fp8_e4m3fn), ``--max-input-tokens`` < ``--max-total-tokens``,
``--max-batch-prefill-tokens``, ``--max-batch-total-tokens`` (the KV-cache token budget),
``--max-batch-size`` (the running batch: the stack's ``maxBatch``) and
``--max-concurrent-requests`` (admission: above it TGI answers 429, so it is set well above the
batch; ``stacks/serving.py``). The launcher's own default port is 3000 and the image sets
``PORT=80``; ``--port`` pins the catalog's port so probes and the Service never depend on either.
The API key is read from ``API_KEY``, the HF token from ``HF_TOKEN``; ``PREFIX_CACHING`` switches
TGI 3's prefix cache. LoRA adapters (``stacks/lora.py``): ``--lora-adapters id,...`` (a local
adapter as ``name=path``; huggingface.co/docs/text-generation-inference/conceptual/lora).
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

QUANTIZE_FLAG = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "int8": "eetq"}
DTYPE_FLAG = {"bf16": "bfloat16", "fp16": "float16"}
KV_DTYPE_FLAG = {"fp8": "fp8_e4m3fn"}


def args(srv: ServerArgs) -> list[str]:
    """The exact launcher arguments for the srv."""
    lim = srv.tgi
    out = [
        "--model-id", srv.checkpoint,
        "--revision", srv.revision,
        "--hostname", "0.0.0.0",
        "--port", str(srv.kind.http_port),
        "--num-shard", str(srv.tensor_parallel),
        "--max-input-tokens", str(lim.max_input_tokens),
        "--max-total-tokens", str(lim.max_total_tokens),
        "--max-batch-prefill-tokens", str(lim.max_batch_prefill_tokens),
        "--max-batch-total-tokens", str(lim.max_batch_total_tokens),
        "--max-batch-size", str(lim.max_batch_size),
        "--max-concurrent-requests", str(lim.max_concurrent_requests),
    ]
    p = srv.precision
    if p in QUANTIZE_FLAG:
        out += ["--quantize", QUANTIZE_FLAG[p]]
    elif p in DTYPE_FLAG:
        out += ["--dtype", DTYPE_FLAG[p]]
    if srv.kv_cache_dtype in KV_DTYPE_FLAG:
        out += ["--kv-cache-dtype", KV_DTYPE_FLAG[srv.kv_cache_dtype]]
    if srv.lora is not None:  # resident adapters, each chosen per request by adapter_id
        out += ["--lora-adapters", ",".join(a.source if a.name == a.source else f"{a.name}={a.source}"
                                            for a in srv.lora.adapters)]
    return out + list(srv.extra_args)


def workload(srv: ServerArgs, secrets: SecretRefs) -> ServerWorkload:
    s = srv.kind
    container = {
        "name": "tgi",
        "image": srv.image,
        "command": ["text-generation-launcher"],
        "args": args(srv),
        "env": [
            *secret_env("HF_TOKEN", secrets.hf_token),
            *secret_env("API_KEY", secrets.api_key),
            {"name": "HF_HOME", "value": MODEL_CACHE_PATH},
            {"name": "PREFIX_CACHING", "value": "1" if srv.prefix_caching else "0"},
        ],
        "ports": server_ports(srv.kind),
        "volumeMounts": [shm_mount(), cache_mount()],
    }
    return ServerWorkload(containers=[container], http_port=s.http_port, health_path=s.health_path,
                          metrics_port=s.metrics_port, metrics_path=s.metrics_path)
