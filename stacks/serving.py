"""What each server's limits are for a spec, in the server's own terms: one place that both the
component translators (the flags a real server is started with) and the simulator (what the
simulated server reports and enforces) read, so the two can never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import StackSpec

#: TGI's admission limit as a multiple of the running batch: requests beyond the batch wait in TGI's
#: queue (as in vLLM) instead of being refused with 429, so a batch sweep measures batching
ADMISSION_PER_BATCH_SLOT = 4


@dataclass(frozen=True)
class TgiLimits:
    """TGI's launcher limits (``--max-input-tokens`` ... ``--max-concurrent-requests``).

    ``max_batch_size`` is the stack's ``maxBatch``: the most requests in one running batch.
    ``max_concurrent_requests`` is admission, not batching: above it TGI answers 429 at once.
    """

    max_input_tokens: int
    max_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_total_tokens: int
    max_batch_size: int
    max_concurrent_requests: int


def tgi_limits(spec: StackSpec) -> TgiLimits:
    """TGI requires max input < max total, and a prefill budget that holds the longest input."""
    max_total = spec.max_model_len
    return TgiLimits(max_input_tokens=max_total - 1, max_total_tokens=max_total,
                     max_batch_prefill_tokens=max(spec.max_batched_tokens, max_total - 1),
                     max_batch_total_tokens=spec.sizing.kv_tokens, max_batch_size=spec.max_batch,
                     max_concurrent_requests=ADMISSION_PER_BATCH_SLOT * spec.max_batch)
