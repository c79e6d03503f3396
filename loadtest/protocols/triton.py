"""Triton Inference Server's protocol with the TensorRT-LLM backend: the generate extension, the KServe
v2 health/metadata routes, model config, statistics, the repository index, and Triton's metric names.

One home for the wire (Triton's docs/protocol/extension_generate.md and http_server.cc are the
reference): the load tester's parser, the simulated Triton and the test fixtures use this module.

``POST /v2/models/<model>/generate_stream`` takes the ensemble's inputs as top-level keys
(``text_input``, ``max_tokens``, ``stream``, ...) or, as the generate extension documents, inside
``"parameters": {...}``; a top-level key wins. ``min_length`` = the requested length makes
TensorRT-LLM ignore EOS, so lengths are exact. Each event is one decoding step's response,
``{"model_name", "model_version", "text_output", ...}``, i.e. one token; with ``"stream": false`` the
stream carries one final event with the whole text. Errors arrive as ``{"error": "..."}``. The
protocol has no end marker and no token count: the stream ends when the body ends, and tokens are
counted as events (``tokenSource: chunks``). With ``min_length`` sent, a clean end with fewer tokens
than requested is recorded as ``truncated``. The TensorRT-LLM model repository serves the model as
``ensemble`` (a name with ``/`` cannot be routed). Metrics are on a separate port (8002).

``--http-restricted-api=<apis>:<header>=<value>`` guards API groups: a request to a restricted
group without the exact header value gets 403 and Triton's error JSON.
"""

from __future__ import annotations

import json
from typing import Any

from .base import Dialect, Prompt, ProtocolError, StreamParser, metrics_url_on_port
from .framing import sse_event

ENSEMBLE = "ensemble"
HEALTH_READY_PATH = "/v2/health/ready"
HEALTH_LIVE_PATH = "/v2/health/live"
SERVER_METADATA_PATH = "/v2"
REPOSITORY_INDEX_PATH = "/v2/repository/index"
METRICS_PORT = 8002
METRICS_PATH = "/metrics"
#: the API groups the stacks restrict (``--http-restricted-api``); the simulator serves the first two
RESTRICTED_GROUPS = ("inference", "model-repository", "shared-memory", "trace", "logging")

METRIC_ROLES: dict[str, tuple[str, ...]] = {
    "running": ('nv_trt_llm_request_metrics{request_type="active"}',),
    "waiting": ('nv_trt_llm_request_metrics{request_type="waiting"}', "nv_inference_pending_request_count"),
    "kv_usage": ('nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}',),
    "preemptions": (),
}


def generate_path(model: str, stream: bool = True) -> str:
    return f"/v2/models/{model}/generate_stream" if stream else f"/v2/models/{model}/generate"


def error_body(message: str) -> dict[str, Any]:
    return {"error": message}


def restricted_error(header: str) -> dict[str, Any]:
    return error_body(f"This API is restricted, expecting header '{header}'")


def request_field(body: dict[str, Any], name: str, default: Any = None) -> Any:
    """An input as the generate extension accepts it: top-level, else under ``parameters``."""
    if name in body:
        return body[name]
    params = body.get("parameters")
    if isinstance(params, dict) and name in params:
        return params[name]
    return default


class EventEncoder:
    """Builds one response's events; the fixed head is encoded once."""

    def __init__(self, model: str, version: str = "1"):
        head = {"model_name": model, "model_version": version, "sequence_end": False, "sequence_id": 0,
                "sequence_start": False}
        self.head = head
        self._pre = json.dumps(head, separators=(",", ":")).encode()[:-1] + b',"text_output":'

    def answer(self, text: str) -> dict[str, Any]:
        """The non-streaming ``/generate`` answer (and the single event of ``stream: false``)."""
        return dict(self.head, text_output=text)

    def event(self, text: str) -> bytes:
        return sse_event(self._pre + json.dumps(text).encode() + b"}")


def error_event(message: str) -> bytes:
    return sse_event(json.dumps(error_body(message)).encode())


def model_metadata(model: str, version: str = "1") -> dict[str, Any]:
    return {"name": model, "versions": [version], "platform": "ensemble",
            "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [-1, 1]},
                       {"name": "max_tokens", "datatype": "INT32", "shape": [-1, 1]}],
            "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [-1, -1]}]}


def model_config(model: str, max_batch_size: int) -> dict[str, Any]:
    """The ensemble's config as ``GET /v2/models/<m>/config`` returns it (the fields clients read)."""
    def tensor(name: str, dtype: str, dims: list[int], optional: bool = False) -> dict[str, Any]:
        return {"name": name, "data_type": dtype, "format": "FORMAT_NONE", "dims": dims, "is_shape_tensor": False,
                "allow_ragged_batch": False, "optional": optional}

    return {"name": model, "platform": "ensemble", "backend": "", "version_policy": {"latest": {"num_versions": 1}},
            "max_batch_size": max_batch_size,
            "input": [tensor("text_input", "TYPE_STRING", [1]), tensor("max_tokens", "TYPE_INT32", [1]),
                      tensor("stream", "TYPE_BOOL", [1], True), tensor("min_length", "TYPE_INT32", [1], True),
                      tensor("temperature", "TYPE_FP32", [1], True), tensor("top_k", "TYPE_INT32", [1], True),
                      tensor("top_p", "TYPE_FP32", [1], True), tensor("random_seed", "TYPE_UINT64", [1], True)],
            "output": [{"name": "text_output", "data_type": "TYPE_STRING", "dims": [-1], "label_filename": "",
                        "is_shape_tensor": False}],
            "model_transaction_policy": {"decoupled": True}}


def model_stats(model: str, success: int, success_ns: int, fail: int, queue_ns: int, infer_ns: int,
                executions: int, version: str = "1") -> dict[str, Any]:
    """``GET /v2/models/<m>/stats``: cumulative counts and durations (nanoseconds)."""
    def dur(count: int, ns: int) -> dict[str, int]:
        return {"count": count, "ns": ns}

    return {"model_stats": [{"name": model, "version": version, "last_inference": 0, "inference_count": success,
                             "execution_count": executions,
                             "inference_stats": {"success": dur(success, success_ns), "fail": dur(fail, 0),
                                                 "queue": dur(success, queue_ns), "compute_input": dur(success, 0),
                                                 "compute_infer": dur(success, infer_ns),
                                                 "compute_output": dur(success, 0), "cache_hit": dur(0, 0),
                                                 "cache_miss": dur(0, 0)},
                             "response_stats": {}, "batch_stats": [], "memory_usage": []}]}


# -- client ----------------------------------------------------------------------------------------
class TritonParser(StreamParser):
    def __init__(self, prompt: Prompt, exact: bool):
        super().__init__(prompt)
        self.exact = exact

    def feed(self, data: str) -> int:
        obj = self.load(data)
        if not isinstance(obj, dict):
            raise ProtocolError("invalid_json", f"expected an object, got {data[:120]}")
        if obj.get("error") is not None:
            raise ProtocolError("server_error", str(obj["error"])[:300])
        if "text_output" not in obj:
            raise ProtocolError("invalid_json", f"no text_output in {data[:120]}")
        self.chunk_tokens += 1
        return 1

    def finish(self) -> None:
        self.done = True
        if self.exact and self.chunk_tokens < self.prompt.output_len:
            raise ProtocolError("truncated", f"{self.chunk_tokens} of {self.prompt.output_len} tokens "
                                "before the body ended")


class TritonDialect(Dialect):
    name = "triton"
    health_path = HEALTH_READY_PATH

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "text_input": prompt.text,
            "max_tokens": prompt.output_len,
            "stream": True,
            "bad_words": "",
            "stop_words": "",
        }
        body.update(self.sampling.as_dict(seed_key="random_seed"))
        if self.ignore_eos:
            body["min_length"] = prompt.output_len
        return generate_path(self.model), self.with_extra(body)

    def parser(self, prompt: Prompt) -> StreamParser:
        return TritonParser(prompt, exact=self.ignore_eos)

    def default_metrics_url(self, base_url: str) -> str:
        return metrics_url_on_port(base_url, METRICS_PORT, METRICS_PATH)
