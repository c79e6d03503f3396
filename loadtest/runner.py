"""Sends one request through a dialect and records what happened, whatever happens.

``send`` never raises for anything the server or the network does: every outcome becomes the
record's ``error`` class, with the tokens received so far kept. It writes the record before
returning (or before re-raising a cancellation), which is why the number of records always equals
the number of requests sent. No retries: a retry would hide the failure and distort latency.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from stacks.secret_values import scrub

from .clock import Clock
from .http import Response, Transport, TransportError
from .protocols import Dialect, Prompt, ProtocolError, StreamParser
from .protocols.framing import Framer
from .records import RequestRecord, error_for_status
from .results import ResultsWriter


class Runner:
    def __init__(self, base_url: str, dialect: Dialect, transport: Transport, writer: ResultsWriter | None,
                 clock: Clock, *, api_key: str | None = None, request_timeout: float = 600.0,
                 on_sent: Callable[[RequestRecord], None] | None = None,
                 on_done: Callable[[RequestRecord], None] | None = None, headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.dialect = dialect
        self.transport = transport
        self.writer = writer
        self.clock = clock
        self.request_timeout = request_timeout
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **(headers or {})}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        # what no record may contain: the key, and every extra header's value
        self._secrets = [v for v in (api_key, *(headers or {}).values()) if v]
        self.on_sent = on_sent
        self.on_done = on_done
        self.sent = 0
        self.done = 0

    async def send(self, rec: RequestRecord, prompt: Prompt) -> RequestRecord:
        path, body = self.dialect.request(prompt)
        payload = json.dumps(body).encode()
        parser = self.dialect.parser(prompt)
        framer = self.dialect.framer()
        now = self.clock.now
        rec.inputTokensExpected = prompt.input_tokens
        rec.outputTokensRequested = prompt.output_len
        rec.adapter = prompt.adapter
        self.sent += 1
        rec.sent = now()
        if self.on_sent:
            self.on_sent(rec)
        try:
            async with asyncio.timeout(self.request_timeout):
                async with self.transport.stream(self.base_url + path, payload, self.headers) as resp:
                    rec.status = resp.status
                    if resp.status != 200:
                        rec.error = error_for_status(resp.status)
                        rec.errorDetail = (await resp.read(500)).decode("utf-8", "replace")
                    else:
                        await self._read_stream(rec, resp, framer, parser)
        except ProtocolError as exc:
            rec.error, rec.errorDetail = exc.kind, exc.detail or None
        except TransportError as exc:
            rec.error, rec.errorDetail = exc.kind, exc.detail or None
        except TimeoutError:
            rec.error, rec.errorDetail = "timeout", f"no complete response within {self.request_timeout:g} s"
        except asyncio.CancelledError:
            rec.error = "cancelled"
            self._finish(rec, parser, prompt.input_estimate)
            raise
        except Exception as exc:  # any other failure is still a record, never a lost request
            rec.error, rec.errorDetail = "reset", f"{type(exc).__name__}: {exc}"
        self._finish(rec, parser, prompt.input_estimate)
        return rec

    async def _read_stream(self, rec: RequestRecord, resp: Response, framer: Framer, parser: StreamParser) -> None:
        """One timestamp per read: the events of one read arrived together, as one chunk."""
        now = self.clock.now
        origin = self.clock.origin
        chunks = rec.chunks
        recorded = 0
        t = now()
        try:
            async for arrived, data in resp.timed_chunks():
                t = arrived - origin
                events = framer.feed(data)
                if events and (n := parser.feed_many(events)):
                    if rec.first is None:
                        rec.first = t
                    chunks.append((t, n))
                    recorded += n
            t = rec.end = now()
            events = framer.close()
            if events and (n := parser.feed_many(events)):
                if rec.first is None:
                    rec.first = t
                chunks.append((t, n))
                recorded += n
        except ProtocolError:
            # tokens parsed from the same read before the bad event still arrived: keep them
            if (pending := parser.chunk_tokens - recorded) > 0:
                if rec.first is None:
                    rec.first = t
                chunks.append((t, pending))
            raise
        parser.finish()

    def _finish(self, rec: RequestRecord, parser: StreamParser, estimate: int | None = None) -> None:
        if rec.end is None:
            rec.end = self.clock.now()
        if parser.output_tokens is not None and rec.error is None:
            rec.outputTokens = parser.output_tokens
            rec.tokenSource = parser.token_source
        else:
            rec.outputTokens = parser.chunk_tokens
            rec.tokenSource = "chunks"
        if rec.errorDetail:  # a server may echo the request's headers back in its error
            rec.errorDetail = scrub(rec.errorDetail, *self._secrets)
        rec.inputTokens = parser.input_tokens if parser.input_tokens is not None else rec.inputTokensExpected
        if rec.inputTokens is None and estimate is not None:
            rec.inputTokens, rec.inputTokensEstimated = estimate, True
        self.done += 1
        if self.writer is not None:
            self.writer.write_request(rec)
        if self.on_done:
            self.on_done(rec)
