"""The calls a run makes before it measures anything (readiness, ``/tokenize``), with retries.

A server under load, or one still starting, drops a connection now and then; a run must not die
on the first one. Each call is retried with exponential backoff (0.2 s doubling to 2 s) until a
deadline (``--setup-timeout``); then the run stops with one clear line and exit 3, never a traceback.
Retried: transport failures, 429 and 5xx. Any other status is an answer, returned to the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .errors import Unreachable
from .http import TransportError

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 2.0
DEFAULT_SETUP_TIMEOUT_S = 30.0


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def call_with_retry(what: str, call: Callable[[], Awaitable[tuple[int, bytes]]], timeout: float,
                          hint: str = "check that the server is up and not overloaded, or raise --setup-timeout"
                          ) -> tuple[int, bytes]:
    """``call()`` until it answers with a non-retryable status, or raise ``Unreachable`` after
    ``timeout`` seconds naming ``what`` and the last failure."""
    deadline = time.monotonic() + timeout
    delay = BACKOFF_START_S
    attempts = 0
    while True:
        attempts += 1
        try:
            status, body = await call()
            if not retryable(status):
                return status, body
            last = f"HTTP {status}"
        except TransportError as exc:
            last = str(exc)
        left = deadline - time.monotonic()
        if left <= 0:
            raise Unreachable(f"{what} failed {attempts} times in {timeout:g} s; last: {last}", hint)
        await asyncio.sleep(min(delay, left))
        delay = min(2 * delay, BACKOFF_MAX_S)
