"""Every client dialect of the load tester against every simulated server: the pairs a real
deployment can meet work end to end (exact token counts, no error); the others fail as a clean
record (an HTTP error class: no route, or a route of the same path that rejects the body, as TGI's
``/generate`` does a JetStream request), never a crash or a silent mis-count."""

from __future__ import annotations

import asyncio

import pytest

from loadtest.clock import Clock
from loadtest.http import make_transport
from loadtest.protocols import Prompt, make_dialect
from loadtest.records import RequestRecord
from loadtest.runner import Runner

from .conftest import SERVER_SPECS

CLIENTS = [("openai", "completions"), ("openai", "chat"), ("tgi", "completions"), ("tgi", "chat"),
           ("triton", "completions"), ("jetstream", "completions")]
#: (client dialect, api) -> the server kinds that serve it, and how the token count is known there
WORKS = {
    ("openai", "completions"): {"vllm": "usage", "tgi": "usage"},
    ("openai", "chat"): {"vllm": "usage", "tgi": "usage"},
    ("tgi", "completions"): {"tgi": "details"},
    ("tgi", "chat"): {"vllm": "usage", "tgi": "usage"},
    ("triton", "completions"): {"triton-trtllm": "chunks"},
    ("jetstream", "completions"): {"jetstream": "chunks"},
}


async def _send(spec, dialect_name: str, api: str, n: int) -> list[RequestRecord]:
    from loadtest.simulator.app import SimulatedEndpoint

    async with SimulatedEndpoint(spec, port=0) as ep:
        dialect = make_dialect(dialect_name, spec.served_name, api)
        transport = make_transport("aiohttp")
        clock = Clock()
        runner = Runner(ep.url, dialect, transport, None, clock)
        try:
            prompt = Prompt("one two three four five six seven eight", None, n)
            recs = [RequestRecord(stage="0", i=i, scheduled=0.0, warmup=False) for i in range(3)]
            return list(await asyncio.gather(*(runner.send(rec, prompt) for rec in recs)))
        finally:
            await transport.aclose()


@pytest.mark.parametrize("server", list(SERVER_SPECS))
@pytest.mark.parametrize(("client", "api"), CLIENTS)
def test_client_dialect_against_simulated_server(server_specs, client, api, server):
    records = asyncio.run(_send(server_specs[server], client, api, 6))
    source = WORKS[(client, api)].get(server)
    if source is None:
        assert all(r.error == "http_4xx" and r.status in (404, 405, 422) for r in records), \
            [(r.error, r.status, r.errorDetail) for r in records]
        return
    assert all(r.error is None for r in records), [(r.error, r.errorDetail) for r in records]
    assert all(r.tokenSource == source for r in records)
    # ignore_eos / min_length / no-EOS servers: exactly the requested length, counted per chunk too
    assert all(r.outputTokens == 6 and sum(n for _, n in r.chunks) == 6 for r in records)
    assert all(r.first is not None and r.end >= r.first for r in records)
