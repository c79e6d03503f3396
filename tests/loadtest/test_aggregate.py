"""The stage formulas of docs/metrics.md on hand-made records with known answers."""

from __future__ import annotations

import pytest

from loadtest.aggregate import per_request, stats, summarize_stage
from loadtest.records import RequestRecord


def rec(i, sched, sent, chunks, end, out=None, error=None, warmup=False, inp=10):
    r = RequestRecord(stage="s", i=i, scheduled=sched, warmup=warmup, sent=sent,
                      first=chunks[0][0] if chunks else None, end=end, chunks=[list(c) for c in chunks],
                      outputTokens=out if out is not None else sum(n for _, n in chunks), inputTokens=inp,
                      tokenSource="usage", error=error, outputTokensRequested=4)
    return r


def test_per_request_definitions():
    r = rec(0, 0.0, 1.0, [(1.5, 1), (1.7, 1), (2.1, 2)], 2.1)
    m = per_request(r)
    assert m["ttft"] == pytest.approx(0.5)
    assert m["e2e"] == pytest.approx(1.1)
    assert m["tpot"] == pytest.approx((1.1 - 0.5) / 3)  # (e2e - ttft) / (out - 1)
    assert m["ntpot"] == pytest.approx(1.1 / 4)  # e2e / out


def test_one_token_requests_have_no_tpot():
    assert per_request(rec(0, 0, 0, [(0.2, 1)], 0.2))["tpot"] is None


def test_stats_uses_linear_percentiles():
    s = stats(list(range(1, 101)))
    assert s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01) and s["max"] == 100
    assert stats([]) is None


def test_stage_summary():
    records = [
        rec(0, 0.0, 0.0, [(0.9, 1)], 0.9, warmup=True),  # excluded
        rec(1, 1.0, 1.001, [(1.2, 1), (1.3, 1), (1.5, 2)], 1.5),
        rec(2, 2.0, 2.003, [(2.4, 1), (2.6, 1), (2.8, 1), (3.0, 1)], 3.0),
        rec(3, 3.0, 3.002, [(3.1, 1)], 3.2, error="reset"),
    ]
    s = summarize_stage(stage_id="s", mode="rate", level=1.0, arrival="constant", records=records, start=0.0,
                        end=3.2, slo={"ttft_p99": 0.3})
    assert s["requests"] == 3 and s["completed"] == 2 and s["warmupRequests"] == 1
    assert s["errors"] == {"reset": 1}
    duration = 3.2 - 1.001  # first measured send -> last measured end
    assert s["duration_s"] == pytest.approx(duration)
    assert s["requestThroughput"] == pytest.approx(2 / duration)
    assert s["outputTokensPerS"] == pytest.approx(8 / duration)  # completed requests only
    assert s["inputTokensPerS"] == pytest.approx(20 / duration)
    assert s["achievedRate"] == pytest.approx(2 / (3.002 - 1.001))
    assert s["requestedRate"] == 1.0
    # ITL per chunk pools the gaps; per token splits a 2-token chunk's gap in two
    assert s["itl"]["max"] == pytest.approx(0.2) and s["itl"]["mean"] == pytest.approx(0.9 / 5)
    assert s["itlPerToken"]["mean"] == pytest.approx((0.1 + 0.1 + 0.1 + 0.2 * 3) / 6)
    assert s["dispatchDelay"]["max"] == pytest.approx(0.003)
    assert s["ttftFromScheduled"]["max"] == pytest.approx(0.4)
    # goodput: request 1 has TTFT 0.199 (meets 0.3), request 2 0.397 (misses)
    assert s["goodRequests"] == 1 and s["goodput"] == pytest.approx(1 / duration)
    assert s["sloMet"] == {"ttft_p99": False}
    assert s["clientBottleneck"] is False
    assert s["outputLenMismatch"] == 0


def test_client_bottleneck_flagged_on_dispatch_delay():
    records = [rec(i, i * 0.01, i * 0.01 + 0.05, [(i * 0.01 + 0.1, 4)], i * 0.01 + 0.1) for i in range(20)]
    s = summarize_stage(stage_id="s", mode="rate", level=100.0, arrival="constant", records=records, start=0,
                        end=1, slo={})
    assert s["clientBottleneck"] is True
    assert "dispatch delay" in s["clientBottleneckReasons"][0]
