"""``--export vllm``: one vllm-bench-serve-style result JSON per stage, for tools that read that format.

Field names and units follow ``vllm bench serve --save-result`` (milliseconds, ``median_*``,
``p99_*``, per-request lists). Our definitions carry over where they agree: TTFT at the first
content token; TPOT = (e2e - TTFT)/(out - 1), 1-token requests excluded; ITL pooled per chunk.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .aggregate import per_request
from .records import RequestRecord


def _ms_stats(name: str, values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float) * 1000.0
    if a.size == 0:
        a = np.zeros(1)
    return {
        f"mean_{name}_ms": float(a.mean()), f"median_{name}_ms": float(np.median(a)),
        f"std_{name}_ms": float(a.std()), f"p90_{name}_ms": float(np.percentile(a, 90)),
        f"p95_{name}_ms": float(np.percentile(a, 95)), f"p99_{name}_ms": float(np.percentile(a, 99)),
    }


def vllm_result(stage: dict[str, Any], records: list[RequestRecord], model: str, dialect: str) -> dict[str, Any]:
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    per = [per_request(r) for r in ok]
    itls = [r.chunks[k][0] - r.chunks[k - 1][0] for r in ok for k in range(1, len(r.chunks))]
    out: dict[str, Any] = {
        "date": time.strftime("%Y%m%d-%H%M%S"),
        "backend": {"openai": "vllm", "tgi": "tgi", "triton": "tensorrt-llm", "jetstream": "jetstream"}[dialect],
        "model_id": model,
        "tokenizer_id": None,
        "num_prompts": len(measured),
        "request_rate": stage["level"] if stage["mode"] == "rate" else "inf",
        "burstiness": 1.0,
        "max_concurrency": int(stage["level"]) if stage["mode"] == "batch" else None,
        "duration": stage["duration_s"],
        "completed": stage["completed"],
        "total_input_tokens": stage["inputTokens"],
        "total_output_tokens": stage["outputTokens"],
        "request_throughput": stage["requestThroughput"],
        "request_goodput": stage["goodput"],
        "output_throughput": stage["outputTokensPerS"],
        "total_token_throughput": stage["totalTokensPerS"],
        "input_lens": [r.inputTokens for r in ok],
        "output_lens": [r.outputTokens for r in ok],
        "ttfts": [m["ttft"] for m in per],
        "itls": [[r.chunks[k][0] - r.chunks[k - 1][0] for k in range(1, len(r.chunks))] for r in ok],
        "generated_texts": ["" for _ in ok],
        "errors": [r.error or "" for r in measured if not r.ok],
    }
    out.update(_ms_stats("ttft", [m["ttft"] for m in per if m["ttft"] is not None]))
    out.update(_ms_stats("tpot", [m["tpot"] for m in per if m["tpot"] is not None]))
    out.update(_ms_stats("itl", itls))
    out.update(_ms_stats("e2el", [m["e2e"] for m in per if m["e2e"] is not None]))
    return out
