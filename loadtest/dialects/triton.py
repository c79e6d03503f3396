"""NVIDIA Triton (TensorRT-LLM ensemble or BLS): ``POST /v2/models/<model>/generate_stream`` (SSE).

The body names the ensemble's inputs (``text_input``, ``max_tokens``, ``stream``); ``min_length``
= the requested length makes TensorRT-LLM ignore EOS, so lengths are exact. Each event is one
decoding step's response, ``{"model_name", "model_version", "text_output", ...}``, i.e. one token;
errors arrive as ``{"error": "..."}``. The protocol has no end marker and no token count: the
stream ends when the body ends, and tokens are counted as events (``tokenSource: chunks``). With
``min_length`` sent, a clean end with fewer tokens than requested is recorded as ``truncated``.
Metrics are on a separate port (8002).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import Dialect, Prompt, ProtocolError, StreamParser


class TritonParser(StreamParser):
    def __init__(self, prompt: Prompt, exact: bool):
        super().__init__(prompt)
        self.exact = exact

    def feed(self, data: str) -> int:
        obj = self.load(data)
        if not isinstance(obj, dict):
            raise ProtocolError("invalid_json", f"expected an object, got {data[:120]}")
        if obj.get("error") is not None:
            raise ProtocolError("server_error", str(obj["error"])[:300])
        if "text_output" not in obj:
            raise ProtocolError("invalid_json", f"no text_output in {data[:120]}")
        self.chunk_tokens += 1
        return 1

    def finish(self) -> None:
        self.done = True
        if self.exact and self.chunk_tokens < self.prompt.output_len:
            raise ProtocolError("truncated", f"{self.chunk_tokens} of {self.prompt.output_len} tokens "
                                "before the body ended")


class TritonDialect(Dialect):
    name = "triton"
    health_path = "/v2/health/ready"

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "text_input": prompt.text,
            "max_tokens": prompt.output_len,
            "stream": True,
            "bad_words": "",
            "stop_words": "",
            "temperature": 0.0,
        }
        if self.ignore_eos:
            body["min_length"] = prompt.output_len
        return f"/v2/models/{self.model}/generate_stream", body

    def parser(self, prompt: Prompt) -> StreamParser:
        return TritonParser(prompt, exact=self.ignore_eos)

    def default_metrics_url(self, base_url: str) -> str:
        parts = urlsplit(base_url)
        return urlunsplit((parts.scheme, f"{parts.hostname}:8002", "/metrics", "", ""))
