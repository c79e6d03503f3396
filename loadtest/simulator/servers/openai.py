"""vLLM's OpenAI-compatible server: /v1/completions, /v1/chat/completions (SSE), /v1/models,
/health, /tokenize, /version, and /metrics with vLLM's V1 metric names.

Wire formats follow vLLM's serving_completion.py / serving_chat.py: one SSE event per token,
``data: [DONE]`` at the end, ``stream_options.include_usage`` adds a final ``choices: []`` event with
usage, the chat stream's role delta arrives with the first token (vLLM sends it on the first
engine output), ``ignore_eos`` and ``max_tokens`` (default 16 for completions) as vLLM applies them.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from ...protocols import openai as oa
from ..engine import Engine, Sequence, StepResult
from ..exposition import Histogram, Text
from ..runtime import Observer
from ..tokens import count_chat, count_prompt, count_text, natural_length
from .base import Choices, Dialect, SimContext, TokenStream, bearer_ok, check_lengths, request_id, serve

VLLM_VERSION = "0.34.0"  # the catalog's pinned image
_natural_keys = itertools.count()
# vLLM V1 histogram buckets (vllm/v1/metrics/loggers.py)
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0]
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
               80.0]
LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
                   480.0, 960.0, 1920.0, 7680.0]


def _token_buckets(max_model_len: int) -> list[float]:
    """vLLM's build_1_2_5_buckets(max_model_len)."""
    out: list[int] = []
    mantissa, exp = [1, 2, 5], 0
    while True:
        for m in mantissa:
            v = m * 10**exp
            if v > max_model_len:
                return [float(x) for x in out]
            out.append(v)
        exp += 1


def error(status: int, message: str, kind: str = "BadRequestError", param: str | None = None) -> web.Response:
    return web.json_response(oa.error_body(status, message, kind, param), status=status)


_FAULT_KIND = {408: "RequestTimeout", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
               503: "ServiceUnavailable", 504: "GatewayTimeout"}


class VllmMetrics(Observer):
    def __init__(self, ctx: SimContext):
        self.ctx = ctx
        L = ctx.spec.max_model_len
        self.labels = {"engine": "0", "model_name": ctx.model}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.tpot = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(LATENCY_BUCKETS)
        self.queue = Histogram(LATENCY_BUCKETS)
        self.prefill = Histogram(LATENCY_BUCKETS)
        self.decode = Histogram(LATENCY_BUCKETS)
        self.inference = Histogram(LATENCY_BUCKETS)
        tb = _token_buckets(L)
        self.prompt_hist = Histogram(tb)
        self.gen_hist = Histogram(tb)
        self.iteration = Histogram([1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384])
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.preemptions = 0

    def step(self, res: StepResult, engine: Engine) -> None:
        self.iteration.observe(res.new_tokens)
        self.generation_tokens += len(res.emitted)
        self.preemptions += res.preempted
        for seq in res.emitted:
            t = seq.last_token_at or res.end
            if seq.prev_token_at is None:
                self.ttft.observe(t - seq.arrival)
                self.prompt_tokens += seq.prompt_len
            else:
                self.itl.observe(t - seq.prev_token_at)

    def finished(self, seq: Sequence, reason: str) -> None:
        self.success[reason if reason in self.success else "abort"] += 1
        if reason == "abort" or seq.finished_at is None:
            return
        first = seq.first_token_at or seq.finished_at
        sched = seq.scheduled_at if seq.scheduled_at is not None else seq.arrival
        self.e2e.observe(seq.finished_at - seq.arrival)
        self.queue.observe(sched - seq.arrival)
        self.prefill.observe(first - sched)
        self.decode.observe(seq.finished_at - first)
        self.inference.observe(seq.finished_at - sched)
        if seq.generated > 1:
            self.tpot.observe((seq.finished_at - first) / (seq.generated - 1))
        self.prompt_hist.observe(seq.prompt_len)
        self.gen_hist.observe(seq.generated)

    def render(self) -> str:
        e = self.ctx.runtime.engine
        lb = self.labels
        t = Text()
        s = self.ctx.spec
        cache = {"block_size": str(e.block_tokens), "cache_dtype": s.kv_cache_dtype,
                 "enable_prefix_caching": str(s.prefix_caching), "engine": "0",
                 "gpu_memory_utilization": str(s.gpu_memory_utilization), "num_gpu_blocks": str(e.kv_blocks)}
        t.metric("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig", [(cache, 1.0)])
        t.metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
                 [(lb, e.num_running)])
        t.metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
                 [(lb, e.num_waiting)])
        t.metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
                 [(lb, e.kv_usage)])
        t.metric("vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.",
                 [(lb, self.preemptions)])
        t.metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
                 [(lb, self.prompt_tokens)])
        t.metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
                 [(lb, self.generation_tokens)])
        t.metric("vllm:request_success_total", "counter", "Count of successfully processed requests.",
                 [({**lb, "finished_reason": r}, n) for r, n in self.success.items()])
        t.histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", [(lb, self.prompt_hist)])
        t.histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", [(lb, self.gen_hist)])
        t.histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
                    [(lb, self.iteration)])
        t.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                    [(lb, self.ttft)])
        t.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                    [(lb, self.itl)])
        t.histogram("vllm:request_time_per_output_token_seconds",
                    "Histogram of time_per_output_token_seconds per request.", [(lb, self.tpot)])
        t.histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                    [(lb, self.e2e)])
        t.histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
                    [(lb, self.queue)])
        t.histogram("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.",
                    [(lb, self.inference)])
        t.histogram("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.",
                    [(lb, self.prefill)])
        t.histogram("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.",
                    [(lb, self.decode)])
        return t.render()


class CompletionStream(TokenStream):
    """One choice's chunks. While the client has not drained the previous chunk (the connection's
    write buffer is not empty) tokens are held and sent together in the next chunk, as vLLM's
    output collector merges the outputs a slow reader has not consumed yet."""

    def __init__(self, ctx: SimContext, streaming: bool, encoder: oa.ChunkEncoder, index: int, choices: Choices,
                 include_usage: bool, continuous_usage: bool = False, finish_reason: str = "length"):
        super().__init__(ctx, streaming, index, choices)
        self.encoder = encoder
        self.include_usage = include_usage
        self.continuous_usage = include_usage and continuous_usage
        self.finish_reason = finish_reason
        self._held: list[str] = []
        self._held_ids: list[int] = []

    def _backlogged(self) -> bool:
        t = self.transport
        return t is not None and t.get_write_buffer_size() > 0

    def prepare(self, seq: Sequence) -> bytes | None:
        if self.streaming and not seq.done and self._backlogged():
            self._held.append(self.text(seq))
            self._held_ids.append(token_id(seq))
            return None
        return super().prepare(seq)

    def token_bytes(self, seq: Sequence, text: str) -> bytes:
        enc = self.encoder
        out = enc.role(self.index) if enc.chat and seq.generated - len(self._held) == 1 else b""
        ids = [*self._held_ids, token_id(seq)]
        if self._held:
            text = "".join(self._held) + text
            self._held, self._held_ids = [], []
        usage_now = oa.usage(seq.prompt_len, seq.generated) if self.continuous_usage else None
        return out + enc.token(text, self.index, ids, self.finish_reason if seq.done else None, usage_now)

    def final_bytes(self, seq: Sequence, reason: str) -> bytes:
        out = b""
        if self.include_usage:
            out += self.encoder.usage_chunk(seq.prompt_len, sum(s.generated for s in self.choices.seqs))
        return out + oa.DONE


def token_id(seq: Sequence, k: int | None = None) -> int:
    """A stable stand-in id for the sequence's k-th token (default: its latest); the simulator has
    no vocabulary, only a deterministic id per (request, position)."""
    return 100 + (seq.rid * 7919 + (seq.generated if k is None else k)) % 31900


def build(ctx: SimContext) -> Dialect:
    metrics = VllmMetrics(ctx)
    runtime = ctx.runtime

    async def parse(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
        if not runtime.ready():
            return None, error(503, "The server is starting up (loading weights).", "ServiceUnavailable")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return None, error(400, "The request body must be a JSON object.")
        model = body.get("model")
        if model is not None and model != ctx.model and model not in ctx.adapters:
            return None, error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        status = runtime.faults.error_status()
        if status is not None:
            metrics.rejected(status, "fault")
            return None, error(status, f"Injected fault: {status}", _FAULT_KIND.get(status, "InternalServerError"))
        return body, None

    def max_tokens(body: dict[str, Any], default: int) -> int | web.Response:
        value = body.get("max_completion_tokens", body.get("max_tokens"))
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return error(400, f"max_tokens must be at least 1, got {value!r}.", param="max_tokens")
        return value

    async def generate(request: web.Request, chat: bool) -> web.StreamResponse:
        body, err = await parse(request)
        if err is not None:
            return err
        assert body is not None
        n = body.get("n", 1)
        if n is None:
            n = 1
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            return error(400, f"n must be at least 1, got {n!r}.", param="n")
        if body.get("best_of") not in (None, n):
            return error(400, "best_of is not supported by the V1 engine.", param="best_of")
        try:
            if chat:
                messages = body.get("messages")
                if not isinstance(messages, list) or not messages:
                    return error(400, "`messages` must be a non-empty list.", param="messages")
                prompt_len = count_chat(messages)
            else:
                if "prompt" not in body:
                    return error(400, "`prompt` is required.", param="prompt")
                prompt_len = count_prompt(body["prompt"])
        except TypeError as exc:
            return error(400, str(exc), param="prompt")
        default = oa.COMPLETIONS_DEFAULT_MAX_TOKENS if not chat else ctx.spec.max_model_len - prompt_len
        mt = max_tokens(body, default)
        if isinstance(mt, web.Response):
            return mt
        finish_reason = "length"
        if chat and body.get("max_tokens") is None and body.get("max_completion_tokens") is None \
                and not body.get("ignore_eos", False) and default > 0:
            natural = natural_length(ctx.seed, next(_natural_keys), default)
            if natural < mt:
                mt, finish_reason = natural, "stop"
        refusal = check_lengths(ctx, prompt_len, mt)
        if refusal:
            return error(400, refusal, param="max_tokens")
        streaming = bool(body.get("stream", False))
        opts = body.get("stream_options") or {}
        include_usage = streaming and bool(opts.get("include_usage", False))
        with_ids = bool(body.get("return_token_ids", False))
        # a LoRA adapter answers under its own name, as vLLM's does
        adapter = body.get("model") if body.get("model") in ctx.adapters else None
        model = adapter or ctx.model
        encoder = oa.ChunkEncoder(request_id("chatcmpl-" if chat else "cmpl-"), ctx.created, model, chat,
                                  token_ids=with_ids)
        choices = Choices(n)
        streams: list[TokenStream] = [
            CompletionStream(ctx, streaming, encoder, i, choices, include_usage,
                             bool(opts.get("continuous_usage_stats", False)), finish_reason) for i in range(n)]

        def respond(seq: Sequence, reason: str) -> web.Response:
            out_choices = []
            for stream, sq in zip(streams, choices.seqs, strict=True):
                text = "".join(stream.parts)
                if chat:
                    choice: dict[str, Any] = {"index": stream.index, "message": {"role": "assistant", "content": text,
                                                                                 "tool_calls": []},
                                              "logprobs": None, "finish_reason": reason, "stop_reason": None}
                else:
                    choice = {"index": stream.index, "text": text, "logprobs": None, "finish_reason": reason,
                              "stop_reason": None, "prompt_logprobs": None}
                if with_ids:
                    choice["token_ids"] = [token_id(sq, k) for k in range(1, sq.generated + 1)]
                out_choices.append(choice)
            out = {"id": encoder.head["id"], "object": "chat.completion" if chat else "text_completion",
                   "created": ctx.created, "model": model, "choices": out_choices,
                   "usage": oa.usage(seq.prompt_len, sum(sq.generated for sq in choices.seqs))}
            return web.json_response(out)

        return await serve(request, ctx, streams, prompt_len, mt, respond, adapter=adapter)

    async def completions(request: web.Request) -> web.StreamResponse:
        return await generate(request, chat=False)

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        return await generate(request, chat=True)

    async def models(request: web.Request) -> web.Response:
        card = {"id": ctx.model, "object": "model", "created": ctx.created, "owned_by": "vllm",
                "root": ctx.spec.checkpoint, "parent": None, "max_model_len": ctx.spec.max_model_len}
        # vLLM lists each LoRA adapter as a model whose parent is the base model
        adapters = ctx.spec.lora.adapters if ctx.spec.lora else ()
        loras = [{"id": a.name, "object": "model", "created": ctx.created, "owned_by": "vllm", "root": a.source,
                  "parent": ctx.model, "max_model_len": None} for a in adapters]
        return web.json_response({"object": "list", "data": [card, *loras]})

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if runtime.ready() else 503)

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": VLLM_VERSION})

    async def tokenize(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "The request body is not valid JSON.")
        try:
            if "messages" in body:
                n = count_chat(body["messages"])
            else:
                prompt = body.get("prompt", "")
                n = count_prompt(prompt) if prompt else (1 if body.get("add_special_tokens", True) else 0)
                if isinstance(prompt, str) and prompt and not body.get("add_special_tokens", True):
                    n = count_text(prompt, bos=False)
        except TypeError as exc:
            return error(400, str(exc), param="prompt")
        return web.json_response({"count": n, "max_model_len": ctx.spec.max_model_len,
                                  "tokens": list(range(1, n + 1)), "token_strs": None})

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8")

    everywhere = ctx.spec.auth_proxy  # an external stack's proxy asks for the key on every path

    def guard(request: web.Request, key: str) -> web.Response | None:
        if (everywhere or request.path.startswith(oa.API_KEY_PREFIX)) and not bearer_ok(request, key):
            return web.json_response(oa.UNAUTHORIZED_BODY, status=401)
        return None

    health_path = ctx.spec.server.health_path
    routes = [
        web.post(oa.COMPLETIONS_PATH, completions),
        web.post(oa.CHAT_PATH, chat_completions),
        web.get(oa.MODELS_PATH, models),
        web.get(health_path, health),
        web.get(oa.VERSION_PATH, version),
        web.post(oa.TOKENIZE_PATH, tokenize),
    ]
    separate = ctx.spec.server.metrics_port != ctx.spec.server.http_port
    if not separate:
        routes.append(web.get(ctx.spec.server.metrics_path, metrics_handler))
    return Dialect("openai", routes, health_path, metrics, metrics.render, ctx.spec.server.metrics_path, separate,
                   guard)
