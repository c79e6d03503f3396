"""Hugging Face TGI: native ``POST /generate_stream`` (SSE), or its Messages API with ``--api chat``.

Native stream events are ``data:{"index":..,"token":{"id","text","logprob","special"},
"generated_text":null,"details":null}``; the last event carries ``generated_text`` and ``details``
(``finish_reason``, ``generated_tokens``, ``input_length``), which is the end marker and the token
count. A mid-stream failure is an event ``{"error": "...", "error_type": "..."}``.
TGI has no ``ignore_eos`` / minimum-tokens parameter: output lengths can be shorter than requested
when the model emits EOS; the recorded ``outputTokens`` says what was generated.
"""

from __future__ import annotations

from typing import Any

from .base import Dialect, Prompt, ProtocolError, StreamParser
from .openai import OpenAIParser


class TGIParser(StreamParser):
    def feed(self, data: str) -> int:
        obj = self.load(data)
        if not isinstance(obj, dict):
            raise ProtocolError("invalid_json", f"expected an object, got {data[:120]}")
        if obj.get("error") is not None:
            raise ProtocolError("server_error", f"{obj.get('error_type', '')}: {obj['error']}"[:300])
        n = 1 if isinstance(obj.get("token"), dict) else 0
        details = obj.get("details")
        if isinstance(details, dict) and details.get("generated_tokens") is not None:
            self.output_tokens = int(details["generated_tokens"])
            if details.get("input_length") is not None:
                self.input_tokens = int(details["input_length"])
            self.token_source = "details"
        if obj.get("generated_text") is not None:
            self.done = True
        self.chunk_tokens += n
        return n


class TGIDialect(Dialect):
    name = "tgi"
    health_path = "/health"

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        if self.api == "chat":
            return "/v1/chat/completions", {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt.text}],
                "max_tokens": prompt.output_len,
                "stream": True,
                "stream_options": {"include_usage": True},
                "temperature": 0.0,
            }
        return "/generate_stream", {
            "inputs": prompt.text,
            "parameters": {"max_new_tokens": prompt.output_len, "details": True, "do_sample": False},
        }

    def parser(self, prompt: Prompt) -> StreamParser:
        if self.api == "chat":
            return OpenAIParser(prompt, chat=True)
        return TGIParser(prompt)
