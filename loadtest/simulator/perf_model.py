"""Roofline step-time model: how long one engine step takes on the stack's hardware.

One step runs every scheduled sequence through the model once: prefill chunks (many new tokens
each) and decodes (one new token each) together, as vLLM's scheduler mixes them. Its time is

    max(compute, memory) + tensor-parallel all-reduces + step overhead + per-sequence overhead

compute = (2 x active params x new tokens + attention FLOPs) / (TP x peak FLOPS x mfu)
memory  = (weight bytes + KV bytes read + KV bytes written) / (TP x bandwidth x mbu)
comm    = 2 x layers x (latency + 2 (TP-1)/TP x new tokens x hidden x 2 bytes / (link x eff))

Prefill is compute-bound (many tokens share one read of the weights); decode is memory-bound
(every step re-reads all weights and the batch's KV cache for one token per sequence). Every
number comes from the ``StackSpec`` (model shapes, precision, chip, TP, KV bytes per token from
its sizing) and from ``efficiency.py``. Formulas and sources: docs/performance-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.lora import LORA_BYTES_PER_PARAM, params_per_rank
from stacks.sizing import expert_weight_bytes
from stacks.spec import StackSpec

from .efficiency import Efficiency, efficiency, profile_for

ACTIVATION_BYTES = 2  # all-reduced hidden states are 16-bit for every precision in the catalog


@dataclass(frozen=True)
class StepTime:
    """One step's time and what bounded it (for docs, tests and the what-if analysis)."""

    seconds: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


class PerfModel:
    """Step times for one stack. Built once per spec; ``step`` is called once per engine step."""

    def __init__(self, spec: StackSpec, eff: Efficiency | None = None):
        self.spec = spec
        m = spec.model
        self.eff = eff or efficiency(profile_for(spec.server.name, spec.image), spec.accelerator, spec.precision.name)
        tp = spec.tensor_parallel
        chip = spec.machine.chip
        self.tp = tp
        self.layers = m.layers
        self.hidden = m.hidden
        self.active_params = m.active_params or m.params
        self.weight_bytes = spec.sizing.weight_bytes
        # a mixture of experts reads only the experts a step's tokens are routed to
        self._moe = m if m.expert_params else None
        self._expert_bytes = expert_weight_bytes(m, spec.precision)
        self.kv_bytes_per_token = spec.sizing.kv_bytes_per_token  # the sizing's number, replication included
        # sliding-window layers attend to (and read the KV of) the last ``window`` positions only
        self._window = m.sliding_window if m.sliding_layers else None
        self._sliding_share = m.sliding_layers / m.kv_layers if self._window else 0.0
        self.flops_per_s = tp * chip.peak_tflops(spec.precision.compute_dtype) * 1e12 * self.eff.mfu
        self.bytes_per_s = tp * chip.bandwidth_gbps * 1e9 * self.eff.mbu
        # attention: QK^T and AV, 2 FLOPs per multiply-add, per layer, over all query heads
        self.attn_flops_per_pair = 4 * m.layers * m.heads * m.head_dim
        # LoRA (stacks/lora.py): each adapted token runs A and B of every adapted projection at the
        # server's max rank, and a step reads each adapter it uses once. Only FLOPs and bytes are
        # charged: the kernels' own launch overheads are not modelled (unvalidated: no LoRA measurement)
        lora = spec.lora
        lora_params = lora.max_rank * params_per_rank(m) if lora else 0
        self._lora_flops_per_token = 2.0 * lora_params
        self._lora_bytes_per_adapter = float(lora_params * LORA_BYTES_PER_PARAM)
        self._comm_per_token = 0.0
        self._comm_fixed = 0.0
        if tp > 1:
            link = self.eff.link_bytes_per_s * self.eff.comm_efficiency
            self._comm_fixed = 2 * m.layers * self.eff.allreduce_latency_s
            self._comm_per_token = 2 * m.layers * 2 * (tp - 1) / tp * m.hidden * ACTIVATION_BYTES / link

    def step(self, new_tokens: int, seqs: int, attn_pairs: float, kv_read_tokens: float, lora_tokens: int = 0,
             lora_adapters: int = 0) -> StepTime:
        """Time of one step.

        new_tokens: tokens computed this step (prefill chunk tokens + one per decoding sequence)
        seqs: sequences in the step
        attn_pairs: sum over sequences of query tokens x attended positions (causal: q x (ctx + (q+1)/2))
        kv_read_tokens: sum over sequences of cached tokens read by attention
        lora_tokens, lora_adapters: the tokens that run through a LoRA adapter, and the adapters read
        """
        attn_flops, kv_bytes = self._attention(new_tokens, seqs, attn_pairs, kv_read_tokens)
        flops = 2.0 * self.active_params * new_tokens + attn_flops + self._lora_flops_per_token * lora_tokens
        compute = flops / self.flops_per_s
        bytes_moved = self.weights_read(new_tokens) + kv_bytes + self._lora_bytes_per_adapter * lora_adapters
        memory = bytes_moved / self.bytes_per_s
        comm = self._comm_fixed + self._comm_per_token * new_tokens if self.tp > 1 else 0.0
        overhead = self.eff.step_overhead_s + self.eff.per_seq_overhead_s * seqs
        return StepTime(max(compute, memory) + comm + overhead, compute, memory, comm, overhead)

    def step_seconds(self, new_tokens: int, seqs: int, attn_pairs: float, kv_read_tokens: float,
                     lora_tokens: int = 0, lora_adapters: int = 0) -> float:
        """``step(...).seconds`` without building the record (the engine's hot path). ``lora_tokens``:
        the step's tokens that run through a LoRA adapter; ``lora_adapters``: distinct adapters read."""
        attn_flops, kv = self._attention(new_tokens, seqs, attn_pairs, kv_read_tokens)
        compute = (2.0 * self.active_params * new_tokens + attn_flops
                   + self._lora_flops_per_token * lora_tokens) / self.flops_per_s
        memory = (self.weights_read(new_tokens) + kv + self._lora_bytes_per_adapter * lora_adapters) / self.bytes_per_s
        comm = self._comm_fixed + self._comm_per_token * new_tokens if self.tp > 1 else 0.0
        return (max(compute, memory) + comm + self.eff.step_overhead_s
                + self.eff.per_seq_overhead_s * seqs)

    def _attention(self, new_tokens: int, seqs: int, attn_pairs: float, kv_read_tokens: float) -> tuple[float, float]:
        """Attention FLOPs and KV bytes read for one step. A sliding-window layer attends to at most
        ``window`` positions per query and reads at most ``window`` cached tokens per sequence; the
        step's sums are capped as a whole (exact when every sequence is shorter, or every one longer,
        than the window)."""
        kv_tokens = kv_read_tokens + new_tokens
        if self._window is None:
            return self.attn_flops_per_pair * attn_pairs, self.kv_bytes_per_token * kv_tokens
        s = self._sliding_share
        pairs = (1 - s) * attn_pairs + s * min(attn_pairs, new_tokens * self._window)
        tokens = (1 - s) * kv_tokens + s * min(kv_tokens, seqs * self._window + new_tokens)
        return self.attn_flops_per_pair * pairs, self.kv_bytes_per_token * tokens

    def weights_read(self, new_tokens: int) -> float:
        """Bytes of weights one step reads: all of them for a dense model; for a mixture of experts
        the dense part and the experts its ``new_tokens`` tokens are routed to
        (``ModelArch.experts_touched``), each part at its own bytes per parameter."""
        if self._moe is None:
            return self.weight_bytes
        return self.weight_bytes - self._expert_bytes * (1.0 - self._moe.experts_touched(new_tokens))

    @property
    def request_overhead_s(self) -> float:
        return self.eff.request_overhead_s

    def prefill_tokens_per_s(self, input_len: int, batch: int = 1) -> float:
        """Prefill throughput of one step over ``batch`` prompts of ``input_len`` (no chunking)."""
        pairs = batch * input_len * (input_len + 1) / 2
        t = self.step_seconds(batch * input_len, batch, pairs, 0)
        return batch * input_len / t
