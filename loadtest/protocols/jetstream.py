"""JetStream's HTTP front end (jetstream/entrypoints/http): ``GET /``, ``GET /healthcheck``,
``POST /generate`` with ``{"prompt", "max_tokens", "stream"}``, and the orchestrator's metric names.

One home for the wire: the load tester's parser, the simulated JetStream and the test fixtures
use this module. The streaming body is a sequence of pretty-printed JSON objects written back to
back with no delimiter (``{"id", "time_created", "text"}`` per decoding step, i.e. one token each),
exactly as the front end's generator yields them; a plain request answers ``{"response": <text>}``.
There is no end marker, no token count, no sampling parameter (sampling is the server's setting)
and no way to ignore EOS: tokens are counted as objects (``tokenSource: chunks``) and the output can
be shorter than requested. A body that ends inside an object is ``truncated``. There is no
authentication. Metrics are on a separate port (9100, path ``/``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .base import Dialect, Prompt, ProtocolError, StreamParser, metrics_url_on_port
from .framing import Framer, JSONSeqFramer

ROOT_PATH = "/"
HEALTH_PATH = "/healthcheck"
GENERATE_PATH = "/generate"
METRICS_PORT = 9100
METRICS_PATH = "/"
DEFAULT_PROMPT = "This is an example prompt"  # the front end's request defaults
DEFAULT_MAX_TOKENS = 100

METRIC_ROLES: dict[str, tuple[str, ...]] = {
    "running": ("jetstream_slots_used_percentage",),
    "waiting": ("jetstream_prefill_backlog_size",),
    "kv_usage": (),
    "preemptions": (),
}


def pretty(obj: Any) -> bytes:
    """JetStream's FastAPI front end writes ``json.dumps(..., indent=4)``."""
    return json.dumps(obj, indent=4).encode()


def stream_object(rid: str, text: str) -> bytes:
    return pretty({"id": rid, "time_created": time.time(), "text": text})


def answer(text: str) -> bytes:
    return pretty({"response": text})


def error_body(message: str) -> dict[str, Any]:
    """FastAPI's HTTPException body."""
    return {"detail": message}


# -- client ----------------------------------------------------------------------------------------
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
    health_path = HEALTH_PATH

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        return GENERATE_PATH, self.with_extra({"prompt": prompt.text, "max_tokens": prompt.output_len,
                                               "stream": True})

    def parser(self, prompt: Prompt) -> StreamParser:
        return JetStreamParser(prompt)

    def framer(self) -> Framer:
        return JSONSeqFramer()

    def default_metrics_url(self, base_url: str) -> str:
        return metrics_url_on_port(base_url, METRICS_PORT, METRICS_PATH)
