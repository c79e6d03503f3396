"""JetStream's HTTP front end: ``POST /generate`` with ``{"prompt", "max_tokens", "stream": true}``.

The streaming body is a sequence of JSON objects written back to back with no delimiter
(``{"id", "time_created", "text"}`` per decoding step, i.e. one token each). There is no end marker,
no token count and no way to ignore EOS: tokens are counted as objects (``tokenSource: chunks``)
and the output can be shorter than requested. A body that ends inside an object is ``truncated``.
Metrics are on a separate port (9100, path ``/``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import Dialect, Framer, JSONSeqFramer, Prompt, ProtocolError, StreamParser


class JetStreamParser(StreamParser):
    def feed(self, data: str) -> int:
        obj = self.load(data)
        if not isinstance(obj, dict) or "text" not in obj:
            raise ProtocolError("invalid_json", f"expected an object with `text`, got {data[:120]}")
        self.chunk_tokens += 1
        return 1

    def finish(self) -> None:
        self.done = True


class JetStreamDialect(Dialect):
    name = "jetstream"
    health_path = "/healthcheck"

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        return "/generate", {"prompt": prompt.text, "max_tokens": prompt.output_len, "stream": True}

    def parser(self, prompt: Prompt) -> StreamParser:
        return JetStreamParser(prompt)

    def framer(self) -> Framer:
        return JSONSeqFramer()

    def default_metrics_url(self, base_url: str) -> str:
        parts = urlsplit(base_url)
        return urlunsplit((parts.scheme, f"{parts.hostname}:9100", "/", "", ""))
