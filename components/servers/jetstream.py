"""JetStream on TPU with the MaxText engine (``maxengine-server``) and the HTTP front end (``jetstream-http``).

MaxText does not read a Hugging Face checkpoint either: a Job (``inference-checkpoint`` image,
``checkpoint_entrypoint.sh``) downloads the weights, converts them to a MaxText checkpoint and
"unscans" it for serving, writing to a Cloud Storage bucket; the server then loads
``load_parameters_path`` from that bucket. Gemma comes from Kaggle (``-m=google/gemma/maxtext/<v>``,
kaggle.json mounted at /kaggle); Llama from Hugging Face (``-h=True``, token file at
/huggingface/HUGGINGFACE_TOKEN). Both containers of the server pod follow the GKE tutorial
"Serve Gemma using TPUs on GKE with JetStream": the engine listens for gRPC on 9000 and exports
Prometheus metrics on ``prometheus_port`` (9100); jetstream-http serves ``POST /generate`` and
``GET /healthcheck`` on 8000. The bucket is reached through Workload Identity (the pod's KSA).
"""

from __future__ import annotations

from typing import Any

from .base import (
    GRPC_PORT_NAME,
    HTTP_PORT_NAME,
    METRICS_PORT_NAME,
    PrepJob,
    SecretRefs,
    ServerArgs,
    ServerWorkload,
    container_port,
)

KAGGLE_SECRET_KEY = "kaggle.json"
HF_TOKEN_FILE_KEY = "HUGGINGFACE_TOKEN"


def server_args(srv: ServerArgs, bucket: Any) -> list[Any]:
    """``maxengine-server`` key=value arguments; ``bucket`` may be a Pulumi Output (then the list holds one)."""
    import pulumi  # only when a program runs: keeps the flag logic importable without Pulumi

    m = srv.maxtext
    assert m is not None  # resolve() refuses a JetStream stack without a recipe
    chips = srv.chips_per_node
    per_device_batch = max(1, srv.max_batch // chips)
    quantized = srv.precision == "int8"
    args: list[Any] = [
        f"model_name={m.model_name}",
        f"tokenizer_path={m.tokenizer}",
        f"per_device_batch_size={per_device_batch}",
        f"max_prefill_predict_length={min(srv.max_batched_tokens, srv.max_model_len // 2)}",
        f"max_target_length={srv.max_model_len}",
        "async_checkpointing=false",
        "ici_fsdp_parallelism=1",
        "ici_autoregressive_parallelism=-1",
        f"ici_tensor_parallelism={srv.tensor_parallel if srv.tensor_parallel > 1 else 1}",
        "scan_layers=false",
        "weight_dtype=bfloat16",
        pulumi.Output.concat("load_parameters_path=gs://", bucket, "/", m.params_path),
        f"prometheus_port={srv.kind.metrics_port}",
    ]
    if quantized:
        args += ["quantization=int8", "checkpoint_is_quantized=false"]
    if srv.kv_cache_dtype == "int8":
        args += ["quantize_kvcache=true"]
    return args + list(srv.extra_args)


def converter_args(srv: ServerArgs, bucket: Any) -> list[Any]:
    import pulumi

    m = srv.maxtext
    assert m is not None  # resolve() refuses a JetStream stack without a recipe
    args: list[Any] = [pulumi.Output.concat("-b=", bucket), "-s=jetstream-maxtext", f"-m={m.path}"]
    if m.source == "huggingface":
        args += ["-n=" + srv.model_alias.rsplit("-", 1)[0], "-h=True",
                 pulumi.Output.concat("-o=gs://", bucket, "/", srv.model_alias)]
    return args


def workload(srv: ServerArgs, secrets: SecretRefs, *, bucket: Any, kaggle: tuple[str, str] | None) -> ServerWorkload:
    s = srv.kind
    m = srv.maxtext
    assert m is not None  # resolve() refuses a JetStream stack without a recipe
    assert s.grpc_port is not None
    engine = {
        "name": "maxengine-server",
        "image": srv.image,
        "args": server_args(srv, bucket),
        "ports": [container_port(GRPC_PORT_NAME, s.grpc_port), container_port(METRICS_PORT_NAME, s.metrics_port)],
    }
    http = {
        "name": "jetstream-http",
        "image": s.extra_images["http_image"],
        "ports": [container_port(HTTP_PORT_NAME, s.http_port)],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    }
    volumes, mounts = [], []
    if m.source == "kaggle" and kaggle is not None:
        volumes.append({"name": "kaggle", "secret": {"secretName": kaggle[0], "defaultMode": 0o400,
                                                     "items": [{"key": kaggle[1], "path": "kaggle.json"}]}})
        mounts.append({"name": "kaggle", "mountPath": "/kaggle", "readOnly": True})
    if m.source == "huggingface" and secrets.hf_token is not None:
        volumes.append({"name": "hf-token", "secret": {"secretName": secrets.hf_token[0], "defaultMode": 0o400,
                                                       "items": [{"key": secrets.hf_token[1],
                                                                  "path": HF_TOKEN_FILE_KEY}]}})
        mounts.append({"name": "hf-token", "mountPath": "/huggingface", "readOnly": True})
    convert = PrepJob(
        name="checkpoint-converter",
        pod_spec={
            "restartPolicy": "Never",
            "containers": [{"name": "inference-checkpoint", "image": s.extra_images["checkpoint_image"],
                            "args": converter_args(srv, bucket), "volumeMounts": mounts}],
            "volumes": volumes,
        },
        timeout_s=srv.startup_budget_s + 1800,
    )
    return ServerWorkload(containers=[engine, http], http_port=s.http_port, health_path=s.health_path,
                          metrics_port=s.metrics_port, metrics_path=s.metrics_path, jobs=[convert],
                          needs_storage_bucket=True, probe_container=1)
