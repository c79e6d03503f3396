"""What every dialect shares: the simulation context, stream writers and request plumbing.

Token writes bypass aiohttp's async writer: the runtime emits a whole step's tokens in one
synchronous pass, writing each as an HTTP/1.1 chunk straight to the connection's transport (the
response headers went out, chunked, at ``prepare``). That keeps the per-token cost to a few
microseconds, which is what lets one core keep a thousand streams on schedule.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from stacks.spec import StackSpec

from ..engine import EngineError, Sequence
from ..runtime import Observer, Runtime, Stream
from ..tokens import token_text


@dataclass
class SimContext:
    spec: StackSpec
    runtime: Runtime
    seed: int
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def model(self) -> str:
        return self.spec.served_name

    @property
    def adapters(self) -> tuple[str, ...]:
        """The LoRA adapters' names: models the server answers to beside ``model``."""
        return self.spec.lora.names if self.spec.lora else ()


@dataclass
class Dialect:
    name: str
    routes: list[web.RouteDef]
    health_path: str
    observer: Observer
    render_metrics: Callable[[], str]
    metrics_path: str
    separate_metrics_port: bool  # True: metrics on their own port, as the real server
    #: the server's own key check: given the request and the key, the refusal to send, or None to serve it.
    #: None: the server has no authentication (JetStream), so a keyed stack cannot be simulated.
    guard: Callable[[web.Request, str], web.Response | None] | None = None


def bearer_ok(request: web.Request, key: str) -> bool:
    """``Authorization: Bearer <key>``, compared in constant time."""
    import hmac

    got = request.headers.get("Authorization", "")
    return hmac.compare_digest(got.encode(), f"Bearer {key}".encode())


def request_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class Choices:
    """The sequences of one request (``n`` choices share one response): the stream that finishes
    last writes the response's closing events."""

    def __init__(self, n: int):
        self.seqs: list[Sequence] = []
        self.remaining = n

    def last_done(self) -> bool:
        self.remaining -= 1
        return self.remaining == 0


class TokenStream(Stream):
    """Base stream: collects text (non-streaming) or writes chunks (streaming)."""

    finish_reason = "length"

    def __init__(self, ctx: SimContext, streaming: bool, index: int = 0, choices: Choices | None = None):
        self.ctx = ctx
        self.streaming = streaming
        self.index = index
        self.choices = choices or Choices(1)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.parts: list[str] = []
        self.reason = ""

    def text(self, seq: Sequence) -> str:
        return token_text(self.ctx.seed, seq.rid, seq.generated - 1)

    def write(self, data: bytes) -> bool:
        t = self.transport
        if t is None or t.is_closing():
            return False
        if data:  # an empty chunk would be the chunked body's terminator
            t.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True

    send = write

    def alive(self) -> bool:
        t = self.transport
        return not (t is None or t.is_closing())

    # dialects override these two for streaming
    def token_bytes(self, seq: Sequence, text: str) -> bytes:
        raise NotImplementedError

    def final_bytes(self, seq: Sequence, reason: str) -> bytes:
        return b""

    def prepare(self, seq: Sequence) -> bytes | None:
        text = self.text(seq)
        if not self.streaming:
            self.parts.append(text)
            return None
        data = self.token_bytes(seq, text)
        if seq.done and self.choices.last_done():
            data += self.final_bytes(seq, self.finish_reason)
        return data

    def finish(self, seq: Sequence, reason: str) -> None:
        self.reason = reason
        if reason == "disconnect" and self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(reason)


async def serve(request: web.Request, ctx: SimContext, stream: TokenStream | list[TokenStream], prompt_len: int,
                max_new: int, respond: Callable[[Sequence, str], web.StreamResponse],
                headers: dict[str, str] | None = None, adapter: str | None = None) -> web.StreamResponse:
    """Run one request through the engine (one sequence per choice); stream it, or answer at the end
    with ``respond(first sequence, its finish reason)`` (the streams hold every choice's text)."""
    runtime = ctx.runtime
    streams = stream if isinstance(stream, list) else [stream]
    streaming = streams[0].streaming
    if streaming:
        resp = web.StreamResponse(status=200, headers=headers or {"Content-Type": "text/event-stream; charset=utf-8",
                                                                  "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
    seqs = []
    for s in streams:
        s.transport = request.transport
        seq = runtime.submit(prompt_len, max_new, s, adapter)
        s.choices.seqs.append(seq)
        seqs.append(seq)
    try:
        reasons = [await s.done for s in streams]
    except asyncio.CancelledError:
        for seq in seqs:
            runtime.cancel(seq)
        raise
    if any(r in ("disconnect", "abort") for r in reasons):
        for seq in seqs:
            runtime.cancel(seq)
        # the connection is gone: nothing more can be sent
        raise asyncio.CancelledError
    if streaming:
        await resp.write_eof()
        return resp
    return respond(seqs[0], reasons[0])


def check_lengths(ctx: SimContext, prompt_len: int, max_new: int) -> str | None:
    """The engine's refusal message for a request, or None."""
    try:
        ctx.runtime.engine.check(prompt_len, max_new)
    except EngineError as exc:
        return str(exc)
    return None
