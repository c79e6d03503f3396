"""Served timing follows the model: token gaps, static batches, stalls, and the measured lag."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import aiohttp

from loadtest.simulator.app import SimulatedEndpoint
from loadtest.simulator.faults import parse_faults
from loadtest.simulator.perf_model import PerfModel


async def stream_times(http: aiohttp.ClientSession, url: str, body: dict) -> list[float]:
    """Arrival time of every SSE event of one streamed request."""
    times: list[float] = []
    async with http.post(url + "/v1/completions", json=body) as r:
        buf = b""
        async for chunk in r.content.iter_any():
            now = time.monotonic()
            buf += chunk
            times += [now] * chunk.count(b"data: ")
    return times


def test_token_gaps_follow_the_model(dialect_specs):
    spec = dialect_specs["openai"]
    perf = PerfModel(spec)
    expected_gap = perf.step_seconds(1, 1, 140, 139)

    async def main():
        async with SimulatedEndpoint(spec, port=0) as ep, aiohttp.ClientSession() as http:
            times = await stream_times(http, ep.url, {"prompt": list(range(128)), "max_tokens": 40, "stream": True})
            return times, ep.runtime.lag.stats()

    times, lag = asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the last event is [DONE]
    assert abs(statistics.median(gaps) - expected_gap) < 0.3 * expected_gap + 0.002
    assert lag.emitted == 40
    assert lag.p50_ms < 5


def test_static_batch_serves_requests_together(dialect_specs):
    spec = dialect_specs["openai"]

    async def main():
        async with SimulatedEndpoint(spec, port=0, static_batch=True, static_wait_s=0.05) as ep, \
                aiohttp.ClientSession() as http:
            body = {"prompt": list(range(64)), "max_tokens": 8, "stream": True}
            return await asyncio.gather(*(stream_times(http, ep.url, body) for _ in range(4)))

    runs = asyncio.run(main())
    firsts = [r[0] for r in runs]
    assert max(firsts) - min(firsts) < 0.02  # one prefill for the whole batch


def test_stalls_pause_the_engine(dialect_specs):
    spec = dialect_specs["openai"]

    async def main():
        async with SimulatedEndpoint(spec, port=0, faults=parse_faults("stall_rate=1,stall_s=0.05")) as ep, \
                aiohttp.ClientSession() as http:
            return await stream_times(http, ep.url, {"prompt": "x", "max_tokens": 5, "stream": True})

    times = asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(times[:5])]
    assert min(gaps) >= 0.045


def test_served_throughput_matches_predict(dialect_specs):
    from loadtest.simulator import Workload, predict

    spec = dialect_specs["openai"]
    clients, per_client = 8, 3

    async def main():
        async with SimulatedEndpoint(spec, port=0) as ep, aiohttp.ClientSession() as http:
            body = {"prompt": list(range(128)), "max_tokens": 32, "stream": True}

            async def client():
                for _ in range(per_client):
                    await stream_times(http, ep.url, body)

            t0 = time.monotonic()
            await asyncio.gather(*(client() for _ in range(clients)))
            return time.monotonic() - t0

    wall = asyncio.run(main())
    model = predict(spec, Workload(128, 32, mode="batch", concurrency=clients, requests=clients * per_client))
    served_tps = clients * per_client * 32 / wall
    assert abs(served_tps / model.output_tokens_per_s - 1) < 0.15
