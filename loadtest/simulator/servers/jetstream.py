"""JetStream's HTTP front end (jetstream/entrypoints/http): GET /, GET /healthcheck, POST /generate
(``prompt``, ``max_tokens``, ``stream``), and the orchestrator's Prometheus metrics on their own
port (9100 in the GKE deployment) with JetStream's ``jetstream_*`` names.

A streamed /generate writes one pretty-printed JSON object per token (``id``, ``time_created``,
``text``) with no separator, exactly as the front end's generator yields them; a plain one answers
``{"response": <text>}``. JetStream reports no token counts.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from ...protocols import jetstream
from ..engine import Engine, Sequence, StepResult
from ..exposition import Histogram, Text
from ..runtime import Observer
from ..tokens import count_text
from .base import Dialect, SimContext, TokenStream, check_lengths, serve

# Buckets as in JetStream's jetstream/core/metrics/prometheus.py
QUEUE_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
PREFILL_TOKEN_BUCKETS = [0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                         0.1]
REQUEST_BUCKETS = [1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0]
OUTPUT_LENGTH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000,
                         500000, 1000000, 2000000]
INPUT_LENGTH_BUCKETS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]  # DEFAULT_PREFILL_BUCKETS


def error(status: int, message: str) -> web.Response:
    return web.json_response(jetstream.error_body(message), status=status)


class JetstreamMetrics(Observer):
    def __init__(self, ctx: SimContext):
        self.ctx = ctx
        self.id = {"id": "jetstream-sim"}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.tpot = Histogram(TPOT_BUCKETS)
        self.per_prefill_token = Histogram(PREFILL_TOKEN_BUCKETS)
        self.per_request = Histogram(REQUEST_BUCKETS)
        self.wait = Histogram(QUEUE_BUCKETS)
        self.queue = Histogram(QUEUE_BUCKETS)
        self.in_len = Histogram(INPUT_LENGTH_BUCKETS)
        self.out_len = Histogram(OUTPUT_LENGTH_BUCKETS)
        self.success = 0

    def step(self, res: StepResult, engine: Engine) -> None:
        for seq in res.emitted:
            if seq.prev_token_at is None:
                self.ttft.observe((seq.last_token_at or res.end) - seq.arrival)
                self.per_prefill_token.observe((res.end - res.start) / max(1, res.prefill_tokens or 1))

    def finished(self, seq: Sequence, reason: str) -> None:
        if reason == "abort" or seq.finished_at is None:
            return
        self.success += 1
        first = seq.first_token_at or seq.finished_at
        sched = seq.scheduled_at if seq.scheduled_at is not None else seq.arrival
        self.per_request.observe(seq.finished_at - seq.arrival)
        self.wait.observe(sched - seq.arrival)
        self.queue.observe(sched - seq.arrival)
        if seq.generated > 1:
            self.tpot.observe((seq.finished_at - first) / (seq.generated - 1))
        self.in_len.observe(seq.prompt_len)
        self.out_len.observe(seq.generated)

    def render(self) -> str:
        e = self.ctx.runtime.engine
        lid = self.id
        t = Text()
        prefill_backlog = sum(1 for s in e.waiting) + len(e.pending)
        t.metric("jetstream_prefill_backlog_size", "gauge", "Size of prefill queue", [(lid, prefill_backlog)])
        t.metric("jetstream_transfer_backlog_size", "gauge", "Size of transfer queue", [({**lid, "idx": "0"}, 0)])
        t.metric("jetstream_generate_backlog_size", "gauge", "Size of generate queue", [({**lid, "idx": "0"}, 0)])
        t.metric("jetstream_slots_used_percentage", "gauge", "The percentage of decode slots currently being used",
                 [({**lid, "idx": "0"}, e.num_running / max(1, e.max_batch))])
        t.metric("jetstream_server_startup_latency", "gauge", "Total time taken to start the Jetstream server",
                 [(lid, 0.0)])
        t.metric("jetstream_total_tokens_in_current_batch", "gauge", "Total number of tokens in the decode batch",
                 [({**lid, "idx": "0"}, sum(s.total_len for s in e.running))])
        t.histogram("jetstream_queue_duration", "The total time each request spends enqueued in seconds",
                    [(lid, self.queue)])
        t.histogram("jetstream_time_to_first_token", "Time to first token per request in seconds",
                    [(lid, self.ttft)])
        t.histogram("jetstream_time_per_output_token", "Average time per output token per request in seconds",
                    [(lid, self.tpot)])
        t.histogram("jetstream_time_per_prefill_token", "Prefill time per token per request in seconds",
                    [(lid, self.per_prefill_token)])
        t.histogram("jetstream_time_per_request", "End to end request latency in seconds", [(lid, self.per_request)])
        t.histogram("jetstream_wait_time_per_request", "Time each request is not being prefilled or decoded",
                    [(lid, self.wait)])
        t.histogram("jetstream_request_input_length", "Number of input tokens per request", [(lid, self.in_len)])
        t.histogram("jetstream_request_output_length", "Number of output tokens per request", [(lid, self.out_len)])
        t.metric("jetstream_request_success_count_total", "counter", "Number of requests successfully completed",
                 [(lid, self.success)])
        return t.render()


class GenerateStream(TokenStream):
    def token_bytes(self, seq: Sequence, text: str) -> bytes:
        return jetstream.stream_object("generate-" + uuid.uuid4().hex, text)


def build(ctx: SimContext) -> Dialect:
    metrics = JetstreamMetrics(ctx)
    runtime = ctx.runtime

    async def root(request: web.Request) -> web.Response:
        return web.Response(body=jetstream.pretty({"message": "HTTP Server for JetStream"}),
                            content_type="application/json")

    async def healthcheck(request: web.Request) -> web.Response:
        if not runtime.ready():
            return error(500, "Healthcheck failed")
        return web.Response(body=jetstream.pretty({"response": {"is_live": True}}),
                            content_type="application/json")

    async def generate(request: web.Request) -> web.StreamResponse:
        if not runtime.ready():
            return error(500, "Healthcheck failed, is_live = False")
        try:
            body: Any = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(422, "JSON decode error")
        if not isinstance(body, dict):
            return error(422, "Input should be a valid dictionary")
        status = runtime.faults.error_status()
        if status is not None:
            metrics.rejected(status, "fault")
            return error(status, f"Injected fault: {status}")
        prompt = body.get("prompt", jetstream.DEFAULT_PROMPT)
        max_new = body.get("max_tokens", jetstream.DEFAULT_MAX_TOKENS)
        if not isinstance(prompt, str) or not isinstance(max_new, int) or max_new < 1:
            return error(422, "prompt must be a string and max_tokens a positive integer")
        prompt_len = count_text(prompt)
        refusal = check_lengths(ctx, prompt_len, max_new)
        if refusal:
            return error(500, refusal)
        streaming = bool(body.get("stream", False))
        stream = GenerateStream(ctx, streaming)

        def respond(seq: Sequence, reason: str) -> web.Response:
            return web.Response(text=json.dumps({"response": "".join(stream.parts)}, indent=4),
                                content_type="application/json")

        return await serve(request, ctx, stream, prompt_len, max_new, respond,
                           headers={"Content-Type": "application/json"})

    hp = ctx.spec.server.health_path
    routes = [web.get(jetstream.ROOT_PATH, root), web.get(hp, healthcheck), web.post(jetstream.GENERATE_PATH, generate)]
    separate = ctx.spec.server.metrics_port != ctx.spec.server.http_port
    return Dialect("jetstream", routes, hp, metrics, metrics.render, ctx.spec.server.metrics_path, separate)
