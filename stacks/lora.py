"""LoRA adapters served beside the base model (``gke-llm-bench:server.lora``): what they are, what the
server must support, and what they cost in accelerator memory.

vLLM serves adapters per request (``--enable-lora``, ``--lora-modules name=source``, each name then
answers as a model of the OpenAI API), mixes up to ``--max-loras`` of them in one batch, and
preallocates, for each of those slots, the A and B matrices of every LoRA-able projection at
``--max-lora-rank`` (vLLM's ``LoRAConfig``; docs.vllm.ai "LoRA Adapters"). That preallocation is
taken before the KV cache is sized, so it is counted here and the sizing subtracts it.

TGI loads every adapter at startup (``--lora-adapters``) and selects one per request by
``adapter_id``. It serves a Hub adapter under its repo id (``name=path`` only for a local path), so
a TGI adapter from the Hub must be named by its source; all of them are resident (no slots: maxLoras
is the adapter count), each at most ``maxRank``.

One place gives these knobs their meaning: the translator spells them as flags, the sizing charges
their memory, the simulated endpoint serves the adapter names and the performance model charges
their FLOPs and reads (``loadtest/simulator/perf_model.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .catalog import ModelArch, ServerKind
from .config import LoraConfig
from .errors import SpecError

#: vLLM's ``LoRAConfig.possible_max_ranks`` (vllm/config: "Setting the maximum rank to 512 should be able
#: to satisfy the vast majority of applications")
MAX_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
#: the load tester's name for requests to the base model in ``--lora-mix``
BASE = "base"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")  # a Hub repo id is a name too (TGI serves it so)
LORA_BYTES_PER_PARAM = 2  # adapters are held in the activation dtype (16-bit)


@dataclass(frozen=True)
class LoraAdapter:
    name: str  # the model name requests use
    source: str  # the Hugging Face repo (or a path the server can read) it is loaded from


@dataclass(frozen=True)
class LoraSpec:
    adapters: tuple[LoraAdapter, ...]
    max_rank: int
    max_loras: int  # adapters one batch may mix (vLLM --max-loras)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.adapters)

    def as_dict(self) -> dict[str, object]:
        return {"adapters": [{"name": a.name, "source": a.source} for a in self.adapters],
                "maxRank": self.max_rank, "maxLoras": self.max_loras}


def params_per_rank(model: ModelArch) -> int:
    """LoRA parameters per unit of rank across the model: each adapted projection W (d_in x d_out)
    gets A (d_in x r) and B (r x d_out), r (d_in + d_out); vLLM adapts q, k, v, o and the MLP's
    gate, up and down projections of every layer."""
    h, q, kv, f = model.hidden, model.heads * model.head_dim, model.kv_heads * model.head_dim, model.ffn
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + f) + (f + h)
    return per_layer * model.layers


def lora_bytes(model: ModelArch, lora: LoraSpec) -> float:
    """Accelerator memory vLLM preallocates for the adapters: every slot at the maximum rank."""
    return lora.max_loras * lora.max_rank * params_per_rank(model) * LORA_BYTES_PER_PARAM


def resolve_lora(cfg: LoraConfig | None, server: ServerKind | None, served_name: str,
                 key: str) -> tuple[LoraSpec | None, list[SpecError]]:
    """The stack's adapters, or every reason they cannot be served (``key``: ``gke-llm-bench:server.lora``)."""
    if cfg is None:
        return None, []
    errors: list[SpecError] = []
    if server is not None and not server.lora:
        errors.append(SpecError(key, f"{server.name} does not serve LoRA adapters in this project",
                                "use server.kind vllm or tgi, or merge the adapter into the checkpoint (model.hfId)"))
    if not cfg.adapters:
        errors.append(SpecError(f"{key}.adapters", "is empty", "list at least one {name, source}, or drop `lora`"))
    seen: set[str] = set()
    for i, a in enumerate(cfg.adapters):
        where = f"{key}.adapters[{i}].name"
        if not _NAME.match(a.name):
            errors.append(SpecError(where, f'"{a.name}" is not a usable model name',
                                    "letters, digits, '.', '_', '-' and '/', at most 128 characters"))
        elif a.name in seen:
            errors.append(SpecError(where, f'"{a.name}" is given twice', "give each adapter its own name"))
        elif a.name in (served_name, BASE):
            errors.append(SpecError(where, f'"{a.name}" is the base model\'s name',
                                    "name the adapter after what it does (e.g. sql)"))
        seen.add(a.name)
        if not a.source.strip():
            errors.append(SpecError(f"{key}.adapters[{i}].source", "is empty",
                                    "give the adapter's Hugging Face repo id, e.g. yard1/llama-2-7b-sql-lora-test"))
    if cfg.max_rank not in MAX_RANKS:
        errors.append(SpecError(f"{key}.maxRank", f"{cfg.max_rank} is not a rank vLLM accepts",
                                f"use one of {', '.join(map(str, MAX_RANKS))} (at least the adapters' own rank r)"))
    if server is not None and server.name == "tgi":
        for i, a in enumerate(cfg.adapters):
            if not a.source.startswith("/") and a.name != a.source:
                errors.append(SpecError(f"{key}.adapters[{i}].name", f'"{a.name}": TGI serves a Hub adapter under '
                                        f'its repo id, "{a.source}"', f"name it {a.source} (or give a local path "
                                        "as its source)"))
        if cfg.max_loras is not None and cfg.max_loras != len(cfg.adapters):
            errors.append(SpecError(f"{key}.maxLoras", "TGI keeps every adapter resident and mixes them freely",
                                    "drop maxLoras for TGI"))
    max_loras = cfg.max_loras or len(cfg.adapters)
    if cfg.adapters and max_loras > len(cfg.adapters):
        errors.append(SpecError(f"{key}.maxLoras", f"{max_loras} slots for {len(cfg.adapters)} adapter(s)",
                                f"at most {len(cfg.adapters)}: extra slots only take memory from the KV cache"))
    if errors:
        return None, errors
    adapters = tuple(LoraAdapter(a.name, a.source.strip()) for a in cfg.adapters)
    return LoraSpec(adapters, cfg.max_rank, max_loras), []
