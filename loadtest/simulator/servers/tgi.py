"""Hugging Face TGI: /generate, /generate_stream (SSE, ``details``), the Messages API
/v1/chat/completions, /health, /info, /tokenize, and /metrics with TGI's router metric names.

TGI writes SSE as ``data:{json}`` (no space), one event per token; the last event carries
``generated_text`` and, with ``parameters.details``, ``details`` (finish_reason, generated_tokens,
input_length). Its metrics come from the Rust ``metrics`` crate: counters have no ``_total``
suffix and duration histograms use 35 buckets growing x1.5 from 0.1 ms (router/src/server.rs).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from stacks.serving import tgi_limits

from ...protocols import openai as oa
from ...protocols import tgi
from ..engine import Engine, Sequence, StepResult
from ..exposition import Histogram, Text
from ..runtime import Observer
from ..tokens import count_chat, count_text, pieces
from .base import Dialect, SimContext, TokenStream, bearer_ok, check_lengths, serve

TGI_VERSION = "3.3.4"
DURATION_BUCKETS = [0.0001 * 1.5**i for i in range(1, 36)]


def error(status: int, message: str, kind: str = "validation") -> web.Response:
    return web.json_response(tgi.error_body(message, kind), status=status)


class TgiMetrics(Observer):
    def __init__(self, ctx: SimContext):
        self.ctx = ctx
        L = ctx.spec.max_model_len
        self.duration = Histogram(DURATION_BUCKETS)
        self.queue = Histogram(DURATION_BUCKETS)
        self.inference = Histogram(DURATION_BUCKETS)
        self.per_token = Histogram(DURATION_BUCKETS)
        self.validation = Histogram(DURATION_BUCKETS)
        step = max(1, L // 20)
        self.input_len = Histogram([float(step * i) for i in range(1, 21)])
        self.generated = Histogram([float(step * i) for i in range(1, 21)])
        self.batch_duration = {"prefill": Histogram(DURATION_BUCKETS), "decode": Histogram(DURATION_BUCKETS)}
        self.batch_count = {"prefill": 0, "decode": 0}
        self.count = 0
        self.success = 0
        self.failure: dict[str, int] = {}

    def admitted(self, seq: Sequence) -> None:
        self.count += 1
        self.validation.observe(0.0002)
        self.input_len.observe(seq.prompt_len)

    def rejected(self, status: int, reason: str) -> None:
        self.count += 1
        kind = "overloaded" if status == 429 else "generation"
        self.failure[kind] = self.failure.get(kind, 0) + 1

    def step(self, res: StepResult, engine: Engine) -> None:
        method = "prefill" if res.prefill_tokens else "decode"
        self.batch_count[method] += 1
        self.batch_duration[method].observe(res.end - res.start)

    def finished(self, seq: Sequence, reason: str) -> None:
        if reason == "abort" or seq.finished_at is None:
            self.failure["incomplete_generation"] = self.failure.get("incomplete_generation", 0) + 1
            return
        self.success += 1
        sched = seq.scheduled_at if seq.scheduled_at is not None else seq.arrival
        self.duration.observe(seq.finished_at - seq.arrival)
        self.queue.observe(sched - seq.arrival)
        self.inference.observe(seq.finished_at - sched)
        self.per_token.observe((seq.finished_at - sched) / max(1, seq.generated))
        self.generated.observe(seq.generated)

    def render(self) -> str:
        e = self.ctx.runtime.engine
        t = Text()
        t.metric("tgi_request_count", "counter", "tgi_request_count", [({}, self.count)])
        t.metric("tgi_request_success", "counter", "tgi_request_success", [({}, self.success)])
        if self.failure:
            t.metric("tgi_request_failure", "counter", "tgi_request_failure",
                     [({"err": k}, v) for k, v in self.failure.items()])
        t.metric("tgi_queue_size", "gauge", "tgi_queue_size", [({}, e.num_waiting)])
        t.metric("tgi_batch_current_size", "gauge", "tgi_batch_current_size", [({}, e.num_running)])
        used_tokens = (e.kv_blocks - e.free_blocks) * e.block_tokens
        t.metric("tgi_batch_current_max_tokens", "gauge", "tgi_batch_current_max_tokens", [({}, used_tokens)])
        t.metric("tgi_batch_inference_count", "counter", "tgi_batch_inference_count",
                 [({"method": m}, n) for m, n in self.batch_count.items()])
        t.metric("tgi_batch_inference_success", "counter", "tgi_batch_inference_success",
                 [({"method": m}, n) for m, n in self.batch_count.items()])
        t.histogram("tgi_batch_inference_duration", "tgi_batch_inference_duration",
                    [({"method": m}, h) for m, h in self.batch_duration.items()])
        t.histogram("tgi_request_duration", "tgi_request_duration", [({}, self.duration)])
        t.histogram("tgi_request_validation_duration", "tgi_request_validation_duration", [({}, self.validation)])
        t.histogram("tgi_request_queue_duration", "tgi_request_queue_duration", [({}, self.queue)])
        t.histogram("tgi_request_inference_duration", "tgi_request_inference_duration", [({}, self.inference)])
        t.histogram("tgi_request_mean_time_per_token_duration", "tgi_request_mean_time_per_token_duration",
                    [({}, self.per_token)])
        t.histogram("tgi_request_input_length", "tgi_request_input_length", [({}, self.input_len)])
        t.histogram("tgi_request_generated_tokens", "tgi_request_generated_tokens", [({}, self.generated)])
        return t.render()


class GenerateStream(TokenStream):
    """/generate_stream events."""

    def __init__(self, ctx: SimContext, streaming: bool, details: bool):
        super().__init__(ctx, streaming)
        self.details = details

    def token_bytes(self, seq: Sequence, text: str) -> bytes:
        self.parts.append(text)
        if not seq.done:
            return tgi.stream_event(seq.generated, 1000 + seq.generated, text)
        details = tgi.stream_details("length", seq.generated, seq.prompt_len) if self.details else None
        return tgi.stream_event(seq.generated, 1000 + seq.generated, text, "".join(self.parts), details)


class OpenAIStream(TokenStream):
    """TGI's Messages and Completions APIs: OpenAI chunks in TGI's flavour (every chat delta names
    the role, a ``system_fingerprint``, and no separate role announcement)."""

    def __init__(self, ctx: SimContext, streaming: bool, chat: bool, include_usage: bool):
        super().__init__(ctx, streaming)
        self.encoder = oa.ChunkEncoder("", ctx.created, ctx.model, chat, fingerprint=FINGERPRINT,
                                       role_in_delta=True)
        self.include_usage = include_usage

    def token_bytes(self, seq: Sequence, text: str) -> bytes:
        return self.encoder.token(text, finish_reason="length" if seq.done else None)

    def final_bytes(self, seq: Sequence, reason: str) -> bytes:
        out = self.encoder.usage_chunk(seq.prompt_len, seq.generated) if self.include_usage else b""
        return out + oa.DONE


FINGERPRINT = f"{TGI_VERSION}-native"


def build(ctx: SimContext) -> Dialect:
    metrics = TgiMetrics(ctx)
    runtime = ctx.runtime

    async def body_of(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
        if not runtime.ready():
            return None, error(503, "Model is loading", "unhealthy")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, error(422, "Failed to deserialize the JSON body into the target type")
        if not isinstance(body, dict):
            return None, error(422, "Failed to deserialize the JSON body into the target type")
        status = runtime.faults.error_status()
        if status is not None:
            metrics.rejected(status, "fault")
            kind = "overloaded" if status == 429 else "generation"
            return None, error(status, "Model is overloaded" if status == 429 else f"Injected fault: {status}", kind)
        return body, None

    async def generate_body(request: web.Request, body: dict[str, Any], streaming: bool,
                            as_list: bool = False) -> web.StreamResponse:
        inputs = body.get("inputs")
        if not isinstance(inputs, str) or not inputs:
            return error(422, "`inputs` must be a non-empty string")
        params = body.get("parameters") or {}
        max_new = params.get("max_new_tokens") or tgi.DEFAULT_MAX_NEW_TOKENS
        if not isinstance(max_new, int) or max_new < 1:
            return error(422, "`max_new_tokens` must be strictly positive")
        temperature = params.get("temperature")
        if temperature is not None and (not isinstance(temperature, int | float) or temperature <= 0):
            return error(422, "`temperature` must be strictly positive")
        prompt_len = count_text(inputs)
        refusal = check_lengths(ctx, prompt_len, max_new)
        if refusal:
            return error(422, refusal)
        details = bool(params.get("details", False))
        stream = GenerateStream(ctx, streaming, details)
        # a resident LoRA adapter by its id; an unknown id is answered by the base model, as TGI does
        adapter = params.get("adapter_id") if params.get("adapter_id") in ctx.adapters else None

        def respond(seq: Sequence, reason: str) -> web.Response:
            out = tgi.generate_answer("".join(stream.parts), reason, seq.generated, seq.prompt_len, details)
            return web.json_response([out] if as_list else out,
                                     headers={"x-generated-tokens": str(seq.generated),
                                              "x-prompt-tokens": str(seq.prompt_len)})

        return await serve(request, ctx, stream, prompt_len, max_new, respond, adapter=adapter)

    admission = tgi_limits(ctx.spec).max_concurrent_requests
    in_flight = [0]

    def with_body(handle: Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]) -> Handler:
        """A generation route: TGI's admission limit (``--max-concurrent-requests``: above it, 429 at
        once), then the JSON body (or TGI's error for it), then ``handle``."""
        async def route(request: web.Request) -> web.StreamResponse:
            if in_flight[0] >= admission:
                metrics.rejected(429, "overloaded")
                return error(429, "Model is overloaded", "overloaded")
            in_flight[0] += 1
            try:
                body, err = await body_of(request)
                if err is not None:
                    return err
                assert body is not None
                return await handle(request, body)
            finally:
                in_flight[0] -= 1
        return route

    generate_handler = with_body(lambda request, body: generate_body(request, body, False))
    stream_handler = with_body(lambda request, body: generate_body(request, body, True))

    async def compat_body(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """``POST /``: ``/generate_stream`` when ``stream`` is true, else ``[/generate's answer]``."""
        streaming = bool(body.get("stream", False))
        return await generate_body(request, body, streaming, as_list=not streaming)

    compat = with_body(compat_body)

    async def openai_body(request: web.Request, body: dict[str, Any], chat: bool) -> web.StreamResponse:
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return error(422, "`messages` must be a non-empty list")
            prompt_len = count_chat(messages)
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
                prompt = prompt[0]
            if not isinstance(prompt, str) or not prompt:
                return error(422, "`prompt` must be a non-empty string")
            prompt_len = count_text(prompt)
        max_new = body.get("max_tokens") or body.get("max_completion_tokens") or tgi.DEFAULT_MAX_NEW_TOKENS
        refusal = check_lengths(ctx, prompt_len, max_new)
        if refusal:
            return error(422, refusal)
        streaming = bool(body.get("stream", False))
        include_usage = streaming and bool((body.get("stream_options") or {}).get("include_usage", False))
        stream = OpenAIStream(ctx, streaming, chat, include_usage)
        adapter = body.get("model") if body.get("model") in ctx.adapters else None  # TGI: `model` names the adapter

        def respond(seq: Sequence, reason: str) -> web.Response:
            text = "".join(stream.parts)
            choice: dict[str, Any] = ({"index": 0, "message": {"role": "assistant", "content": text},
                                       "logprobs": None, "finish_reason": reason} if chat else
                                      {"index": 0, "text": text, "logprobs": None, "finish_reason": reason})
            return web.json_response({
                "object": "chat.completion" if chat else "text_completion", "id": "", "created": ctx.created,
                "model": ctx.model, "system_fingerprint": FINGERPRINT, "choices": [choice],
                "usage": oa.usage(seq.prompt_len, seq.generated)})

        return await serve(request, ctx, stream, prompt_len, max_new, respond, adapter=adapter)

    chat = with_body(lambda request, body: openai_body(request, body, chat=True))
    completions = with_body(lambda request, body: openai_body(request, body, chat=False))

    async def invocations_body(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """SageMaker's route: the body's shape says which API it is for."""
        kind = tgi.invocation_kind(body)
        if kind == "generate":
            return await compat_body(request, body)
        return await openai_body(request, body, chat=kind == "chat")

    invocations = with_body(invocations_body)

    async def tokenize(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(422, "Failed to deserialize the JSON body into the target type")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, str):
            return error(422, "`inputs` must be a string")
        toks = [{"id": 1, "text": "<s>", "start": 0, "stop": 0}]
        toks += [{"id": 100 + i, "text": t, "start": a, "stop": b} for i, (t, a, b) in enumerate(pieces(inputs))]
        return web.json_response(toks)

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if runtime.ready() else 503)

    async def info(request: web.Request) -> web.Response:
        s = ctx.spec
        limits = tgi_limits(s)
        return web.json_response({
            "model_id": s.checkpoint, "model_sha": None, "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": limits.max_concurrent_requests, "max_best_of": 2, "max_stop_sequences": 4,
            "max_input_tokens": limits.max_input_tokens, "max_total_tokens": limits.max_total_tokens,
            "validation_workers": 2, "max_client_batch_size": 4, "router": "text-generation-router",
            "version": TGI_VERSION, "sha": None, "docker_label": None})

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8")

    def guard(request: web.Request, key: str) -> web.Response | None:
        if request.method == "GET" and request.path in tgi.OPEN_PATHS:
            return None
        return None if bearer_ok(request, key) else web.Response(status=401)

    hp = ctx.spec.server.health_path
    routes = [web.post(tgi.GENERATE_PATH, generate_handler), web.post(tgi.GENERATE_STREAM_PATH, stream_handler),
              web.post(tgi.COMPAT_PATH, compat), web.get(tgi.COMPAT_PATH, health),
              web.post(oa.CHAT_PATH, chat), web.post(oa.COMPLETIONS_PATH, completions),
              web.post(tgi.INVOCATIONS_PATH, invocations), web.get(hp, health), web.get("/ping", health),
              web.get(tgi.INFO_PATH, info), web.post(tgi.TOKENIZE_PATH, tokenize)]
    if hp != tgi.HEALTH_PATH:
        routes.append(web.get(tgi.HEALTH_PATH, health))
    separate = ctx.spec.server.metrics_port != ctx.spec.server.http_port
    if not separate:
        routes.append(web.get(ctx.spec.server.metrics_path, metrics_handler))
    return Dialect("tgi", routes, hp, metrics, metrics.render, ctx.spec.server.metrics_path, separate, guard)
