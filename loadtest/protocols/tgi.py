"""Hugging Face TGI's protocol: native ``/generate`` and ``/generate_stream``, the compat ``POST /``,
the OpenAI-style Messages and Completions APIs, SageMaker's ``/invocations``, and TGI's metric names.

One home for the wire (the router's server.rs is the reference): the load tester's parser, the
simulated TGI and the test fixtures build and read events through this module.

Native stream events are ``data:{"index":..,"token":{"id","text","logprob","special"},
"generated_text":null,"details":null,"top_tokens":null}`` (TGI writes no space after ``data:``); the
last event carries ``generated_text`` and ``details`` (``finish_reason``, ``generated_tokens``,
``input_length``, ``seed``), which is the end marker and the token count. A mid-stream failure is
an event ``{"error": "...", "error_type": "..."}``. ``POST /`` switches on ``stream``: streaming is
``/generate_stream``, otherwise the ``/generate`` answer wrapped in a one-element list (the Inference
API's shape, which ``text_generation.Client`` and ``huggingface_hub.InferenceClient`` read).
TGI has no ``ignore_eos`` / minimum-tokens parameter: output lengths can be shorter than requested
when the model emits EOS; the recorded ``outputTokens`` says what was generated. With
``--api-key`` every generation route answers a bare 401 without ``Authorization: Bearer <key>``;
``/health``, ``/info``, ``/metrics`` and ``GET /`` stay open (the probes use them).
"""

from __future__ import annotations

import json
from typing import Any

from .base import Dialect, Prompt, ProtocolError, StreamParser
from .framing import sse_event
from .openai import CHAT_PATH, OpenAIParser

GENERATE_PATH = "/generate"
GENERATE_STREAM_PATH = "/generate_stream"
COMPAT_PATH = "/"
INVOCATIONS_PATH = "/invocations"
INFO_PATH = "/info"
TOKENIZE_PATH = "/tokenize"
HEALTH_PATH = "/health"
DEFAULT_MAX_NEW_TOKENS = 100  # TGI's default when parameters.max_new_tokens is absent
#: routes outside the API-key middleware
OPEN_PATHS = ("/", HEALTH_PATH, "/ping", INFO_PATH, "/metrics")

METRIC_ROLES: dict[str, tuple[str, ...]] = {
    "running": ("tgi_batch_current_size",),
    "waiting": ("tgi_queue_size",),
    "kv_usage": (),
    "preemptions": (),
}


def error_body(message: str, kind: str = "validation") -> dict[str, Any]:
    """TGI's ErrorResponse (``error_type``: validation, overloaded, generation, ...)."""
    return {"error": message, "error_type": kind}


def stream_event(index: int, token_id: int, text: str, generated_text: str | None = None,
                 details: dict[str, Any] | None = None) -> bytes:
    """One ``/generate_stream`` event; the last one carries ``generated_text`` (and ``details``)."""
    ev = {"index": index, "token": {"id": token_id, "text": text, "logprob": -0.5, "special": False},
          "generated_text": generated_text, "details": details, "top_tokens": None}
    return sse_event(json.dumps(ev, separators=(",", ":")).encode(), space=False)


def error_event(message: str, kind: str = "generation") -> bytes:
    return sse_event(json.dumps(error_body(message, kind), separators=(",", ":")).encode(), space=False)


def stream_details(finish_reason: str, generated_tokens: int, input_length: int) -> dict[str, Any]:
    return {"finish_reason": finish_reason, "generated_tokens": generated_tokens, "input_length": input_length,
            "seed": None}


def generate_answer(text: str, finish_reason: str, generated_tokens: int, input_length: int,
                    details: bool) -> dict[str, Any]:
    """The non-streaming ``/generate`` answer."""
    out: dict[str, Any] = {"generated_text": text}
    if details:
        out["details"] = {"finish_reason": finish_reason, "generated_tokens": generated_tokens, "seed": None,
                          "input_length": input_length, "prefill": [], "tokens": [], "top_tokens": [],
                          "best_of_sequences": None}
    return out


def invocation_kind(body: dict[str, Any]) -> str:
    """Which API a SageMaker ``/invocations`` body is for: "generate", "chat" or "completions"."""
    if "messages" in body:
        return "chat"
    if "prompt" in body:
        return "completions"
    return "generate"


# -- client ----------------------------------------------------------------------------------------
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
    health_path = HEALTH_PATH
    #: TGI picks a resident LoRA adapter by ``parameters.adapter_id`` (the Messages API: by ``model``);
    #: it lists none, and answers an unknown one from the base model
    per_request_adapter = True

    def request(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        s = self.sampling.as_dict()
        if self.api == "chat":
            return CHAT_PATH, self.with_extra({
                "model": prompt.adapter or self.model,
                "messages": [{"role": "user", "content": prompt.text}],
                "max_tokens": prompt.output_len,
                "stream": True,
                "stream_options": {"include_usage": True},
                **s,
            })
        params: dict[str, Any] = {"max_new_tokens": prompt.output_len, "details": True}
        if prompt.adapter is not None:
            params["adapter_id"] = prompt.adapter
        if s:
            params.update(s)
            params["do_sample"] = True  # TGI samples only when asked; greedy otherwise
        return GENERATE_STREAM_PATH, self.with_extra({"inputs": prompt.text, "parameters": params})

    def parser(self, prompt: Prompt) -> StreamParser:
        if self.api == "chat":
            return OpenAIParser(prompt, chat=True)
        return TGIParser(prompt)

    def tokenize_request(self, text: str) -> tuple[str, dict[str, Any]] | None:
        if self.api == "chat":
            return None  # TGI's /tokenize takes raw inputs, without the chat template
        return TOKENIZE_PATH, {"inputs": text}

    @staticmethod
    def token_count(reply: Any) -> int | None:
        return len(reply) if isinstance(reply, list) else None


