"""Per-stage statistics from request records. Every formula is in docs/metrics.md; keep them in step.

Only *measured* records count (``warmup`` false). Latencies are in seconds. Percentiles are
numpy's linear interpolation (``numpy.percentile(..., method="linear")``), the same as vllm bench
serve, so p99 of 100 samples lies between the 99th and 100th sorted values.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .records import RequestRecord
from .slo import from_limits

STAT_KEYS = ("mean", "p50", "p90", "p95", "p99", "max")
#: dispatch delay above this (p99, seconds) means the client could not keep its own schedule
DISPATCH_DELAY_LIMIT = 0.010
ACHIEVED_RATE_FLOOR = 0.98


def stats(values: list[float] | np.ndarray) -> dict[str, float] | None:
    """{mean, p50, p90, p95, p99, max} in the values' unit; None when there are no values."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return None
    p = np.percentile(a, [50, 90, 95, 99])
    return {"mean": float(a.mean()), "p50": float(p[0]), "p90": float(p[1]), "p95": float(p[2]),
            "p99": float(p[3]), "max": float(a.max())}


def per_request(rec: RequestRecord) -> dict[str, float | None]:
    """The per-request metrics of one completed record (seconds)."""
    out: dict[str, float | None] = {"ttft": None, "tpot": None, "ntpot": None, "e2e": None, "e2e_sched": None}
    if rec.sent is None or rec.end is None:
        return out
    e2e = rec.end - rec.sent
    out["e2e"] = e2e
    out["e2e_sched"] = rec.end - rec.scheduled
    n = rec.outputTokens or 0
    if rec.first is not None:
        ttft = rec.first - rec.sent
        out["ttft"] = ttft
        if n > 1:
            out["tpot"] = (e2e - ttft) / (n - 1)
    if n >= 1:
        out["ntpot"] = e2e / n
    return out


def _itls(rec: RequestRecord) -> tuple[list[float], list[float]]:
    """(gaps between content chunks, the same gaps divided per token and repeated per token)."""
    per_chunk: list[float] = []
    per_token: list[float] = []
    chunks = rec.chunks
    for k in range(1, len(chunks)):
        gap = chunks[k][0] - chunks[k - 1][0]
        per_chunk.append(gap)
        n = max(1, int(chunks[k][1]))
        per_token.extend([gap / n] * n)
    return per_chunk, per_token


def slo_ok(request_metrics: dict[str, float | None], slo: dict[str, float]) -> bool:
    """A request meets the SLOs when each named latency metric of its own is within the limit (ITL
    and the error rate have no per-request value: loadtest/slo.py)."""
    for term in from_limits(slo):
        if not term.per_request:
            continue
        value = request_metrics.get(term.metric)
        if term.metric == "tpot" and value is None:
            continue  # one-token answers have no TPOT: they cannot break a TPOT limit (as analysis counts)
        if value is None or value > term.limit:
            return False
    return True


def summarize_stage(
    *, stage_id: str, mode: str, level: float, arrival: str, records: list[RequestRecord],
    start: float, end: float, slo: dict[str, float], interrupted: bool = False,
    server: dict[str, Any] | None = None, client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    per = [per_request(r) for r in ok]
    sent_times = sorted(r.sent for r in measured if r.sent is not None)
    first_sent = sent_times[0] if sent_times else start
    last_end = max((r.end for r in measured if r.end is not None), default=end)
    duration = max(last_end - first_sent, 1e-9) if measured else 0.0

    itl: list[float] = []
    itl_tok: list[float] = []
    for r in ok:
        a, b = _itls(r)
        itl.extend(a)
        itl_tok.extend(b)

    def col(key: str) -> list[float]:
        return [m[key] for m in per if m[key] is not None]  # type: ignore[misc]

    in_tok = sum(r.inputTokens or 0 for r in ok)
    out_tok = sum(r.outputTokens or 0 for r in ok)
    good = sum(1 for m in per if slo_ok(m, slo)) if slo else len(ok)

    requested = float(level) if mode == "rate" else None
    achieved = _rate(sent_times)
    # the rate the schedule itself asked for: equals the nominal rate for constant arrivals, and is
    # this sample's rate for Poisson arrivals (a random draw), which is what the client must keep
    scheduled_rate = _rate(sorted(r.scheduled for r in measured)) if mode == "rate" else None
    dispatch = [r.sent - r.scheduled for r in measured if r.sent is not None]
    dispatch_stats = stats(dispatch)

    summary: dict[str, Any] = {
        "id": stage_id,
        "mode": mode,
        "level": level,
        "arrival": arrival,
        "duration_s": duration,
        "requests": len(measured),
        "completed": len(ok),
        "warmupRequests": len(records) - len(measured),
        "errors": dict(sorted(Counter(r.error for r in measured if r.error).items())),
        "requestedRate": requested,
        "scheduledRate": scheduled_rate,
        "achievedRate": achieved,
        "requestThroughput": len(ok) / duration if duration else 0.0,
        "completionRate": _completion_rate(ok),
        "inputTokens": in_tok,
        "outputTokens": out_tok,
        "inputTokensPerS": in_tok / duration if duration else 0.0,
        "outputTokensPerS": out_tok / duration if duration else 0.0,
        "totalTokensPerS": (in_tok + out_tok) / duration if duration else 0.0,
        "goodput": good / duration if duration else 0.0,
        "goodRequests": good,
        "ttft": stats(col("ttft")),
        "tpot": stats(col("tpot")),
        "ntpot": stats(col("ntpot")),
        "itl": stats(itl),
        "itlPerToken": stats(itl_tok),
        "e2e": stats(col("e2e")),
        "ttftFromScheduled": stats([r.first - r.scheduled for r in ok if r.first is not None]),
        "e2eFromScheduled": stats([r.end - r.scheduled for r in ok if r.end is not None]),
        "dispatchDelay": dispatch_stats,
        "outputLenMismatch": sum(1 for r in ok if r.outputTokensRequested is not None
                                 and r.outputTokens != r.outputTokensRequested),
        "chunkTokenMismatch": sum(1 for r in ok if r.tokenSource != "chunks"
                                  and sum(int(c[1]) for c in r.chunks) != r.outputTokens),
        "tokenSources": dict(Counter(r.tokenSource for r in ok if r.tokenSource)),
        "interrupted": interrupted,
        "serverMetrics": server,
        "client": client,
    }
    summary["sloMet"] = {key: _slo_stage(summary, key, limit) for key, limit in slo.items()} if slo else None
    reasons = []
    if dispatch_stats and dispatch_stats["p99"] > DISPATCH_DELAY_LIMIT:
        reasons.append(f"dispatch delay p99 {1000 * dispatch_stats['p99']:.1f} ms > "
                       f"{1000 * DISPATCH_DELAY_LIMIT:.0f} ms")
    if scheduled_rate and achieved is not None and len(sent_times) >= 10 \
            and achieved < ACHIEVED_RATE_FLOOR * scheduled_rate:
        reasons.append(f"achieved {achieved:.2f} req/s < {100 * ACHIEVED_RATE_FLOOR:.0f} % of the scheduled "
                       f"{scheduled_rate:.2f} req/s")
    if client and (client.get("cpuPercent") or 0) > 90:
        reasons.append(f"load generator CPU {client['cpuPercent']:.0f} % of one core")
    summary["clientBottleneck"] = bool(reasons)
    summary["clientBottleneckReasons"] = reasons
    return summary


def _completion_rate(ok: list[RequestRecord]) -> float | None:
    """Completions per second between the first and the last completion: (n - 1) / (last end - first end).

    ``requestThroughput`` divides by a window that includes the wait for the first answer and the
    drain of the last, so a short stage that the server kept up with reads low. A server that keeps
    pace completes requests as fast as they were sent; one that falls behind spreads them over a
    longer span. Latency jitter moves only the two ends, not the count.
    """
    ends = sorted(r.end for r in ok if r.end is not None)
    return _rate(ends)


def _rate(times: list[float]) -> float | None:
    """Events per second over sorted times: (n - 1) / (last - first)."""
    if len(times) >= 2 and times[-1] > times[0]:
        return (len(times) - 1) / (times[-1] - times[0])
    return None


# summary.json key of each SLO metric's stage statistics
_SUMMARY_KEYS = {"ttft": "ttft", "tpot": "tpot", "ntpot": "ntpot", "itl": "itl", "e2e": "e2e",
                 "e2e_sched": "e2eFromScheduled"}


def term_value(summary: dict[str, Any], key: str) -> float | None:
    """A stage's value of one SLO term (``ttft_p99``: seconds; ``error_rate``: a fraction), or None."""
    (term,) = from_limits({key: 0.0})
    if term.metric == "error_rate":
        n = summary.get("requests") or 0
        return (n - (summary.get("completed") or 0)) / n if n else None
    values = summary.get(_SUMMARY_KEYS[term.metric])
    return float(values[term.stat]) if values else None


def _slo_stage(summary: dict[str, Any], key: str, limit: float) -> bool | None:
    value = term_value(summary, key)
    return None if value is None else bool(value <= limit)
