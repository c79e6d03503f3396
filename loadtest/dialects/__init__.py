"""API dialects, one module per server protocol; ``make_dialect`` picks one by name."""

from __future__ import annotations

from ..errors import BadInput
from .base import Dialect, Prompt, ProtocolError, StreamParser
from .jetstream import JetStreamDialect
from .openai import OpenAIDialect
from .tgi import TGIDialect
from .triton import TritonDialect

DIALECTS: dict[str, type[Dialect]] = {
    "openai": OpenAIDialect,
    "tgi": TGIDialect,
    "triton": TritonDialect,
    "jetstream": JetStreamDialect,
}
#: which --api values each dialect serves
APIS: dict[str, tuple[str, ...]] = {
    "openai": ("completions", "chat"),
    "tgi": ("completions", "chat"),  # completions = native /generate_stream; chat = Messages API
    "triton": ("completions",),
    "jetstream": ("completions",),
}


def make_dialect(name: str, model: str, api: str = "completions", ignore_eos: bool = True) -> Dialect:
    if name not in DIALECTS:
        raise BadInput(f'--dialect: unknown dialect "{name}"', f"use one of: {', '.join(DIALECTS)}")
    if api not in APIS[name]:
        raise BadInput(f"--api {api}: the {name} dialect serves only {', '.join(APIS[name])}",
                       f"use --api {APIS[name][0]}")
    return DIALECTS[name](model, api=api, ignore_eos=ignore_eos)


__all__ = ["APIS", "DIALECTS", "Dialect", "Prompt", "ProtocolError", "StreamParser", "make_dialect"]
