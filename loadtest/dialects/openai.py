"""OpenAI-compatible streaming: ``/v1/completions`` and ``/v1/chat/completions`` (vLLM, TGI Messages API).

Token counts come from the final usage chunk (``stream_options.include_usage``). Tokens per chunk
come from the chunk's ``token_ids`` (vLLM's ``return_token_ids``): under load vLLM merges several
tokens into one chunk when the client reads slower than the engine decodes, so "one chunk = one
token" would be wrong. Servers without ``token_ids`` get one token per chunk that carries a
``text`` (completions) or a ``delta.content`` (chat), empty text included (a token ending
mid-character); the usage total then says whether that estimate held (``chunkTokenMismatch``).
The chat stream's first chunk, which only announces ``role: assistant``, is *not* content: TTFT is
taken at the first real token, not at the role announcement (vllm bench serve's known skew).
"""

from __future__ import annotations

from typing import Any

from .base import Dialect, Prompt, ProtocolError, StreamParser


class OpenAIParser(StreamParser):
    def __init__(self, prompt: Prompt, chat: bool):
        super().__init__(prompt)
        self.chat = chat

    def feed(self, data: str) -> int:
        return self.feed_many([data])

    def feed_many(self, events: list[str]) -> int:
        payloads = [e for e in events if e != "[DONE]" and e.strip() != "[DONE]"]
        if len(payloads) != len(events):
            self.done = True
        objs = self.load_many(payloads)
        if objs is not None:
            return sum(self._one(obj) for obj in objs)
        return sum(self._one(self.load(p)) for p in payloads)  # one by one: earlier events count

    def _one(self, obj: Any) -> int:
        if not isinstance(obj, dict):
            raise ProtocolError("invalid_json", f"expected an object, got {str(obj)[:120]}")
        choices = obj.get("choices")
        if obj.get("error") is not None and not choices:
            err = obj["error"]
            raise ProtocolError("server_error", str(err.get("message", err) if isinstance(err, dict) else err)[:300])
        usage = obj.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            self.output_tokens = int(usage["completion_tokens"])
            if usage.get("prompt_tokens") is not None:
                self.input_tokens = int(usage["prompt_tokens"])
            self.token_source = "usage"
        n = 0
        for choice in choices or ():
            if self.chat:
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content is None or (content == "" and "role" in delta and not choice.get("token_ids")):
                    continue  # role announcement or a finish-only chunk: no token
            elif "text" not in choice or choice.get("text") is None:
                continue
            ids = choice.get("token_ids")
            n += len(ids) if isinstance(ids, list) else 1
        self.chunk_tokens += n
        return n


class OpenAIDialect(Dialect):
    name = "openai"
    health_path = "/health"

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": prompt.output_len,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
        }
        if self.ignore_eos:
            # vLLM: ignore_eos; min_tokens also honoured by servers that lack ignore_eos.
            body["ignore_eos"] = True
            body["min_tokens"] = prompt.output_len
        # vLLM extension (ignored elsewhere): the token ids of each chunk, for exact tokens per chunk
        body["return_token_ids"] = True
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt.text}]
            return "/v1/chat/completions", body
        body["prompt"] = prompt.text
        return "/v1/completions", body

    def parser(self, prompt: Prompt) -> StreamParser:
        return OpenAIParser(prompt, chat=self.api == "chat")
