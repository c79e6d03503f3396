"""Small, faithful protocol servers for the load tester's tests (aiohttp), plus scripted faults.

One process serves every dialect; the first path segments choose a behaviour, so one server covers
every test: ``http://127.0.0.1:PORT/<behaviour>/<arg>`` is a base URL the load tester uses as is.

Behaviours (``/ok/<itl_ms>`` streams normally with that inter-token gap):
  ok/<ms>            well-formed stream of exactly the requested tokens
  status/<code>      answers with that HTTP status and a JSON error body
  reset/<n>          sends n tokens, then aborts the connection (no end of the chunked body)
  truncated/<n>      sends n tokens, then ends the body cleanly without the end marker
  badjson/<n>        sends n tokens, then an event that is not JSON
  error/<n>          sends n tokens, then the protocol's in-stream error event
  slow/<ms>          like ok but each token takes <ms> (for the per-request timeout)
  hung/0             accepts the request and never answers (for the read timeout)
  tokenize/0         like ok/0, and /tokenize answers (elsewhere it is absent)
  flaky/<n>          /tokenize drops the connection n times, then answers (generation streams normally)
  down/0             /tokenize always answers 503
  cap/<n>            like ok/5 but at most n requests generate at once (the rest queue): a server
                     that saturates at n / (tokens x 5 ms) requests per second, tokens on a fixed schedule
Wire formats, per dialect, built by the protocol modules the load tester reads them with
(``loadtest.protocols``):
  OpenAI  POST /v1/completions, /v1/chat/completions: SSE ``data: {json}``, usage chunk, ``data: [DONE]``
  TGI     POST /generate_stream: SSE ``data:{"index","token":{...},"generated_text","details"}``
  Triton  POST /v2/models/<m>/generate_stream: SSE ``data: {"model_name",...,"text_output"}``
  JetStream POST /generate (stream): concatenated pretty-printed JSON objects ``{"id","time_created","text"}``
Health: /health, /v2/health/ready, /healthcheck. Metrics: /metrics (vLLM names, live running count).

Run: ``python -m tests.loadtest.fixture_server --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from aiohttp import web

from loadtest.protocols import jetstream, tgi, triton
from loadtest.protocols import openai as oa
from loadtest.protocols.framing import sse_event

STATE = {"running": 0, "requests": 0}
CAPS: dict[int, asyncio.Semaphore] = {}


def _token_text(k: int) -> str:
    return f" t{k}"


async def _sse(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    return resp


def _plan(request: web.Request) -> tuple[str, float]:
    return request.match_info.get("behaviour", "ok"), float(request.match_info.get("arg", "0") or 0)


async def _stream(request: web.Request, n_tokens: int, event, end_events: list[bytes],
                  error_event: bytes, framing: str = "sse") -> web.StreamResponse:
    """Common driver: emit ``event(k)`` per token with the behaviour's timing and fault."""
    behaviour, arg = _plan(request)
    STATE["requests"] += 1
    if behaviour == "status":
        return web.json_response({"error": {"message": f"scripted {int(arg)}", "code": int(arg)}}, status=int(arg))
    if behaviour == "hung":
        await asyncio.sleep(3600)
    if behaviour == "cap":
        sem = CAPS.setdefault(int(arg), asyncio.Semaphore(int(arg)))
        async with sem:
            # on schedule: each token is due at start + (k+1) x 5 ms, so a late wake-up on a busy
            # machine delays one token, not every later one, and the capacity stays exact under load
            return await _generate(request, n_tokens, event, end_events, error_event, framing, "ok", 5.0,
                                   on_schedule=True)
    return await _generate(request, n_tokens, event, end_events, error_event, framing, behaviour, arg)


async def _generate(request: web.Request, n_tokens: int, event, end_events: list[bytes],
                    error_event: bytes, framing: str, behaviour: str, arg: float,
                    on_schedule: bool = False) -> web.StreamResponse:
    STATE["running"] += 1
    try:
        if framing == "sse":
            resp = await _sse(request)
        else:
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
        gap = arg / 1000.0 if behaviour in ("ok", "slow") else 0.0
        stop_after = int(arg) if behaviour in ("reset", "truncated", "badjson", "error") else n_tokens
        loop = asyncio.get_running_loop()
        start = loop.time()
        for k in range(min(n_tokens, stop_after)):
            if gap and on_schedule:
                await asyncio.sleep(max(0.0, start + (k + 1) * gap - loop.time()))
            elif gap:
                await asyncio.sleep(gap)
            await resp.write(event(k))
        if behaviour == "reset":
            request.transport.abort()
            return resp
        if behaviour == "badjson":
            await resp.write(b"data: {this is not json\n\n" if framing == "sse" else b"{this is not json}")
        elif behaviour == "error":
            await resp.write(error_event)
        elif behaviour != "truncated":
            for e in end_events:
                await resp.write(e)
        await resp.write_eof()
        return resp
    finally:
        STATE["running"] -= 1


async def openai_completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    chat = request.path.endswith(oa.CHAT_PATH)
    n = int(body.get("max_tokens", 16))
    prompt_tokens = len((body.get("prompt") or body.get("messages", [{}])[-1].get("content", "")).split())
    enc = oa.ChunkEncoder(f"cmpl-{uuid.uuid4().hex[:8]}", int(time.time()), body.get("model"), chat)

    def event(k: int) -> bytes:
        token = enc.token(_token_text(k), finish_reason="length" if k == n - 1 else None)
        return (enc.role() if chat and k == 0 else b"") + token  # the role announcement carries no token

    ends = [enc.usage_chunk(prompt_tokens, n), oa.DONE]
    error = sse_event(json.dumps(oa.error_body(500, "boom", "InternalServerError")).encode())
    return await _stream(request, n, event, ends, error)


async def tgi_generate_stream(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    n = int(body.get("parameters", {}).get("max_new_tokens", 16))
    input_len = len(str(body.get("inputs", "")).split())

    def event(k: int) -> bytes:
        if k < n - 1:
            return tgi.stream_event(k + 1, 100 + k, _token_text(k))
        return tgi.stream_event(k + 1, 100 + k, _token_text(k), "".join(_token_text(j) for j in range(n)),
                                tgi.stream_details("length", n, input_len))

    err = tgi.error_event("Request failed during generation: Server error: out of memory")
    return await _stream(request, n, event, [], err)


async def triton_generate_stream(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    n = int(triton.request_field(body, "max_tokens", 16))
    enc = triton.EventEncoder(request.match_info["model"])
    return await _stream(request, n, lambda k: enc.event(_token_text(k)), [],
                         triton.error_event("in ensemble: model failed"))


async def jetstream_generate(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    n = int(body.get("max_tokens", 16))
    rid = f"generate-{uuid.uuid4().hex}"

    def event(k: int) -> bytes:
        return jetstream.stream_object(rid, _token_text(k))

    if not body.get("stream"):
        return web.Response(body=jetstream.answer("".join(_token_text(k) for k in range(n))),
                            content_type="application/json")
    behaviour, _ = _plan(request)
    if behaviour == "truncated":
        # JetStream has no end marker: a clean early end is indistinguishable from EOS, so the
        # fixture's "truncated" cuts the body inside an object, the one truncation it can show.
        async def cut(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(event(0) + b'{\n    "id": "x",\n    "te')
            await resp.write_eof()
            return resp
        return await cut(request)
    return await _stream(request, n, event, [], b"", framing="json")


async def tokenize(request: web.Request) -> web.Response:
    """vLLM's /tokenize, one token per word plus BOS (the fixture's own rule), served only under the
    ``tokenize``, ``flaky`` and ``down`` behaviours: elsewhere it is absent (404), as on servers
    without a token counter, so other tests' workloads are not fitted prompt by prompt."""
    behaviour, arg = _plan(request)
    if behaviour not in ("tokenize", "flaky", "down"):
        raise web.HTTPNotFound()
    if behaviour == "down":
        return web.json_response(oa.error_body(503, "scripted 503", "ServiceUnavailable"), status=503)
    if behaviour == "flaky" and STATE.setdefault("tokenize_failures", 0) < int(arg):
        STATE["tokenize_failures"] += 1
        request.transport.abort()
        return web.Response()
    body = await request.json()
    text = body.get("prompt") or " ".join(m.get("content", "") for m in body.get("messages", []))
    n = len(text.split()) + 1
    return web.json_response({"count": n, "max_model_len": 4096, "tokens": list(range(n)), "token_strs": None})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    text = (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{engine="0",model_name="fixture"}} {float(STATE["running"])}\n'
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{engine="0",model_name="fixture"} 0.0\n'
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f'vllm:kv_cache_usage_perc{{engine="0",model_name="fixture"}} {min(1.0, STATE["running"] / 100):.3f}\n'
        "# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.\n"
        "# TYPE vllm:num_preemptions_total counter\n"
        'vllm:num_preemptions_total{engine="0",model_name="fixture"} 0.0\n'
        "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.\n"
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        'vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="fixture"} 3.0\n'
        'vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="fixture"} 3.0\n'
        'vllm:e2e_request_latency_seconds_count{engine="0",model_name="fixture"} 3.0\n'
        'vllm:e2e_request_latency_seconds_sum{engine="0",model_name="fixture"} 0.5\n'
        "# TYPE fixture_requests_total counter\n"
        f"fixture_requests_total {float(STATE['requests'])}\n"
    )
    return web.Response(text=text, content_type="text/plain")


def make_app() -> web.Application:
    app = web.Application()
    prefix = "/{behaviour}/{arg}"
    for base in ("", prefix):
        app.router.add_post(base + oa.COMPLETIONS_PATH, openai_completions)
        app.router.add_post(base + oa.CHAT_PATH, openai_completions)
        app.router.add_post(base + tgi.GENERATE_STREAM_PATH, tgi_generate_stream)
        app.router.add_post(base + triton.generate_path("{model}"), triton_generate_stream)
        app.router.add_post(base + jetstream.GENERATE_PATH, jetstream_generate)
        app.router.add_post(base + oa.TOKENIZE_PATH, tokenize)
        for path in (oa.HEALTH_PATH, triton.HEALTH_READY_PATH, jetstream.HEALTH_PATH):
            app.router.add_get(base + path, health)
        app.router.add_get(base + "/metrics", metrics)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    web.run_app(make_app(), host=a.host, port=a.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
