"""Triton Inference Server with the TensorRT-LLM backend: the generate extension
(/v2/models/<model>/generate and /generate_stream), health (/v2/health/ready, /v2/health/live),
model metadata, and Prometheus metrics on a separate port (8002 in the real server) with Triton's
``nv_inference_*`` / ``nv_gpu_*`` names and the backend's ``nv_trt_llm_*`` families.

Request fields are the TensorRT-LLM ensemble's inputs (``text_input``, ``max_tokens``, ``stream``);
each streamed event carries ``text_output`` (the new text only). Triton reports no token counts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from ...protocols import triton
from ..engine import Engine, Sequence, StepResult
from ..exposition import Text
from ..runtime import Observer
from ..tokens import count_text
from .base import Dialect, SimContext, TokenStream, bearer_ok, check_lengths, serve

TRITON_VERSION = "2.54.0"


def error(status: int, message: str) -> web.Response:
    return web.json_response(triton.error_body(message), status=status)


class TritonMetrics(Observer):
    def __init__(self, ctx: SimContext):
        self.ctx = ctx
        self.success = 0
        self.failure: dict[str, int] = {}
        self.exec_count = 0
        self.request_us = 0.0
        self.queue_us = 0.0
        self.infer_us = 0.0
        self.iterations = 0
        self.context_tokens = 0
        self.busy_s = 0.0

    def rejected(self, status: int, reason: str) -> None:
        key = "REJECTED" if status == 429 else "BACKEND"
        self.failure[key] = self.failure.get(key, 0) + 1

    def step(self, res: StepResult, engine: Engine) -> None:
        self.exec_count += 1
        self.iterations += 1
        self.context_tokens = res.prefill_tokens
        self.busy_s += res.end - res.start

    def finished(self, seq: Sequence, reason: str) -> None:
        if reason == "abort" or seq.finished_at is None:
            self.failure["CANCELED"] = self.failure.get("CANCELED", 0) + 1
            return
        self.success += 1
        sched = seq.scheduled_at if seq.scheduled_at is not None else seq.arrival
        self.request_us += (seq.finished_at - seq.arrival) * 1e6
        self.queue_us += (sched - seq.arrival) * 1e6
        self.infer_us += (seq.finished_at - sched) * 1e6

    def render(self) -> str:
        s, e = self.ctx.spec, self.ctx.runtime.engine
        m = {"model": self.ctx.model, "version": "1"}
        t = Text()
        t.metric("nv_inference_request_success", "counter",
                 "Number of successful inference requests, all batch sizes", [(m, self.success)])
        t.metric("nv_inference_request_failure", "counter",
                 "Number of failed inference requests, all batch sizes",
                 [({**m, "reason": r}, n) for r, n in (self.failure or {"REJECTED": 0}).items()])
        t.metric("nv_inference_count", "counter", "Number of inferences performed (does not include cached requests)",
                 [(m, self.success)])
        t.metric("nv_inference_exec_count", "counter",
                 "Number of model executions performed (does not include cached requests)", [(m, self.exec_count)])
        t.metric("nv_inference_request_duration_us", "counter",
                 "Cumulative inference request duration in microseconds (includes cached requests)",
                 [(m, self.request_us)])
        t.metric("nv_inference_queue_duration_us", "counter",
                 "Cumulative inference queuing duration in microseconds (includes cached requests)",
                 [(m, self.queue_us)])
        t.metric("nv_inference_compute_infer_duration_us", "counter",
                 "Cumulative compute inference duration in microseconds (does not include cached requests)",
                 [(m, self.infer_us)])
        t.metric("nv_inference_pending_request_count", "gauge",
                 "Instantaneous number of pending requests awaiting execution per-model.", [(m, e.num_waiting)])
        uptime = max(self.ctx.runtime.now(), 1e-9)
        util = min(1.0, self.busy_s / uptime)
        per_gpu_used = (s.sizing.weight_bytes + s.sizing.kv_bytes + s.sizing.activation_bytes) / s.tensor_parallel
        gpus = [{"gpu_uuid": f"GPU-sim-{i:02d}"} for i in range(s.tensor_parallel)]
        t.metric("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)", [(g, util) for g in gpus])
        t.metric("nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes",
                 [(g, s.machine.chip.usable_bytes) for g in gpus])
        t.metric("nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes", [(g, per_gpu_used) for g in gpus])
        mt = {"model": "tensorrt_llm", "version": "1"}
        t.metric("nv_trt_llm_request_metrics", "gauge", "TRT LLM request metrics",
                 [({**mt, "request_type": "active"}, e.num_running), ({**mt, "request_type": "max"}, s.max_batch),
                  ({**mt, "request_type": "scheduled"}, e.num_running),
                  ({**mt, "request_type": "context"}, 1 if self.context_tokens else 0),
                  ({**mt, "request_type": "waiting"}, e.num_waiting)])
        used = e.kv_blocks - e.free_blocks
        t.metric("nv_trt_llm_kv_cache_block_metrics", "gauge", "TRT LLM KV cache block metrics",
                 [({**mt, "kv_cache_block_type": "max"}, e.kv_blocks),
                  ({**mt, "kv_cache_block_type": "free"}, e.free_blocks),
                  ({**mt, "kv_cache_block_type": "used"}, used),
                  ({**mt, "kv_cache_block_type": "tokens_per"}, e.block_tokens),
                  ({**mt, "kv_cache_block_type": "fraction"}, e.kv_usage)])
        t.metric("nv_trt_llm_inflight_batcher_metrics", "gauge", "TRT LLM inflight_batcher-specific metrics",
                 [({**mt, "inflight_batcher_specific_metric": "total_context_tokens"}, self.context_tokens),
                  ({**mt, "inflight_batcher_specific_metric": "generation_requests"}, e.num_running),
                  ({**mt, "inflight_batcher_specific_metric": "paused_requests"}, 0)])
        t.metric("nv_trt_llm_general_metrics", "gauge", "General TRT LLM metrics",
                 [({**mt, "general_type": "iteration_counter"}, self.iterations),
                  ({**mt, "general_type": "timestamp"}, int(time.time() * 1e6))])
        return t.render()


class GenerateStream(TokenStream):
    """``stream: true``: one event per token. ``stream: false`` on ``generate_stream``: the text is
    collected and sent as one final event when the sequence ends."""

    def __init__(self, ctx: SimContext, streaming: bool, single_event: bool = False):
        super().__init__(ctx, streaming)
        self.encoder = triton.EventEncoder(ctx.model)
        self.single_event = single_event

    def token_bytes(self, seq: Sequence, text: str) -> bytes:
        if not self.single_event:
            return self.encoder.event(text)
        self.parts.append(text)
        return self.encoder.event("".join(self.parts)) if seq.done else b""


def build(ctx: SimContext) -> Dialect:
    metrics = TritonMetrics(ctx)
    runtime = ctx.runtime
    # a Triton stack serves the model repository's `ensemble` (its served name, in its outputs too)
    names = {ctx.model}

    def unknown(model: str) -> web.Response:
        return error(400, f"Request for unknown model: '{model}' is not found")

    async def generate(request: web.Request, streaming_route: bool) -> web.StreamResponse:
        if not runtime.ready():
            return error(503, "Server is not ready")
        model = request.match_info["model"]
        if model not in names:
            return unknown(model)
        try:
            body: Any = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "failed to parse the request JSON buffer")
        if not isinstance(body, dict) or not isinstance(triton.request_field(body, "text_input"), str):
            return error(400, "input 'text_input' is required")
        status = runtime.faults.error_status()
        if status is not None:
            metrics.rejected(status, "fault")
            return error(status, f"Injected fault: {status}")
        max_new = triton.request_field(body, "max_tokens", 16)
        if not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1:
            return error(400, "input 'max_tokens' must be a positive integer")
        prompt_len = count_text(triton.request_field(body, "text_input"))
        refusal = check_lengths(ctx, prompt_len, max_new)
        if refusal:
            return error(400, refusal)
        wants_stream = bool(triton.request_field(body, "stream", streaming_route))
        stream = GenerateStream(ctx, streaming_route, single_event=streaming_route and not wants_stream)

        def respond(seq: Sequence, reason: str) -> web.Response:
            return web.json_response(stream.encoder.answer("".join(stream.parts)))

        return await serve(request, ctx, stream, prompt_len, max_new, respond)

    async def generate_stream(request: web.Request) -> web.StreamResponse:
        return await generate(request, True)

    async def generate_once(request: web.Request) -> web.StreamResponse:
        return await generate(request, False)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(status=200 if runtime.ready() else 400)

    async def live(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def model_ready(request: web.Request) -> web.Response:
        ok = runtime.ready() and request.match_info["model"] in names
        return web.Response(status=200 if ok else 400)

    async def model_meta(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        return web.json_response(triton.model_metadata(model)) if model in names else unknown(model)

    async def model_config(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in names:
            return unknown(model)
        return web.json_response(triton.model_config(model, ctx.spec.max_batch))

    def stats_of(model: str) -> dict[str, Any]:
        m = metrics
        return triton.model_stats(model, m.success, int(m.request_us * 1e3), sum(m.failure.values()),
                                  int(m.queue_us * 1e3), int(m.infer_us * 1e3), m.exec_count)

    async def model_stats(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        return web.json_response(stats_of(model)) if model in names else unknown(model)

    async def all_stats(request: web.Request) -> web.Response:
        return web.json_response(stats_of(triton.ENSEMBLE))

    async def repository_index(request: web.Request) -> web.Response:
        state = "READY" if runtime.ready() else "LOADING"
        return web.json_response([{"name": triton.ENSEMBLE, "version": "1", "state": state}])

    async def server_meta(request: web.Request) -> web.Response:
        return web.json_response({"name": "triton", "version": TRITON_VERSION,
                                  "extensions": ["classification", "sequence", "model_repository",
                                                 "model_repository(unload_dependents)", "schedule_policy",
                                                 "model_configuration", "system_shared_memory",
                                                 "cuda_shared_memory", "binary_tensor_data", "parameters",
                                                 "statistics", "trace", "logging", "generate"]})

    def guard(request: web.Request, key: str) -> web.Response | None:
        """``--http-restricted-api=inference,model-repository:authorization=Bearer <key>``: the
        inference and repository groups need the exact header; health, metadata, config and
        statistics stay open."""
        path = request.path
        restricted = path.startswith("/v2/repository") or (
            request.method == "POST" and path.startswith("/v2/models/")
            and path.rsplit("/", 1)[-1] in ("generate", "generate_stream", "infer"))
        if restricted and not bearer_ok(request, key):
            return web.json_response(triton.restricted_error("authorization"), status=403)
        return None

    hp = ctx.spec.server.health_path
    m = "/v2/models/{model:[^/]+}"
    routes = [
        web.post(m + "/versions/{version}/generate_stream", generate_stream),
        web.post(m + "/versions/{version}/generate", generate_once),
        web.post(m + "/generate_stream", generate_stream),
        web.post(m + "/generate", generate_once),
        web.get(hp, ready),
        web.get(triton.HEALTH_LIVE_PATH, live),
        web.get("/v2/models/stats", all_stats),
        web.get(m + "/ready", model_ready),
        web.get(m + "/versions/{version}/ready", model_ready),
        web.get(m + "/config", model_config),
        web.get(m + "/versions/{version}/config", model_config),
        web.get(m + "/stats", model_stats),
        web.get(m + "/versions/{version}/stats", model_stats),
        web.get(m, model_meta),
        web.get(m + "/versions/{version}", model_meta),
        web.post(triton.REPOSITORY_INDEX_PATH, repository_index),
        web.get(triton.SERVER_METADATA_PATH, server_meta),
    ]
    if hp != triton.HEALTH_READY_PATH:
        routes.append(web.get(triton.HEALTH_READY_PATH, ready))
    separate = ctx.spec.server.metrics_port != ctx.spec.server.http_port
    return Dialect("triton", routes, hp, metrics, metrics.render, ctx.spec.server.metrics_path, separate, guard)
