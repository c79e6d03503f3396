"""A simulated server per protocol, served from a background thread so synchronous clients (the
official ones) can call it; started on 127.0.0.1 and a free port, stopped by its handle."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from loadtest.simulator.app import SimulatedEndpoint
from loadtest.simulator.calibration import build_spec
from stacks.spec import StackSpec

#: server kind -> a spec for it (small shapes; the timing is the performance model's)
SERVER_SPECS = {
    "vllm": ("a3-highgpu-1g", "llama-2-7b", "vllm"),
    "tgi": ("g2-standard-8", "llama-2-7b", "tgi"),
    "triton-trtllm": ("a2-ultragpu-1g", "llama-2-7b", "triton-trtllm"),
    "jetstream": ("ct5lp-hightpu-4t", "gemma-7b", "jetstream"),
}


@pytest.fixture(scope="session")
def server_specs() -> dict[str, StackSpec]:
    return {kind: build_spec(machine, model, "bf16", server, name=f"proto-{kind}")
            for kind, (machine, model, server) in SERVER_SPECS.items()}


@contextmanager
def served(spec: StackSpec, **kw: Any) -> Iterator[SimulatedEndpoint]:
    """The simulated endpoint on its own event loop thread, for the duration of the block."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            holder["ep"] = await SimulatedEndpoint(spec, port=0, **kw).start()

        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # reported to the test thread below
            holder["error"] = exc
        ready.set()
        if "ep" in holder:
            loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in holder:
        raise holder["error"]
    ep: SimulatedEndpoint = holder["ep"]
    try:
        yield ep
    finally:
        asyncio.run_coroutine_threadsafe(ep.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
