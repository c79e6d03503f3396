"""One results contract: the load tester's streaming statistics (``loadtest/aggregate.py``, per record)
and the analysis' vectorized ones (``analysis/stats.py``, pandas) agree on the same golden records,
read back through the JSONL and through the columnar copy alike."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.loader import read_requests
from analysis.slo import parse_slo
from analysis.stats import request_metrics, stage_stats
from loadtest.aggregate import summarize_stage
from loadtest.records import RequestRecord
from loadtest.results import REQUESTS_FILE, ResultsWriter
from loadtest.slo import as_limits

SLO = "ttft_p99=2s,tpot_p50=100ms"
STAGE = "0-rate-4"


def golden() -> list[RequestRecord]:
    """Twelve requests of one open-loop stage: varied latencies, a warmup, an HTTP error, a broken stream
    and a one-token answer (no TPOT)."""
    out = []
    for i in range(12):
        sched = 1.0 + 0.25 * i
        ttft = 0.05 + 0.02 * i + (1.5 if i == 7 else 0.0)  # request 7 queues: TTFT 1.69 s
        n_out = 1 if i == 5 else 32
        tpot = 0.03 + 0.004 * i
        rec = RequestRecord(stage=STAGE, i=i, scheduled=sched, warmup=i == 0, sent=sched + 0.001,
                            first=sched + 0.001 + ttft, end=sched + 0.001 + ttft + (n_out - 1) * tpot,
                            chunks=[(sched + 0.001 + ttft, 1), (sched + 0.001 + ttft + (n_out - 1) * tpot, n_out - 1)],
                            inputTokens=100 + i, outputTokens=n_out, status=200)
        if i == 3:
            rec.status, rec.error, rec.first, rec.outputTokens, rec.chunks = 503, "http_5xx", None, 0, []
        if i == 9:
            rec.error, rec.outputTokens = "reset", 10
        out.append(rec)
    return out


def _analysis_row(run: Path) -> pd.Series:
    r = request_metrics(read_requests(run / REQUESTS_FILE)[0]).assign(run_id="r")
    return stage_stats(r, parse_slo(SLO)).set_index("stage").loc[STAGE]


@pytest.mark.parametrize("columnar", [False, True])
def test_streaming_and_vectorized_statistics_agree(tmp_path: Path, columnar: bool) -> None:
    records = golden()
    w = ResultsWriter(tmp_path, "llama2-7b-g2", "run")
    for r in records:
        w.write_request(r)
    if columnar:
        w.write_columns(REQUESTS_FILE, STAGE, records)
    w.close()
    streamed = summarize_stage(stage_id=STAGE, mode="rate", level=4.0, arrival="constant", records=records,
                               start=1.0, end=5.0, slo=as_limits(parse_slo(SLO).terms))
    row = _analysis_row(w.dir)
    assert row["requests"] == streamed["requests"] == 11  # the warmup is left out
    assert row["completed"] == streamed["completed"] == 9
    assert row["errors"] == 2 and streamed["errors"] == {"http_5xx": 1, "reset": 1}
    assert row["output_tokens"] == streamed["outputTokens"] == 8 * 32 + 1
    for mine, (key, stat) in {"ttft_p50": ("ttft", "p50"), "ttft_p99": ("ttft", "p99"), "tpot_p50": ("tpot", "p50"),
                              "tpot_p99": ("tpot", "p99"), "e2e_p50": ("e2e", "p50"), "e2e_p99": ("e2e", "p99"),
                              "ntpot_mean": ("ntpot", "mean")}.items():
        assert row[mine] == pytest.approx(streamed[key][stat], rel=1e-6), mine
    assert row["output_tok_s"] == pytest.approx(streamed["outputTokensPerS"], rel=1e-6)
    assert row["goodput"] == pytest.approx(streamed["goodput"], rel=1e-6)
    # by hand: the completed TTFTs are 0.05 + 0.02 i (+1.5 for i = 7) over i in {1,2,4,5,6,7,8,10,11}
    ttfts = sorted(0.05 + 0.02 * i + (1.5 if i == 7 else 0) for i in (1, 2, 4, 5, 6, 7, 8, 10, 11))
    assert row["ttft_p50"] == pytest.approx(ttfts[4], abs=2e-6)  # JSONL times are rounded to 1 µs
