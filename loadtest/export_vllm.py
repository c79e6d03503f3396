"""``--export vllm``: one vllm-bench-serve-style result JSON per stage, for tools that read that format.

Keys, units and alignment follow ``vllm bench serve --save-result`` (vllm/benchmarks/serve.py,
v0.32): seconds in the per-request lists, milliseconds in the ``mean_/median_/std_/p90_/p95_/p99_``
statistics, and every per-request list (``input_lens``, ``output_lens``, ``ttfts``, ``itls``,
``latencies``, ``start_times``, ``errors``, ...) has one entry per measured request *in send order,
failures included* (a failure has output length 0, TTFT 0, no ITLs, latency 0 and its error
text), as vLLM writes them. ``request_goodput`` is null without an SLO. ``max_output_tokens_per_s``
and ``max_concurrent_requests`` are counted in one-second buckets from the first send, as vLLM does.
Our definitions carry over where they agree: TTFT at the first content token; TPOT = (e2e -
TTFT)/(out - 1), 1-token requests excluded; ITL per chunk.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .aggregate import per_request
from .records import RequestRecord

#: (dialect, api) -> vLLM's ``--backend`` name for the same protocol
BACKENDS = {("openai", "completions"): "openai", ("openai", "chat"): "openai-chat", ("tgi", "completions"): "tgi",
            ("tgi", "chat"): "openai-chat", ("triton", "completions"): "tensorrt-llm",
            ("jetstream", "completions"): "jetstream"}


def _ms_stats(name: str, values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float) * 1000.0
    if a.size == 0:
        a = np.zeros(1)
    return {
        f"mean_{name}_ms": float(a.mean()), f"median_{name}_ms": float(np.median(a)),
        f"std_{name}_ms": float(a.std()), f"p90_{name}_ms": float(np.percentile(a, 90)),
        f"p95_{name}_ms": float(np.percentile(a, 95)), f"p99_{name}_ms": float(np.percentile(a, 99)),
    }


def _peaks(ok: list[RequestRecord]) -> tuple[float, int]:
    """vLLM's peak output tokens/s and peak concurrent requests, in one-second buckets."""
    if not ok:
        return 0.0, 0
    t0 = min(r.sent or 0.0 for r in ok)
    span = math.ceil(max((r.end or 0.0) for r in ok) - t0) + 1
    tokens = np.zeros(span)
    active = np.zeros(span)
    for r in ok:
        for t, n in r.chunks:
            b = int(t - t0)
            if 0 <= b < span:
                tokens[b] += n
        active[int((r.sent or t0) - t0):int((r.end or t0) - t0) + 1] += 1
    return float(tokens.max()), int(active.max())


def vllm_result(stage: dict[str, Any], records: list[RequestRecord], model: str, dialect: str, api: str = "completions",
                burstiness: float | str = 1.0, max_concurrency: int | None = None,
                tokenizer_id: str | None = None) -> dict[str, Any]:
    measured = sorted((r for r in records if not r.warmup), key=lambda r: (r.sent or 0.0, r.i))
    ok = [r for r in measured if r.ok]
    per = {id(r): per_request(r) for r in ok}
    itls = [r.chunks[k][0] - r.chunks[k - 1][0] for r in ok for k in range(1, len(r.chunks))]
    peak_tokens, peak_active = _peaks(ok)
    rate_mode = stage["mode"] == "rate"

    def each(r: RequestRecord, key: str) -> float:
        return float(per[id(r)][key] or 0.0) if r.ok else 0.0

    out: dict[str, Any] = {
        "date": time.strftime("%Y%m%d-%H%M%S"),
        "endpoint_type": BACKENDS[(dialect, api)],
        "backend": BACKENDS[(dialect, api)],
        "label": None,
        "model_id": model,
        "tokenizer_id": tokenizer_id,
        "num_prompts": len(measured),
        "request_rate": stage["level"] if rate_mode else "inf",
        "burstiness": burstiness if rate_mode else 1.0,
        "max_concurrency": int(stage["level"]) if not rate_mode else max_concurrency,
        "duration": stage["duration_s"],
        "completed": len(ok),
        "failed": len(measured) - len(ok),
        "total_input_tokens": stage["inputTokens"],
        "total_output_tokens": stage["outputTokens"],
        "request_throughput": stage["requestThroughput"],
        "request_goodput": stage["goodput"] if stage.get("sloMet") else None,
        "output_throughput": stage["outputTokensPerS"],
        "total_token_throughput": stage["totalTokensPerS"],
        "input_lens": [r.inputTokens or 0 for r in measured],
        "output_lens": [(r.outputTokens or 0) if r.ok else 0 for r in measured],
        "ttfts": [each(r, "ttft") for r in measured],
        "itls": [[r.chunks[k][0] - r.chunks[k - 1][0] for k in range(1, len(r.chunks))] if r.ok else []
                 for r in measured],
        "latencies": [each(r, "e2e") for r in measured],
        "start_times": [r.sent or 0.0 for r in measured],
        "queue_times": [max(0.0, (r.sent or 0.0) - r.scheduled) for r in measured],
        "generated_texts": ["" for _ in measured],
        "errors": ["" if r.ok else f"{r.error}: {r.errorDetail or ''}".rstrip(": ") for r in measured],
        "max_output_tokens_per_s": peak_tokens,
        "max_concurrent_requests": peak_active,
    }
    out.update(_ms_stats("ttft", [m["ttft"] for m in per.values() if m["ttft"] is not None]))
    out.update(_ms_stats("tpot", [m["tpot"] for m in per.values() if m["tpot"] is not None]))
    out.update(_ms_stats("itl", itls))
    out.update(_ms_stats("e2el", [m["e2e"] for m in per.values() if m["e2e"] is not None]))
    return out
