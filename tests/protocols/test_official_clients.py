"""The servers' official clients against the simulated servers: if ``openai``, ``huggingface_hub``,
``text-generation`` and ``tritonclient`` work against the simulator, its wire format is the real one
(these are test-only dependencies, pinned in requirements.txt)."""

from __future__ import annotations

import pytest

from .conftest import served

KEY = "sk-test-canary-0123456789"


# -- vLLM: openai ----------------------------------------------------------------------------------
def test_openai_client_completions_n2_stream_and_chat(server_specs):
    import openai

    spec = server_specs["vllm"]
    with served(spec) as ep:
        client = openai.OpenAI(base_url=ep.url + "/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == [spec.served_name]
        out = client.completions.create(model=spec.served_name, prompt="one two three", max_tokens=5, n=2,
                                        extra_body={"ignore_eos": True})
        assert sorted(c.index for c in out.choices) == [0, 1]
        assert out.usage.completion_tokens == 10 and out.usage.prompt_tokens == 4
        chunks = list(client.completions.create(model=spec.served_name, prompt="one two three", max_tokens=4,
                                                stream=True, stream_options={"include_usage": True},
                                                extra_body={"ignore_eos": True, "return_token_ids": True}))
        content = [c for c in chunks if c.choices]
        assert sum(len(c.choices[0].model_extra["token_ids"]) for c in content) == 4
        assert content[-1].choices[0].finish_reason == "length"
        assert chunks[-1].usage.completion_tokens == 4 and chunks[-1].choices == []
        assert all(c.usage is None for c in content)
        chat = list(client.chat.completions.create(model=spec.served_name, max_tokens=3, stream=True,
                                                   messages=[{"role": "user", "content": "hi there"}],
                                                   extra_body={"ignore_eos": True}))
        assert chat[0].choices[0].delta.role == "assistant"
        assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices)


def test_openai_client_needs_the_key_when_the_server_has_one(server_specs):
    import openai

    spec = server_specs["vllm"]
    with served(spec, api_key=KEY) as ep:
        bad = openai.OpenAI(base_url=ep.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            bad.completions.create(model=spec.served_name, prompt="x", max_tokens=2)
        assert KEY not in str(info.value)
        good = openai.OpenAI(base_url=ep.url + "/v1", api_key=KEY, max_retries=0)
        assert good.completions.create(model=spec.served_name, prompt="x", max_tokens=2).usage.completion_tokens


# -- TGI: huggingface_hub and text-generation -----------------------------------------------------------
def test_huggingface_hub_inference_client_text_generation(server_specs):
    from huggingface_hub import InferenceClient

    with served(server_specs["tgi"]) as ep:
        client = InferenceClient(base_url=ep.url)
        assert isinstance(client.text_generation("one two three", max_new_tokens=5), str)
        detailed = client.text_generation("one two three", max_new_tokens=5, details=True)
        assert detailed.details.generated_tokens == 5
        streamed = list(client.text_generation("one two three", max_new_tokens=4, stream=True, details=True))
        assert len(streamed) == 4 and streamed[-1].details.generated_tokens == 4
        tokens = list(client.text_generation("one two three", max_new_tokens=3, stream=True))
        assert len(tokens) == 3 and all(isinstance(t, str) for t in tokens)


def test_text_generation_client_generate_and_stream(server_specs):
    from text_generation import Client

    with served(server_specs["tgi"]) as ep:
        client = Client(ep.url)
        out = client.generate("one two three", max_new_tokens=5)
        assert out.details.generated_tokens == 5 and out.generated_text
        events = list(client.generate_stream("one two three", max_new_tokens=4))
        assert len(events) == 4 and events[-1].details.generated_tokens == 4
        assert events[-1].generated_text == "".join(e.token.text for e in events)


def test_tgi_key_guards_generation_but_not_the_probes(server_specs):
    import httpx

    with served(server_specs["tgi"], api_key=KEY) as ep:
        assert httpx.get(ep.url + "/health").status_code == 200
        assert httpx.get(ep.url + "/info").status_code == 200
        body = {"inputs": "hi", "parameters": {"max_new_tokens": 2}}
        assert httpx.post(ep.url + "/generate", json=body).status_code == 401
        ok = httpx.post(ep.url + "/generate", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.json()["generated_text"]


def test_tgi_info_matches_the_launcher_limits(server_specs):
    import httpx

    from stacks.serving import tgi_limits

    spec = server_specs["tgi"]
    with served(spec) as ep:
        info = httpx.get(ep.url + "/info").json()
    lim = tgi_limits(spec)
    assert (info["max_input_tokens"], info["max_total_tokens"], info["max_concurrent_requests"]) == \
        (lim.max_input_tokens, lim.max_total_tokens, lim.max_concurrent_requests)


# -- Triton: tritonclient ---------------------------------------------------------------------------------
def test_tritonclient_health_metadata_config_stats_and_index(server_specs):
    import tritonclient.http as httpclient

    with served(server_specs["triton-trtllm"]) as ep:
        client = httpclient.InferenceServerClient(ep.url.removeprefix("http://"))
        try:
            assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("ensemble")
            assert "generate" in client.get_server_metadata()["extensions"]
            assert client.get_model_metadata("ensemble")["platform"] == "ensemble"
            config = client.get_model_config("ensemble")
            assert config["name"] == "ensemble" and {t["name"] for t in config["input"]} >= {"text_input",
                                                                                             "max_tokens"}
            stats = client.get_inference_statistics("ensemble")
            assert stats["model_stats"][0]["name"] == "ensemble"
            assert client.get_model_repository_index() == [{"name": "ensemble", "version": "1", "state": "READY"}]
        finally:
            client.close()


def test_triton_generate_honours_parameters_and_stream_false(server_specs):
    import json

    import httpx

    with served(server_specs["triton-trtllm"]) as ep:
        # the generate extension's documented form: inputs inside "parameters"
        out = httpx.post(ep.url + "/v2/models/ensemble/generate",
                         json={"text_input": "one two", "parameters": {"max_tokens": 3, "stream": False}})
        assert out.status_code == 200 and out.json()["model_name"] == "ensemble"
        raw = httpx.post(ep.url + "/v2/models/ensemble/generate_stream",
                         json={"text_input": "one two", "max_tokens": 5, "stream": False}).text
        events = [json.loads(b[len("data: "):]) for b in raw.split("\n\n") if b.startswith("data: ")]
        assert len(events) == 1 and events[0]["text_output"]
        streamed = httpx.post(ep.url + "/v2/models/ensemble/generate_stream",
                              json={"text_input": "one two", "max_tokens": 5, "stream": True}).text
        assert streamed.count("data: ") == 5


def test_triton_restricted_api_needs_the_header(server_specs):
    import httpx

    with served(server_specs["triton-trtllm"], api_key=KEY) as ep:
        body = {"text_input": "hi", "max_tokens": 2}
        refused = httpx.post(ep.url + "/v2/models/ensemble/generate", json=body)
        assert refused.status_code == 403 and "restricted" in refused.json()["error"]
        assert httpx.post(ep.url + "/v2/repository/index").status_code == 403
        assert httpx.get(ep.url + "/v2/health/ready").status_code == 200
        ok = httpx.post(ep.url + "/v2/models/ensemble/generate", json=body,
                        headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200


def test_jetstream_cannot_enforce_a_key(server_specs):
    from loadtest.simulator.app import SimulatedEndpoint

    with pytest.raises(ValueError, match="no authentication"):
        SimulatedEndpoint(server_specs["jetstream"], api_key=KEY)


# -- behaviours the clients above cannot provoke ----------------------------------------------------
def test_vllm_merges_tokens_a_slow_reader_has_not_drained(server_specs):
    """While the connection's write buffer is not empty, tokens are held and sent in one chunk."""
    import asyncio
    import json

    from loadtest.protocols import openai as oa
    from loadtest.simulator.engine import Sequence
    from loadtest.simulator.runtime import Runtime
    from loadtest.simulator.servers.base import Choices, SimContext
    from loadtest.simulator.servers.openai import CompletionStream

    class Transport:
        backlog = 1

        def get_write_buffer_size(self) -> int:
            return self.backlog

        def is_closing(self) -> bool:
            return False

    async def go() -> list[bytes | None]:
        spec = server_specs["vllm"]
        ctx = SimContext(spec, Runtime(spec), 0)
        stream = CompletionStream(ctx, True, oa.ChunkEncoder("cmpl-1", 0, "m", False, token_ids=True), 0,
                                  Choices(1), include_usage=False)
        stream.transport = Transport()  # type: ignore[assignment]
        seq = Sequence(rid=1, prompt_len=4, max_new=5, arrival=0.0, handle=stream)
        out = []
        for k in range(1, 5):
            seq.generated = k
            if k == 4:
                stream.transport.backlog = 0  # the reader caught up
            out.append(stream.prepare(seq))
        return out

    sent = asyncio.run(go())
    assert sent[:3] == [None, None, None]
    chunk = json.loads(sent[3].split(b"data: ", 1)[1])  # type: ignore[union-attr]
    assert len(chunk["choices"][0]["token_ids"]) == 4


def test_the_simulator_exits_when_its_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    parent = ("import subprocess, sys\n"
              "p = subprocess.Popen([sys.executable, '-m', 'loadtest.simulator', 'serve', '--stack', 'llama2-7b-g2',"
              " '--port', '0'], stdout=subprocess.PIPE, text=True)\n"
              "print(p.pid, flush=True)\n"
              "print(p.stdout.readline().strip(), flush=True)\n"
              "import time; time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=repo, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert proc.stdout.readline().startswith("listening: ")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60  # a bound, not a timing claim: the child polls every 0.5 s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":  # exited, waiting for whichever process inherited it to reap it
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the simulator kept serving after its parent died")


def test_tgi_refuses_above_its_admission_limit_and_batches_below_it(server_specs):
    """``--max-concurrent-requests`` is admission: the request beyond it gets 429 at once, while the
    ones admitted queue for the running batch (``--max-batch-size``)."""
    import asyncio
    import dataclasses

    import aiohttp

    from loadtest.simulator.app import SimulatedEndpoint
    from stacks.serving import tgi_limits

    spec = dataclasses.replace(server_specs["tgi"], max_batch=2)
    limit = tgi_limits(spec).max_concurrent_requests
    assert limit == 8 and tgi_limits(spec).max_batch_size == 2

    async def go() -> list[int]:
        async with SimulatedEndpoint(spec, port=0) as ep, aiohttp.ClientSession() as http:
            async def one(i: int) -> int:
                await asyncio.sleep(0.02 * (i == limit))  # the last one arrives when the others are in
                body = {"inputs": "one two three", "parameters": {"max_new_tokens": 64}}
                async with http.post(ep.url + "/generate", json=body) as r:
                    await r.read()
                    return r.status

            return list(await asyncio.gather(*(one(i) for i in range(limit + 1))))

    statuses = asyncio.run(go())
    assert statuses[:limit] == [200] * limit and statuses[limit] == 429
