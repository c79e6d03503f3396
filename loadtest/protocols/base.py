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
from urllib.parse import urlsplit, urlunsplit

from .framing import Framer, ProtocolError, SSEFramer


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters the user asked for; None leaves each to the server's default, as
    ``vllm bench serve`` and guidellm do. Each dialect maps them to its server's field names."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None

    def as_dict(self, seed_key: str = "seed") -> dict[str, float | int]:
        """The parameters set, by their common names (``seed_key`` renames the seed, e.g. Triton's
        ``random_seed``)."""
        return {k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p), ("top_k", self.top_k),
                                  (seed_key, self.seed)) if v is not None}


@dataclass(frozen=True)
class Prompt:
    """One request's input: the text, its exact token count when known, and the output length wanted.

    ``input_estimate`` is the workload's own guess of the input length (one token per synthetic
    word, four characters per token for datasets), recorded when no exact count exists."""

    text: str
    input_tokens: int | None
    output_len: int
    input_estimate: int | None = None
    adapter: str | None = None  # the LoRA adapter to ask (``--lora-mix``); None: the base model


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


class Dialect(ABC):
    """One server protocol's client side. ``api`` is "completions" or "chat" where the server has both.

    ``extra_body`` is merged into every request body last (``--extra-body``), so a user can pass any
    server parameter this module does not know, or override one it sets.
    """

    name: str
    #: readiness path used when the stack outputs do not name one
    health_path: str = "/health"
    #: the protocol addresses a LoRA adapter per request (``Prompt.adapter``); without it ``--lora-mix``
    #: is refused
    per_request_adapter: bool = False
    #: where the server lists the models it answers to, LoRA adapters included; None: no such list
    #: (the mix is then checked against the stack's declared adapters)
    models_path: str | None = None

    def __init__(self, model: str, api: str = "completions", ignore_eos: bool = True,
                 sampling: Sampling | None = None, extra_body: dict[str, Any] | None = None):
        self.model = model
        self.api = api
        self.ignore_eos = ignore_eos
        self.sampling = sampling or Sampling()
        self.extra_body = extra_body or {}

    @abstractmethod
    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) for one streaming request."""

    @abstractmethod
    def parser(self, prompt: Prompt) -> StreamParser: ...

    def framer(self) -> Framer:
        return SSEFramer()

    def with_extra(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with ``--extra-body`` merged in (nested objects merged one level deep)."""
        for key, value in self.extra_body.items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = value
        return body

    def tokenize_request(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """(path, body) asking the server to count ``text``'s tokens as it will for a request; None
        when the protocol has no such route."""
        return None

    @staticmethod
    def token_count(reply: Any) -> int | None:
        """The count in the tokenize route's reply."""
        return None

    def default_metrics_url(self, base_url: str) -> str:
        """Where this server kind exposes Prometheus metrics, relative to its API base URL."""
        return base_url.rstrip("/") + "/metrics"


def metrics_url_on_port(base_url: str, port: int, path: str) -> str:
    """The base URL's host on another port: Triton's and JetStream's metrics listen apart."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, f"{parts.hostname}:{port}", path, "", ""))
