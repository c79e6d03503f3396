"""The guide's recommendations 1-3 as arithmetic: weight memory, the 80/20 fit rule, KV capacity,
tensor-parallel choice, and the cheapest alternatives when a model does not fit.

Units are explicit everywhere: ``*_bytes`` are bytes, ``GB`` is 10**9 bytes (what GPU datasheets
and the guide use: "7B x 2 bytes = 14 GB"), ``GiB`` is 2**30 bytes (what nvidia-smi and vLLM's logs
show: 14 GB = 13.04 GiB). The simulated endpoint reads KV capacity from ``Sizing`` rather than
estimating it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .catalog import Catalog, Chip, MachineType, ModelArch, ServerKind
from .precision import KV_CACHE_BYTES, PRECISIONS, Precision

GB = 10**9
GiB = 2**30
WEIGHT_SHARE_LIMIT = 0.80  # the guide: at most 80 % of accelerator memory for weights
KV_SHARE_FLOOR = 0.20  # the guide: keep >= 20 % for the KV cache (up to 35 % for long contexts)
KV_SHARE_LONG_CONTEXT = 0.35
WORKSPACE_BYTES_PER_CHIP = 1 * GiB  # CUDA context, cuBLAS/NCCL workspaces, CUDA graphs
KV_BLOCK_TOKENS = 16  # vLLM's default paged-attention block size


def weight_bytes(model: ModelArch, precision: Precision) -> float:
    """The guide's rule: parameters x bytes per parameter. A format that quantizes a mixture of
    experts' experts only (mxfp4 in gpt-oss) keeps the rest at 16 bits."""
    experts = model.expert_params if precision.experts_only else 0
    return experts * precision.bytes_per_param + (model.params - experts) * (
        2 if experts else precision.bytes_per_param)


def expert_weight_bytes(model: ModelArch, precision: Precision) -> float:
    """The part of ``weight_bytes`` that sits in the experts (0 for a dense model): what a step
    reads only for the experts its tokens are routed to."""
    return model.expert_params * precision.bytes_per_param


def fits(model: ModelArch, precision: Precision, chip: Chip, tp: int, limit: float = WEIGHT_SHARE_LIMIT) -> bool:
    """Weights within 80 % (``limit``) of the memory of the tensor-parallel group (marketed GB, as the guide)."""
    return weight_bytes(model, precision) <= limit * tp * chip.memory_gb * GB


def tp_divides(model: ModelArch, tp: int) -> bool:
    """TP must split attention heads evenly; KV heads are split or replicated."""
    return model.heads % tp == 0 and (model.kv_heads % tp == 0 or tp % model.kv_heads == 0)


def default_tp(model: ModelArch, precision: Precision, chip: Chip, chips_per_node: int,
               limit: float = WEIGHT_SHARE_LIMIT) -> int | None:
    """Smallest power of two that fits the weights, divides the heads and fits on one node."""
    tp = 1
    while tp <= chips_per_node:
        if tp_divides(model, tp) and fits(model, precision, chip, tp, limit):
            return tp
        tp *= 2
    return None


def activation_bytes_per_chip(model: ModelArch, tp: int, tokens_per_step: int, max_seqs: int) -> float:
    """Peak activation memory one forward pass needs, per chip, beyond weights and KV cache.

    vLLM measures this with a profiling run; we estimate the same peak: one layer's hidden states
    (~4 x hidden) and MLP intermediate (2 x ffn, split by TP) for every token in the step at 2
    bytes, plus fp32 logits for the sampled sequences. Plus a fixed workspace. A token of a mixture
    of experts runs through ``experts_per_token`` experts, ``ffn`` wide each.
    """
    per_token = (4 * model.hidden + 2 * model.ffn * (model.experts_per_token or 1) / tp) * 2
    logits = min(max_seqs, tokens_per_step) * model.vocab * 4
    return WORKSPACE_BYTES_PER_CHIP + tokens_per_step * per_token + logits


@dataclass(frozen=True)
class Sizing:
    """Where the memory of one server replica (a tensor-parallel group) goes."""

    chip: str
    tp: int
    precision: str
    kv_cache_dtype: str
    weight_bytes: float
    group_memory_gb: float
    fits: bool
    weight_share: float  # weights / marketed group memory
    usable_bytes: float  # group memory the runtime can allocate
    memory_utilization: float
    activation_bytes: float
    kv_bytes: float
    kv_share: float  # KV cache / usable group memory
    kv_bytes_per_token: float  # whole model, including KV-head replication across TP
    kv_tokens: int
    kv_blocks: int
    max_model_len: int
    max_seqs_at_max_len: int
    max_batch: int
    warnings: tuple[str, ...] = field(default=())
    lora_bytes: float = 0.0

    @property
    def weight_gb(self) -> float:
        return self.weight_bytes / GB

    @property
    def weight_gib(self) -> float:
        return self.weight_bytes / GiB

    @property
    def kv_gib(self) -> float:
        return self.kv_bytes / GiB

    def as_dict(self) -> dict[str, object]:
        return {
            "chip": self.chip,
            "tensorParallel": self.tp,
            "precision": self.precision,
            "kvCacheDtype": self.kv_cache_dtype,
            "weightGB": round(self.weight_gb, 2),
            "weightGiB": round(self.weight_gib, 2),
            "groupMemoryGB": self.group_memory_gb,
            "fits": self.fits,
            "weightShare": round(self.weight_share, 4),
            "kvCacheGiB": round(self.kv_gib, 2),
            "kvShare": round(self.kv_share, 4),
            "kvBytesPerToken": self.kv_bytes_per_token,
            "kvTokens": self.kv_tokens,
            "kvBlocks": self.kv_blocks,
            "maxModelLen": self.max_model_len,
            "maxSeqsAtMaxLen": self.max_seqs_at_max_len,
            "maxBatch": self.max_batch,
            "loraGiB": round(self.lora_bytes / GiB, 3),
            "warnings": list(self.warnings),
        }


def size(
    model: ModelArch,
    precision: Precision,
    kv_cache_dtype: str,
    chip: Chip,
    tp: int,
    *,
    memory_utilization: float,
    max_model_len: int,
    max_batch: int,
    tokens_per_step: int,
    weight_share_max: float = WEIGHT_SHARE_LIMIT,
    lora_bytes: float = 0.0,
) -> Sizing:
    """Memory budget of one replica: weights, activations, and what is left for the KV cache.

    ``lora_bytes``: what the server preallocates for LoRA adapters (``stacks/lora.py``), taken before
    the KV cache. ``weight_share_max``: the stack's ``sizing.weightsShareMax``. The guide's 80 % is a best
    practice, not physics; a stack may raise it, and then gets a warning when its weights use it.
    """
    weights = weight_bytes(model, precision)
    group_gb = tp * chip.memory_gb
    usable = tp * chip.usable_bytes
    activations = tp * activation_bytes_per_chip(model, tp, tokens_per_step, max_batch)
    kv_bytes = max(0.0, usable * memory_utilization - weights - activations - lora_bytes)
    replication = tp / model.kv_heads if tp > model.kv_heads else 1
    per_token = model.kv_bytes_per_token(KV_CACHE_BYTES[kv_cache_dtype]) * replication
    kv_tokens = int(kv_bytes // per_token) if per_token else 0
    kv_blocks = kv_tokens // KV_BLOCK_TOKENS
    kv_share = kv_bytes / usable
    ok = fits(model, precision, chip, tp, weight_share_max)
    warnings = []
    share = weights / (group_gb * GB)
    if ok and share > WEIGHT_SHARE_LIMIT:
        warnings.append(
            f"weights take {share * 100:.0f} % of memory, above the guide's {WEIGHT_SHARE_LIMIT * 100:.0f} % "
            f"(sizing.weightsShareMax "
            f"{weight_share_max:g}): less KV cache, smaller batches; the guide's rule would need more memory"
        )
    if ok and kv_share < KV_SHARE_FLOOR:
        warnings.append(
            f"KV cache gets {kv_share:.0%} of memory, below the guide's 20 % floor: expect small batches "
            "(more GPUs, a lower precision or a higher memory utilization raise it)"
        )
    if ok and max_batch * max_model_len > kv_tokens:
        warnings.append(
            f"max batch {max_batch} x max length {max_model_len} = {max_batch * max_model_len:,} tokens exceeds "
            f"the KV capacity of {kv_tokens:,} tokens: at full length only {kv_tokens // max_model_len} sequences fit "
            f"and the server queues or preempts the rest (the guide: long contexts may need up to "
            f"{KV_SHARE_LONG_CONTEXT:.0%} of memory for KV)"
        )
    return Sizing(
        chip=chip.key,
        tp=tp,
        precision=precision.name,
        kv_cache_dtype=kv_cache_dtype,
        weight_bytes=weights,
        group_memory_gb=group_gb,
        fits=ok,
        weight_share=share,
        usable_bytes=usable,
        memory_utilization=memory_utilization,
        activation_bytes=activations,
        kv_bytes=kv_bytes,
        kv_share=kv_share,
        kv_bytes_per_token=per_token,
        kv_tokens=kv_tokens,
        kv_blocks=kv_blocks,
        max_model_len=max_model_len,
        max_seqs_at_max_len=kv_tokens // max_model_len if max_model_len else 0,
        max_batch=max_batch,
        warnings=tuple(warnings),
        lora_bytes=lora_bytes,
    )


@dataclass(frozen=True)
class Alternative:
    """A machine type and precision on which the model fits, with its price."""

    machine: str
    chip: str
    precision: str
    tp: int
    usd_per_hour: float
    spot: bool

    def __str__(self) -> str:
        price = f"${self.usd_per_hour:.2f}/h{' spot' if self.spot else ''}"
        return f"{self.machine} ({self.tp}x {self.chip}, {self.precision}, TP={self.tp}) {price}"


def cheapest_fits(
    catalog: Catalog,
    model: ModelArch,
    precisions: list[str],
    *,
    accelerator_kind: str,
    spot: bool,
    limit: int = 5,
    server: ServerKind | None = None,
) -> list[Alternative]:
    """The cheapest machine types (and precisions) on which ``model`` fits, for a "did not fit" error;
    with ``server``, only where that server runs the precision on the chip (``ServerKind.runs``)."""
    out = []
    for machine in catalog.machines.values():
        if machine.kind != accelerator_kind or (not spot and not machine.on_demand):
            continue
        for name in precisions:
            precision = PRECISIONS[name]
            if not model.has_weights_for(name, precision.pre_quantized):
                continue  # no checkpoint to serve it from
            if server is not None and not server.runs(name, machine.chip):
                continue
            tp = _tp_for_machine(model, precision, machine)
            if tp is None:
                continue
            price = machine.spot_usd_h if spot else machine.on_demand_usd_h
            if price is None:  # no sourced spot price: not a suggestion we can rank
                continue
            out.append(Alternative(machine.name, machine.chip.name, name, tp, price, spot))
    out.sort(key=lambda a: (a.usd_per_hour, -PRECISIONS[a.precision].bits))
    seen, unique = set(), []
    for alt in out:  # one line per machine type: its best (highest-precision) fit
        if alt.machine not in seen:
            seen.add(alt.machine)
            unique.append(alt)
    return unique[:limit]


def _tp_for_machine(model: ModelArch, precision: Precision, machine: MachineType) -> int | None:
    if machine.kind == "tpu":  # JetStream shards across every chip of the host
        tp = machine.count
        return tp if fits(model, precision, machine.chip, tp) else None
    shards = default_tp(model, precision, machine.chip, machine.count)
    return shards if shards is not None and shards <= machine.count and math.log2(shards).is_integer() else None
