"""The OpenAI-compatible protocol as vLLM serves it: ``/v1/completions`` and ``/v1/chat/completions``.

One home for the wire: paths, request bodies, stream chunk shapes, the end marker, the token-count
rules and vLLM's metric names. The load tester's parser, the simulated vLLM server and the test
fixtures all build and read chunks through this module (vLLM's serving_completion.py /
serving_chat.py are the reference).

Client side. Token counts come from the final usage chunk (``stream_options.include_usage``).
Tokens per chunk come from the chunk's ``token_ids`` (vLLM's ``return_token_ids``): under load vLLM
merges several tokens into one chunk when the client reads slower than the engine decodes, so "one
chunk = one token" would be wrong. Servers without ``token_ids`` get one token per chunk that
carries a ``text`` (completions) or a ``delta.content`` (chat), empty text included (a token ending
mid-character); the usage total then says whether that estimate held (``chunkTokenMismatch``). The
chat stream's first chunk, which only announces ``role: assistant``, is *not* content: TTFT is
taken at the first real token, not at the role announcement (vllm bench serve's known skew).

Server side. One SSE event per engine output, ``data: [DONE]`` at the end; with
``include_usage`` a final ``choices: []`` chunk carries usage, and content chunks carry no
``usage`` key at all (vLLM serialises with ``exclude_unset``) unless ``continuous_usage_stats``.
With ``n > 1`` each choice streams under its own ``index``. vLLM's ``--api-key`` guards ``/v1/*``
only; a missing or wrong key is ``401 {"error": "Unauthorized"}``.
"""

from __future__ import annotations

import json
from typing import Any

from .base import Dialect, Prompt, ProtocolError, StreamParser
from .framing import SSE_DONE, sse_event

COMPLETIONS_PATH = "/v1/completions"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
TOKENIZE_PATH = "/tokenize"
HEALTH_PATH = "/health"
VERSION_PATH = "/version"
#: vLLM's API-key middleware checks only paths under this prefix
API_KEY_PREFIX = "/v1"
DONE = SSE_DONE
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # vLLM's legacy completions default

#: the server's metric names for each role the load tester summarises (first present wins)
METRIC_ROLES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "preemptions": ("vllm:num_preemptions_total", "vllm:num_preemptions"),
}


def error_body(status: int, message: str, kind: str = "BadRequestError", param: str | None = None) -> dict[str, Any]:
    """vLLM's ErrorResponse."""
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


UNAUTHORIZED_BODY = {"error": "Unauthorized"}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ChunkEncoder:
    """Builds one response's stream chunks. The fixed head of every chunk is encoded once, so a
    token chunk costs one ``json.dumps`` of its text (the simulator writes thousands per second)."""

    def __init__(self, rid: str, created: int, model: str, chat: bool, token_ids: bool = False,
                 fingerprint: str | None = None, role_in_delta: bool = False):
        self.chat = chat
        self.token_ids = token_ids
        self.head: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion",
                                     "created": created, "model": model}
        if fingerprint is not None:  # TGI's flavour
            self.head["system_fingerprint"] = fingerprint
        self._prefix = _dumps(self.head)[:-1] + b',"choices":[{"index":'
        delta = b',"delta":{"role":"assistant","content":' if role_in_delta else b',"delta":{"content":'
        self._content = delta if chat else b',"text":'

    def role(self, index: int = 0) -> bytes:
        """The chat stream's first event: the assistant role, no content token."""
        choice = {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                  "finish_reason": None}
        return sse_event(_dumps(dict(self.head, choices=[choice])))

    def token(self, text: str, index: int = 0, ids: list[int] | None = None, finish_reason: str | None = None,
              usage_now: dict[str, int] | None = None) -> bytes:
        """One content chunk: ``text`` (one or several tokens) for choice ``index``."""
        out = [self._prefix, b"%d" % index, self._content, json.dumps(text).encode()]
        if self.chat:
            out.append(b"}")
        out.append(b',"logprobs":null,"finish_reason":')
        out.append(b"null" if finish_reason is None else b'"%s"' % finish_reason.encode())
        out.append(b',"stop_reason":null')
        if self.token_ids and ids is not None:
            out.append(b',"token_ids":' + _dumps(ids))
        out.append(b"}]")
        if usage_now is not None:
            out.append(b',"usage":' + _dumps(usage_now))
        out.append(b"}")
        return sse_event(b"".join(out))

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return sse_event(_dumps(dict(self.head, choices=[], usage=usage(prompt_tokens, completion_tokens))))


# -- client ----------------------------------------------------------------------------------------
class OpenAIParser(StreamParser):
    def __init__(self, prompt: Prompt, chat: bool):
        super().__init__(prompt)
        self.chat = chat

    def feed(self, data: str) -> int:
        return self.feed_many([data])

    def feed_many(self, events: list[str]) -> int:
        """The events of one read, counted in one pass: one ``json.loads`` for all of them, and
        plain content chunks (no usage, no error) counted inline; anything else goes through
        ``_one``. A read of many events (a busy server, or a whole short answer at once) then costs
        little more than its parse."""
        if not events:
            return 0
        payloads = events[:-1] if events[-1] == "[DONE]" else events
        if len(payloads) != len(events):
            self.done = True
        joined = ",".join(payloads)
        if "[DONE]" in joined:  # a marker padded with spaces, or not last: filter event by event
            kept = [e for e in payloads if e.strip() != "[DONE]"]
            if len(kept) != len(payloads):
                self.done = True
            payloads, joined = kept, ",".join(kept)
        if not payloads:
            return 0
        try:
            objs = json.loads("[" + joined + "]")
        except ValueError:
            objs = None
        if objs is None or len(objs) != len(payloads):
            # one by one: the events before a bad one still count, and the error names it
            return sum(self._one(self.load(p)) for p in payloads)
        return self._count(objs)

    def _count(self, objs: list[Any]) -> int:
        """Content tokens in parsed chunks; ``chunk_tokens`` is kept current before anything can raise."""
        chat = self.chat
        total = n = 0
        for obj in objs:
            choices: Any = obj.get("choices") if obj.__class__ is dict else None
            if choices.__class__ is not list or "usage" in obj or "error" in obj:
                self.chunk_tokens += n  # counted before ``_one`` can raise
                total, n = total + n, 0
                total += self._one(obj)
                continue
            for choice in choices:
                if chat:
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content is None or (content == "" and "role" in delta and not choice.get("token_ids")):
                        continue  # role announcement or a finish-only chunk: no token
                elif choice.get("text") is None:
                    continue
                ids = choice.get("token_ids")
                n += len(ids) if ids.__class__ is list else 1
        self.chunk_tokens += n
        return total + n

    def _one(self, obj: Any) -> int:
        if not isinstance(obj, dict):
            raise ProtocolError("invalid_json", f"expected an object, got {str(obj)[:120]}")
        choices = obj.get("choices")
        if obj.get("error") is not None and not choices:
            err = obj["error"]
            raise ProtocolError("server_error", str(err.get("message", err) if isinstance(err, dict) else err)[:300])
        usage_ = obj.get("usage")
        if isinstance(usage_, dict) and usage_.get("completion_tokens") is not None:
            self.output_tokens = int(usage_["completion_tokens"])
            if usage_.get("prompt_tokens") is not None:
                self.input_tokens = int(usage_["prompt_tokens"])
            self.token_source = "usage"
        return self._count([{"choices": choices}]) if isinstance(choices, list) else 0


class OpenAIDialect(Dialect):
    name = "openai"
    health_path = HEALTH_PATH
    per_request_adapter = True
    models_path = MODELS_PATH  # vLLM lists its LoRA adapters there, each addressed by ``model``

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": prompt.adapter or self.model,
            "max_tokens": prompt.output_len,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        body.update(self.sampling.as_dict())
        if self.ignore_eos:
            # vLLM: ignore_eos; min_tokens also honoured by servers that lack ignore_eos.
            body["ignore_eos"] = True
            body["min_tokens"] = prompt.output_len
        # vLLM extension (ignored elsewhere): the token ids of each chunk, for exact tokens per chunk
        body["return_token_ids"] = True
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt.text}]
            path = CHAT_PATH
        else:
            body["prompt"] = prompt.text
            path = COMPLETIONS_PATH
        return path, self.with_extra(body)

    def parser(self, prompt: Prompt) -> StreamParser:
        return OpenAIParser(prompt, chat=self.api == "chat")

    def tokenize_request(self, text: str) -> tuple[str, dict[str, Any]]:
        """vLLM's ``/tokenize``: chat prompts are counted with the chat template applied."""
        if self.api == "chat":
            return TOKENIZE_PATH, {"model": self.model, "messages": [{"role": "user", "content": text}]}
        return TOKENIZE_PATH, {"model": self.model, "prompt": text}

    @staticmethod
    def token_count(reply: Any) -> int | None:
        return int(reply["count"]) if isinstance(reply, dict) and isinstance(reply.get("count"), int) else None
