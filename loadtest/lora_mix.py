"""``--lora-mix sql=0.5,chat=0.3,base=0.2``: traffic split across a server's LoRA adapters by weight.

Each prompt of the workload is given an adapter (or the base model, ``base``) by a seeded weighted
draw, so the same seed sends the same requests to the same adapters. An adapter is addressed as each
protocol module says: vLLM's OpenAI API by the request's ``model`` (it answers to each adapter's
name, ``stacks/lora.py``), TGI by ``parameters.adapter_id``; Triton and JetStream have no
per-request adapter in this project and are refused. Before anything is sent, the names are checked
against the server's own model list (vLLM's ``/v1/models``), so a typo fails with the names it serves
instead of a run of 404s; TGI lists none and silently answers an unknown adapter from the base
model, so there the names are checked against the stack's declared adapters. Each request
record carries its ``adapter`` (null for the base model), and the analysis reports per adapter.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace

from stacks.lora import BASE  # the mix's name for the base model, which no adapter may take

from .errors import BadInput, Unreachable
from .http import Transport
from .protocols import Dialect
from .setup_calls import call_with_retry
from .targets import Target, auth_headers
from .workloads import Workload

_TERM = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._/-]*)\s*=\s*([0-9]*\.?[0-9]+)\s*$")
FIX = "write e.g. --lora-mix sql=0.5,base=0.5 (adapter names as the stack declares them, weights adding up to 1)"


def parse_lora_mix(text: str | None) -> dict[str, float]:
    """``a=0.5,b=0.3,base=0.2`` -> {"a": 0.5, "b": 0.3, "base": 0.2}; weights must add up to 1."""
    if not text:
        return {}
    mix: dict[str, float] = {}
    for part in text.split(","):
        m = _TERM.match(part)
        if not m:
            raise BadInput(f"--lora-mix: {part.strip()!r} is not NAME=WEIGHT", FIX)
        name, weight = m.group(1), float(m.group(2))
        if name in mix:
            raise BadInput(f"--lora-mix: {name} is given twice", FIX)
        if weight <= 0:
            raise BadInput(f"--lora-mix: {name}'s weight must be above 0", FIX)
        mix[name] = weight
    total = sum(mix.values())
    if abs(total - 1) > 1e-6:
        raise BadInput(f"--lora-mix: the weights add up to {total:g}", FIX)
    return mix


def assign(workload: Workload, mix: dict[str, float], seed: int) -> None:
    """Give every prompt its adapter (None for the base model) by a seeded draw over the weights."""
    if not mix:
        return
    rng = random.Random(f"lora-mix-{seed}")
    names, weights = list(mix), list(mix.values())
    workload.prompts = [replace(p, adapter=None if pick == BASE else pick)
                        for p, pick in zip(workload.prompts, rng.choices(names, weights, k=len(workload.prompts)),
                                           strict=True)]


async def check_served(transport: Transport, target: Target, dialect: Dialect, mix: dict[str, float],
                       timeout: float) -> None:
    """Every adapter of the mix must be one the server serves: listed by the server where it lists
    them (vLLM's models), else declared by the stack (TGI lists none, and would answer an unknown
    adapter from the base model without a word). The dialect must address adapters per request."""
    if not dialect.per_request_adapter:
        raise BadInput(f"--lora-mix: the {dialect.name} protocol has no per-request LoRA adapter here",
                       "serve the adapters with vLLM or TGI (server.lora) and test its API")
    path = dialect.models_path
    if path is None:
        declared = ((target.spec or {}).get("server") or {}).get("lora")
        if declared is not None:
            names = [a["name"] for a in declared["adapters"]]
            unknown = [n for n in mix if n != BASE and n not in names]
            if unknown:
                raise BadInput(f"--lora-mix: the stack serves no adapter {', '.join(unknown)} (its adapters: "
                               f"{', '.join(names)}); {dialect.name} would answer it from the base model", FIX)
        return
    headers = auth_headers(target.api_key)
    url = target.base_url.rstrip("/") + path
    status, raw = await call_with_retry(f"GET {path}", lambda: transport.get(url, headers), timeout)
    try:
        served = [m["id"] for m in json.loads(raw)["data"]] if status == 200 else None
    except (ValueError, KeyError, TypeError):
        served = None
    if served is None:
        raise Unreachable(f"GET {path} answered HTTP {status} without a model list", "check the server's logs")
    adapters = [m for m in served if m != target.model]
    unknown = [n for n in mix if n != BASE and n not in adapters]
    if unknown:
        raise BadInput(f"--lora-mix: the server serves no adapter {', '.join(unknown)} (its adapters: "
                       f"{', '.join(adapters) or 'none'})", FIX)
