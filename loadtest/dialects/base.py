"""What every API dialect provides: how to ask for N tokens, and how to read the stream back.

A dialect is stateless; per request it hands out a fresh ``StreamParser``. The runner feeds the
parser one *event* at a time (an SSE ``data:`` payload, or one JSON object for servers that stream
bare concatenated JSON) and the parser says how many output tokens that event carried. Everything
protocol-specific lives in the dialect modules; the runner only times bytes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One request's input: the text, its exact token count when known, and the output length wanted."""

    text: str
    input_tokens: int | None
    output_len: int


class ProtocolError(Exception):
    """The stream broke the protocol's promise; ``kind`` is the record's error class."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class StreamParser(ABC):
    """Per-request parser state. ``feed`` returns the number of output tokens the event carried."""

    #: how token counts were obtained: "usage" | "details" | "chunks" (docs/metrics.md)
    token_source: str = "chunks"

    def __init__(self, prompt: Prompt):
        self.prompt = prompt
        self.done = False  # the protocol's end marker was seen
        self.input_tokens: int | None = None  # from the server, when it says
        self.output_tokens: int | None = None  # from the server, when it says
        self.chunk_tokens = 0  # sum of what ``feed`` returned

    @abstractmethod
    def feed(self, data: str) -> int:
        """Consume one event payload; raise ``ProtocolError`` on a bad event."""

    def feed_many(self, events: list[str]) -> int:
        """Consume the events that arrived in one read (they share one arrival time)."""
        return sum(self.feed(e) for e in events)

    def load_many(self, payloads: list[str]) -> list[Any] | None:
        """Parse several JSON payloads with one C-level ``json.loads`` (a JSON array of them).

        At high request rates one read often holds many events; parsing them as one array costs
        one call instead of one per event. Returns None when a payload is not exactly one JSON
        value (the array breaks, or its length differs): the caller then parses one by one, so the
        events before the bad one still count and the error names the bad payload.
        """
        if len(payloads) > 1:
            try:
                objs = json.loads("[" + ",".join(payloads) + "]")
            except ValueError:
                return None
            return objs if len(objs) == len(payloads) else None
        return None

    def finish(self) -> None:
        """Called when the body ended cleanly; raise ``ProtocolError('truncated')`` if incomplete."""
        if not self.done:
            raise ProtocolError("truncated", "the stream ended without the protocol's end marker")

    @staticmethod
    def load(data: str) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise ProtocolError("invalid_json", data[:200]) from None


class Framer(ABC):
    """Cuts the byte stream into event payloads."""

    @abstractmethod
    def feed(self, data: bytes) -> list[str]: ...

    @abstractmethod
    def close(self) -> list[str]:
        """Payloads still buffered when the body ends (an unterminated event counts, if complete)."""


class SSEFramer(Framer):
    """Server-sent events: ``data:`` lines, an event ends at a blank line.

    Comment lines (``:``), ``event:``, ``id:`` and ``retry:`` fields are ignored. A ``data:`` line
    that is not followed by a blank line before the body ends is still delivered by ``close`` (some
    servers omit the final blank line) so the parser can judge it. The common shape, one
    ``data:`` line per event and ``\n\n`` between events, takes a fast path (one split per read).
    """

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[str]:
        buf = self._buf + data
        if b"\n\n" not in buf:
            if b"\r" not in buf:
                self._buf = buf
                return []
        elif b"\r" not in buf and not self._data:
            *events, self._buf = buf.split(b"\n\n")
            out: list[str] = []
            for ev in events:
                if ev.startswith(b"data:") and b"\n" not in ev:
                    value = ev[5:]
                    out.append((value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace"))
                else:
                    out.extend(self._lines(ev + b"\n\n"))
            return out
        self._buf = b""
        return self._lines(buf)

    def _lines(self, buf: bytes) -> list[str]:
        *lines, self._buf = buf.split(b"\n")
        out: list[str] = []
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if self._data:
                    out.append("\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append((value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace"))
        return out

    def close(self) -> list[str]:
        out = self._lines(self._buf + b"\n\n") if self._buf else []
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
        return out


class JSONSeqFramer(Framer):
    """Concatenated JSON objects with no delimiter (JetStream's HTTP server streams ``{..}{..}``)."""

    def __init__(self) -> None:
        self._buf = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[str]:
        self._buf += data.decode("utf-8", "replace")
        out: list[str] = []
        while True:
            stripped = self._buf.lstrip()
            if not stripped:
                self._buf = ""
                return out
            try:
                _, end = self._decoder.raw_decode(stripped)
            except ValueError:
                self._buf = stripped
                if stripped[0] not in "{[":
                    raise ProtocolError("invalid_json", stripped[:200]) from None
                return out  # incomplete object: wait for more bytes
            out.append(stripped[:end])
            self._buf = stripped[end:]

    def close(self) -> list[str]:
        rest = self._buf.strip()
        self._buf = ""
        if rest:
            raise ProtocolError("truncated", f"the body ended inside a JSON object: {rest[:120]}")
        return []


class Dialect(ABC):
    """One server protocol. ``api`` is "completions" or "chat" where the server has both."""

    name: str
    #: readiness path used when the stack outputs do not name one
    health_path: str = "/health"

    def __init__(self, model: str, api: str = "completions", ignore_eos: bool = True):
        self.model = model
        self.api = api
        self.ignore_eos = ignore_eos

    @abstractmethod
    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) for one streaming request."""

    @abstractmethod
    def parser(self, prompt: Prompt) -> StreamParser: ...

    def framer(self) -> Framer:
        return SSEFramer()

    def default_metrics_url(self, base_url: str) -> str:
        """Where this server kind exposes Prometheus metrics, relative to its API base URL."""
        return base_url.rstrip("/") + "/metrics"
