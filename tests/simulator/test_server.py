"""The served dialects: routes, wire formats, usage counts, metric names, errors and faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from loadtest.simulator.app import SimulatedEndpoint
from loadtest.simulator.faults import parse_faults
from loadtest.simulator.tokens import count_text


def run(spec, fn: Callable[[SimulatedEndpoint, aiohttp.ClientSession], Awaitable[Any]], **kw) -> Any:
    async def main() -> Any:
        async with SimulatedEndpoint(spec, port=0, **kw) as ep, aiohttp.ClientSession() as http:
            return await fn(ep, http)

    return asyncio.run(main())


def sse_events(raw: str, sep: str = "data: ") -> list[str]:
    return [block[len(sep):] for block in raw.split("\n\n") if block.startswith(sep)]


# -- vLLM / OpenAI ---------------------------------------------------------------------------------
def test_openai_completion_stream_with_usage(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        body = {"model": spec.served_name, "prompt": "one two three four", "max_tokens": 7, "stream": True,
                "stream_options": {"include_usage": True}, "ignore_eos": True}
        async with http.post(ep.url + "/v1/completions", json=body) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            return await r.text()

    events = sse_events(run(spec, go))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    token_chunks = [c for c in chunks if c["choices"]]
    assert len(token_chunks) == 7
    assert token_chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in token_chunks)  # vLLM serialises chunks with exclude_unset
    usage = chunks[-1]["usage"]
    assert usage == {"prompt_tokens": 5, "total_tokens": 12, "completion_tokens": 7}  # 4 words + BOS
    text = "".join(c["choices"][0]["text"] for c in token_chunks)
    assert count_text(text, bos=False) == 7  # the text re-tokenizes to the reported count


def test_openai_token_id_prompt_and_chat(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        async with http.post(ep.url + "/v1/completions", json={"prompt": list(range(100)), "max_tokens": 3}) as r:
            comp = await r.json()
        chat_body = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4, "stream": True}
        async with http.post(ep.url + "/v1/chat/completions", json=chat_body) as r:
            chat = await r.text()
        return comp, chat

    comp, chat = run(spec, go)
    assert comp["usage"]["prompt_tokens"] == 100
    assert comp["usage"]["completion_tokens"] == 3
    events = [json.loads(e) for e in sse_events(chat)[:-1]]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(events) == 5  # role + 4 tokens
    assert events[-1]["choices"][0]["finish_reason"] == "length"


def test_openai_models_health_tokenize_and_errors(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        out = {}
        async with http.get(ep.url + "/v1/models") as r:
            out["models"] = await r.json()
        async with http.get(ep.health_url) as r:
            out["health"] = r.status
        async with http.post(ep.url + "/tokenize", json={"prompt": "a b c"}) as r:
            out["tokenize"] = await r.json()
        async with http.post(ep.url + "/v1/completions", json={"model": "nope", "prompt": "x"}) as r:
            out["unknown_model"] = (r.status, await r.json())
        async with http.post(ep.url + "/v1/completions", json={"prompt": "x", "max_tokens": 5000}) as r:
            out["too_long"] = (r.status, await r.json())
        return out

    out = run(spec, go)
    assert out["models"]["data"][0]["id"] == spec.served_name
    assert out["models"]["data"][0]["max_model_len"] == spec.max_model_len
    assert out["health"] == 200
    assert out["tokenize"]["count"] == 4
    assert out["unknown_model"][0] == 404 and "does not exist" in out["unknown_model"][1]["error"]["message"]
    assert out["too_long"][0] == 400 and "maximum context length" in out["too_long"][1]["error"]["message"]


def test_openai_metrics_use_vllm_names(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        async with http.post(ep.url + "/v1/completions", json={"prompt": "hi", "max_tokens": 5}) as r:
            await r.read()
        async with http.get(ep.metrics_url) as r:
            return await r.text()

    text = run(spec, go)
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:num_preemptions_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_count",
                 "vllm:e2e_request_latency_seconds_sum", "vllm:request_queue_time_seconds_bucket",
                 "vllm:iteration_tokens_total_bucket"):
        assert name in text, name
    assert f'vllm:generation_tokens_total{{engine="0",model_name="{spec.served_name}"}} 5.0' in text
    assert f'num_gpu_blocks="{spec.sizing.kv_blocks}"' in text  # the sizing's KV capacity, as vLLM reports it


# -- TGI ---------------------------------------------------------------------------------------------
def test_tgi_generate_stream_details_and_metrics(dialect_specs):
    spec = dialect_specs["tgi"]

    async def go(ep, http):
        body = {"inputs": "what is a GPU", "parameters": {"max_new_tokens": 6, "details": True}}
        async with http.post(ep.url + "/generate_stream", json=body) as r:
            stream = await r.text()
        async with http.post(ep.url + "/generate", json=body) as r:
            plain = await r.json()
        async with http.get(ep.url + "/info") as r:
            info = await r.json()
        async with http.post(ep.url + "/tokenize", json={"inputs": "what is a GPU"}) as r:
            assert len(await r.json()) == 5  # BOS + 4 words: the count /generate reports as input_length
        async with http.get(ep.metrics_url) as r:
            metrics = await r.text()
        return stream, plain, info, metrics

    stream, plain, info, metrics = run(spec, go)
    events = [json.loads(e) for e in sse_events(stream, "data:")]
    assert len(events) == 6
    assert events[-1]["details"] == {"finish_reason": "length", "generated_tokens": 6, "input_length": 5,
                                     "seed": None}
    assert events[-1]["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert plain["details"]["generated_tokens"] == 6
    assert info["max_total_tokens"] == spec.max_model_len
    for name in ("tgi_queue_size", "tgi_batch_current_size", "tgi_request_count", "tgi_request_success",
                 "tgi_request_duration_bucket", "tgi_batch_inference_duration_bucket"):
        assert name in metrics, name
    assert "tgi_request_count_total" not in metrics  # the Rust exporter adds no _total


def test_tgi_messages_api(dialect_specs):
    spec = dialect_specs["tgi"]

    async def go(ep, http):
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True,
                "stream_options": {"include_usage": True}}
        async with http.post(ep.url + "/v1/chat/completions", json=body) as r:
            return await r.text()

    events = sse_events(run(spec, go))
    assert events[-1] == "[DONE]"
    usage = json.loads(events[-2])["usage"]
    assert usage["completion_tokens"] == 3


# -- Triton ------------------------------------------------------------------------------------------
def test_triton_generate_stream_and_separate_metrics_port(dialect_specs):
    spec = dialect_specs["triton"]

    async def go(ep, http):
        url = f"{ep.url}/v2/models/{spec.served_name}/generate_stream"
        async with http.post(url, json={"text_input": "hello", "max_tokens": 4, "stream": True}) as r:
            stream = await r.text()
        async with http.get(ep.url + "/v2/health/ready") as r:
            ready = r.status
        async with http.get(ep.url + "/metrics") as r:
            on_main = r.status
        async with http.get(ep.metrics_url) as r:
            metrics = await r.text()
        return stream, ready, on_main, metrics, ep.bound_port != ep.bound_metrics_port

    stream, ready, on_main, metrics, separate = run(spec, go)
    events = [json.loads(e) for e in sse_events(stream)]
    assert len(events) == 4 and all("text_output" in e for e in events)
    assert ready == 200
    assert separate and on_main == 404  # metrics live on their own port, as Triton's 8002
    for name in ("nv_inference_request_success", "nv_inference_pending_request_count", "nv_gpu_utilization",
                 "nv_trt_llm_kv_cache_block_metrics", "nv_trt_llm_request_metrics"):
        assert name in metrics, name


def test_triton_explicit_port_keeps_the_real_offset(dialect_specs):
    spec = dialect_specs["triton"]
    ep = SimulatedEndpoint(spec, port=18000)
    assert spec.server.metrics_port - spec.server.http_port == 2
    assert ep.port == 18000  # metrics would go to 18002 (started only in the CLI test, to keep ports free)


# -- JetStream ---------------------------------------------------------------------------------------
def test_jetstream_generate_and_metrics(dialect_specs):
    spec = dialect_specs["jetstream"]

    async def go(ep, http):
        async with http.post(ep.url + "/generate", json={"prompt": "hi", "max_tokens": 5}) as r:
            plain = await r.json()
        async with http.post(ep.url + "/generate", json={"prompt": "hi", "max_tokens": 3, "stream": True}) as r:
            stream = await r.text()
        async with http.get(ep.health_url) as r:
            health = await r.json()
        async with http.get(ep.metrics_url) as r:
            metrics = await r.text()
        return plain, stream, health, metrics

    plain, stream, health, metrics = run(spec, go)
    assert count_text(plain["response"], bos=False) == 5
    decoder = json.JSONDecoder()
    objs, i = [], 0
    while i < len(stream):
        obj, i = decoder.raw_decode(stream, i)
        objs.append(obj)
    assert len(objs) == 3 and all(set(o) == {"id", "time_created", "text"} for o in objs)
    assert health == {"response": {"is_live": True}}
    for name in ("jetstream_prefill_backlog_size", "jetstream_slots_used_percentage",
                 "jetstream_time_to_first_token_bucket", "jetstream_request_success_count_total"):
        assert name in metrics, name


# -- faults ------------------------------------------------------------------------------------------
def test_error_rate_returns_the_chosen_statuses(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        statuses = []
        for _ in range(20):
            async with http.post(ep.url + "/v1/completions", json={"prompt": "x", "max_tokens": 2}) as r:
                statuses.append(r.status)
        return statuses

    statuses = run(spec, go, faults=parse_faults("error_rate=1,statuses=429+503"))
    assert set(statuses) <= {429, 503} and len(set(statuses)) == 2


def test_disconnect_cuts_the_stream(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        body = {"prompt": "x", "max_tokens": 20, "stream": True}
        got = b""
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.post(ep.url + "/v1/completions", json=body) as r:
                async for chunk in r.content.iter_any():
                    got += chunk
        return got

    got = run(spec, go, faults=parse_faults("disconnect_rate=1"))
    assert b"[DONE]" not in got


def test_slow_start_then_ready(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        async with http.get(ep.health_url) as r:
            early = r.status
        async with http.post(ep.url + "/v1/completions", json={"prompt": "x"}) as r:
            early_api = r.status
        await asyncio.sleep(0.35)
        async with http.get(ep.health_url) as r:
            late = r.status
        return early, early_api, late

    assert run(spec, go, faults=parse_faults("slow_start=0.3")) == (503, 503, 200)


def test_bad_fault_specs_name_the_key():
    from loadtest.simulator.faults import FaultSpecError

    with pytest.raises(FaultSpecError, match="error_rate"):
        parse_faults("error_rate=2")
    with pytest.raises(FaultSpecError, match="statuses"):
        parse_faults("statuses=200")
    with pytest.raises(FaultSpecError, match="unknown key `bogus`"):
        parse_faults("bogus=1")


def test_chat_without_max_tokens_stops_naturally_and_usage_can_stream(dialect_specs):
    spec = dialect_specs["openai"]

    async def go(ep, http):
        body = {"messages": [{"role": "user", "content": "hi"}]}
        async with http.post(ep.url + "/v1/chat/completions", json=body) as r:
            natural = await r.json()
        body = {"prompt": "a", "max_tokens": 3, "stream": True,
                "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
        async with http.post(ep.url + "/v1/completions", json=body) as r:
            stream = await r.text()
        return natural, stream

    natural, stream = run(spec, go)
    assert natural["choices"][0]["finish_reason"] == "stop"
    assert 1 <= natural["usage"]["completion_tokens"] < spec.max_model_len - natural["usage"]["prompt_tokens"]
    chunks = [json.loads(e) for e in sse_events(stream)[:-1]]
    assert [c["usage"]["completion_tokens"] for c in chunks if c["choices"]] == [1, 2, 3]
