"""The wire protocols, one module per server kind, shared by the load-test client, the simulator and
the test fixtures: paths, request and event shapes, end markers, token-count rules, metric roles.

``make_dialect`` picks a protocol's client side by name; ``METRIC_ROLES`` says, for every server
kind, which metric series play the roles the load tester summarises (running batch, queue, KV-cache
usage, preemptions).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..errors import BadInput
from . import jetstream, openai, tgi, triton
from .base import Dialect, Prompt, Sampling, StreamParser
from .framing import ProtocolError

PROTOCOLS: dict[str, ModuleType] = {"openai": openai, "tgi": tgi, "triton": triton, "jetstream": jetstream}
DIALECTS: dict[str, type[Dialect]] = {
    "openai": openai.OpenAIDialect,
    "tgi": tgi.TGIDialect,
    "triton": triton.TritonDialect,
    "jetstream": jetstream.JetStreamDialect,
}
#: which --api values each dialect serves
APIS: dict[str, tuple[str, ...]] = {
    "openai": ("completions", "chat"),
    "tgi": ("completions", "chat"),  # completions = native /generate_stream; chat = Messages API
    "triton": ("completions",),
    "jetstream": ("completions",),
}
ROLES = ("running", "waiting", "kv_usage", "preemptions")


def _merged_roles() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for role in ROLES:
        selectors: list[str] = []
        for module in PROTOCOLS.values():
            selectors += [s for s in module.METRIC_ROLES[role] if s not in selectors]
        out[role] = tuple(selectors)
    return out


#: role -> metric selectors (``family`` or ``family{label="value"}``) over every server kind
METRIC_ROLES: dict[str, tuple[str, ...]] = _merged_roles()


def make_dialect(name: str, model: str, api: str = "completions", ignore_eos: bool = True,
                 sampling: Sampling | None = None, extra_body: dict[str, Any] | None = None) -> Dialect:
    if name not in DIALECTS:
        raise BadInput(f'--dialect: unknown dialect "{name}"', f"use one of: {', '.join(DIALECTS)}")
    if api not in APIS[name]:
        raise BadInput(f"--api {api}: the {name} dialect serves only {', '.join(APIS[name])}",
                       f"use --api {APIS[name][0]}")
    if name == "jetstream" and sampling is not None and sampling.as_dict():
        raise BadInput(f"--temperature/--top-p/--top-k/--seed: JetStream's HTTP API takes no sampling parameters "
                       f"(got {', '.join(sampling.as_dict())})",
                       "drop them; sampling is set on the JetStream server")
    return DIALECTS[name](model, api=api, ignore_eos=ignore_eos, sampling=sampling, extra_body=extra_body)


__all__ = ["APIS", "DIALECTS", "METRIC_ROLES", "PROTOCOLS", "Dialect", "Prompt", "ProtocolError", "Sampling",
           "StreamParser", "make_dialect"]
