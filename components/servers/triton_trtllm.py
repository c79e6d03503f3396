"""Triton Inference Server with the TensorRT-LLM backend (NGC ``tritonserver:<yy.mm>-trtllm-python-py3``).

TensorRT-LLM does not load a Hugging Face checkpoint: it runs an *engine* compiled for one GPU
architecture, one tensor-parallel size and fixed limits (batch size, input and sequence length).
So the pod starts with an init container, on the same GPUs the server will use, that:

1. downloads the checkpoint (HF token from the Secret);
2. converts it to a TensorRT-LLM checkpoint sharded for TP (``convert_checkpoint.py``), or quantizes
   it (``quantization/quantize.py --qformat fp8 | int4_awq``) for fp8 / awq;
3. builds the engine (``trtllm-build``) with the spec's max batch / length / tokens;
4. writes the ``inflight_batcher_llm`` model repository (preprocessing, tensorrt_llm,
   postprocessing, ensemble) with ``tools/fill_template.py``.

The examples and templates come from the tensorrtllm_backend repository at the tag that matches the
image (``BACKEND_REF``: 25.01 ships TensorRT-LLM 0.17.0); the init container clones it, so the pod
needs egress to github.com and huggingface.co. Everything lands on the model-cache volume; a pod
restart on a fresh node rebuilds (20-40 min for a 7B model). The server then runs ``tritonserver``
(one MPI rank per GPU for TP > 1) on HTTP 8000, gRPC 8001 and metrics 8002.
"""

from __future__ import annotations

import shlex

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

BACKEND_REF = "v0.17.0"  # tensorrtllm_backend tag matching nvcr.io/nvidia/tritonserver:25.01-trtllm-python-py3
BACKEND_REPO = "https://github.com/triton-inference-server/tensorrtllm_backend.git"
REPO_DIR = f"{MODEL_CACHE_PATH}/model-repo"
ENGINE_DIR = f"{MODEL_CACHE_PATH}/engine"
HF_DIR = f"{MODEL_CACHE_PATH}/hf-checkpoint"
CKPT_DIR = f"{MODEL_CACHE_PATH}/trtllm-checkpoint"
SRC_DIR = f"{MODEL_CACHE_PATH}/tensorrtllm_backend"
# TensorRT-LLM example directory per model family (examples/<dir>/convert_checkpoint.py)
EXAMPLE_DIR = {"llama": "llama", "mistral": "llama", "mixtral": "llama", "gemma": "gemma", "falcon": "falcon",
               "qwen2": "qwen", "t5": "enc_dec"}
DTYPE = {"bf16": "bfloat16", "fp16": "float16"}
#: what the conversion needs from the Hugging Face repo: weights as safetensors, the configs and the
#: tokenizer. Llama-2 repos also ship every weight as .bin; fetching both overflows the cache volume.
DOWNLOAD_PATTERNS = ("*.safetensors", "*.json", "tokenizer.model")
#: API groups that need the key when the stack has one (health, metadata, config and statistics stay
#: open for the probes), on HTTP and on gRPC alike
RESTRICTED_APIS = "inference,model-repository,shared-memory,trace,logging"


def convert_command(srv: ServerArgs) -> list[str]:
    """Checkpoint conversion / quantization for the spec's precision and TP."""
    examples = f"{SRC_DIR}/tensorrt_llm/examples"
    dtype = DTYPE.get(srv.precision, "bfloat16")
    tp = str(srv.tensor_parallel)
    p = srv.precision
    if p in ("fp8", "awq"):
        cmd = ["python3", f"{examples}/quantization/quantize.py", "--model_dir", HF_DIR, "--dtype", dtype,
               "--qformat", "fp8" if p == "fp8" else "int4_awq", "--output_dir", CKPT_DIR, "--tp_size", tp]
        if srv.kv_cache_dtype in ("fp8", "int8"):
            cmd += ["--kv_cache_dtype", srv.kv_cache_dtype]
        return cmd
    cmd = ["python3", f"{examples}/{EXAMPLE_DIR.get(srv.model_family, 'llama')}/convert_checkpoint.py",
           "--model_dir", HF_DIR, "--output_dir", CKPT_DIR, "--dtype", dtype, "--tp_size", tp]
    if p == "int8":
        cmd += ["--use_weight_only", "--weight_only_precision", "int8"]
    elif p == "gptq":
        cmd += ["--use_weight_only", "--weight_only_precision", "int4_gptq", "--per_group"]
    if srv.kv_cache_dtype == "int8":
        cmd += ["--int8_kv_cache"]
    return cmd


def build_command(srv: ServerArgs) -> list[str]:
    """``trtllm-build`` with the spec's limits (the engine refuses anything beyond them at run time)."""
    cmd = ["trtllm-build", "--checkpoint_dir", CKPT_DIR, "--output_dir", ENGINE_DIR, "--gemm_plugin", "auto",
           "--max_batch_size", str(srv.max_batch), "--max_input_len", str(srv.max_model_len - 1),
           "--max_seq_len", str(srv.max_model_len), "--max_num_tokens", str(srv.max_batched_tokens)]
    if srv.chunked_prefill or srv.prefix_caching:  # chunked context and KV-cache reuse both need it
        cmd += ["--use_paged_context_fmha", "enable"]
    return cmd


def fill_template_commands(srv: ServerArgs) -> list[list[str]]:
    """Model-repository config for in-flight batching (values the templates name)."""
    tools = f"{SRC_DIR}/tools/fill_template.py"
    bs = str(srv.max_batch)
    tokenizer = f"tokenizer_dir:{HF_DIR},triton_max_batch_size:{bs},preprocessing_instance_count:1"
    llm = (f"triton_backend:tensorrtllm,triton_max_batch_size:{bs},decoupled_mode:true,max_beam_width:1,"
           f"engine_dir:{ENGINE_DIR},batching_strategy:inflight_fused_batching,max_queue_delay_microseconds:0,"
           f"kv_cache_free_gpu_mem_fraction:{srv.gpu_memory_utilization:g},"
           f"enable_kv_cache_reuse:{'true' if srv.prefix_caching else 'false'},"
           f"enable_chunked_context:{'true' if srv.chunked_prefill else 'false'},"
           "exclude_input_in_output:true,encoder_input_features_data_type:TYPE_FP16,logits_datatype:TYPE_FP32")
    post = f"tokenizer_dir:{HF_DIR},triton_max_batch_size:{bs},postprocessing_instance_count:1"
    ens = f"triton_max_batch_size:{bs},logits_datatype:TYPE_FP32"
    return [
        ["python3", tools, "-i", f"{REPO_DIR}/preprocessing/config.pbtxt", tokenizer],
        ["python3", tools, "-i", f"{REPO_DIR}/tensorrt_llm/config.pbtxt", llm],
        ["python3", tools, "-i", f"{REPO_DIR}/postprocessing/config.pbtxt", post],
        ["python3", tools, "-i", f"{REPO_DIR}/ensemble/config.pbtxt", ens],
        ["python3", tools, "-i", f"{REPO_DIR}/tensorrt_llm_bls/config.pbtxt",
         f"triton_max_batch_size:{bs},decoupled_mode:true,bls_instance_count:1,logits_datatype:TYPE_FP32"],
    ]


def build_script(srv: ServerArgs) -> str:
    """The init container's script: idempotent (skips the build when the engine is already there)."""
    q = shlex.join
    lines = [
        "set -euo pipefail",
        f"if [ -f {ENGINE_DIR}/config.json ] && [ -f {REPO_DIR}/tensorrt_llm/config.pbtxt ]; then "
        "echo 'engine and model repository present'; exit 0; fi",
        f"rm -rf {SRC_DIR} && git clone --depth 1 --branch {BACKEND_REF} --recurse-submodules --shallow-submodules "
        f"{BACKEND_REPO} {SRC_DIR}",
        q(["huggingface-cli", "download", srv.checkpoint, "--revision", srv.revision, "--local-dir", HF_DIR,
           "--include", *DOWNLOAD_PATTERNS]),
        q(convert_command(srv)),
        q(build_command(srv)),
        # the engine holds the weights now: free the cache volume of the intermediate copies (the
        # tokenizer files in HF_DIR stay, the pre/post-processing models read them)
        f"rm -rf {CKPT_DIR} && rm -f {HF_DIR}/*.safetensors",
        f"rm -rf {REPO_DIR} && cp -r {SRC_DIR}/all_models/inflight_batcher_llm {REPO_DIR}",
        *(q(c) for c in fill_template_commands(srv)),
    ]
    return "\n".join(lines)


def server_command(srv: ServerArgs, restricted: bool) -> list[str]:
    """``tritonserver`` (TP = 1) or one MPI rank per GPU (TP > 1), as launch_triton_server.py builds it."""
    s = srv.kind
    ports = [f"--http-port={s.http_port}", f"--grpc-port={s.grpc_port}", f"--metrics-port={s.metrics_port}"]
    if restricted:
        key = "authorization=Bearer $(API_KEY)"
        ports += [f"--http-restricted-api={RESTRICTED_APIS}:{key}",
                  f"--grpc-restricted-protocol={RESTRICTED_APIS}:{key}"]
    ports += list(srv.extra_args)  # the serving rank's extra flags (checked against the managed ones)
    if srv.tensor_parallel == 1:
        return ["tritonserver", f"--model-repository={REPO_DIR}", *ports]
    cmd = ["mpirun", "--allow-run-as-root"]
    for rank in range(srv.tensor_parallel):
        cmd += ["-n", "1", "tritonserver", f"--model-repository={REPO_DIR}", "--disable-auto-complete-config",
                f"--backend-config=python,shm-region-prefix-name=prefix{rank}_"]
        if rank == 0:
            cmd += ports
        else:
            cmd += ["--model-control-mode=explicit", "--load-model=tensorrt_llm", "--allow-http=false",
                    "--allow-grpc=false", "--allow-metrics=false"]
        if rank < srv.tensor_parallel - 1:
            cmd.append(":")
    return cmd


def workload(srv: ServerArgs, secrets: SecretRefs) -> ServerWorkload:
    s = srv.kind
    build = {
        "name": "engine-build",
        "image": srv.image,
        "command": ["bash", "-c", build_script(srv)],
        "env": [*secret_env("HF_TOKEN", secrets.hf_token), {"name": "HF_HOME", "value": f"{MODEL_CACHE_PATH}/hf"}],
        "volumeMounts": [shm_mount(), cache_mount()],
    }
    cmd = server_command(srv, restricted=secrets.api_key is not None)
    server = {
        "name": "triton",
        "image": srv.image,
        "command": cmd[:1],
        "args": cmd[1:],
        "env": [*secret_env("API_KEY", secrets.api_key)],
        "ports": server_ports(srv.kind),
        "volumeMounts": [shm_mount(), cache_mount()],
    }
    return ServerWorkload(containers=[server], init_containers=[build], http_port=s.http_port,
                          health_path=s.health_path, metrics_port=s.metrics_port, metrics_path=s.metrics_path,
                          liveness_path="/v2/health/live")
