"""What each server's limits are for a spec, in the server's own terms: one place that both the
component translators (the flags a real server is started with) and the simulator (what the
simulated server reports and enforces) read, so the two can never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import StackSpec


@dataclass(frozen=True)
class TgiLimits:
    """TGI's launcher limits (``--max-input-tokens`` ... ``--max-concurrent-requests``)."""

    max_input_tokens: int
    max_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_total_tokens: int
    max_concurrent_requests: int


def tgi_limits(spec: StackSpec) -> TgiLimits:
    """TGI requires max input < max total, and a prefill budget that holds the longest input."""
    max_total = spec.max_model_len
    return TgiLimits(max_input_tokens=max_total - 1, max_total_tokens=max_total,
                     max_batch_prefill_tokens=max(spec.max_batched_tokens, max_total - 1),
                     max_batch_total_tokens=spec.sizing.kv_tokens, max_concurrent_requests=spec.max_batch)
