"""SLO parsing and the best level under an SLO (the knee of a known latency curve)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.compare import slo_verdicts
from analysis.cost import add_cost
from analysis.errors import AnalysisError
from analysis.frame import stage_frame
from analysis.loader import load_runs
from analysis.slo import parse_slo

from .resultsgen import Curve, write_run


def test_parse_units_and_terms() -> None:
    slo = parse_slo("ttft_p99=2s, tpot_p50=100ms,e2e_mean=1500us,error_rate=1%")
    assert [(t.key, t.limit) for t in slo.terms] == [
        ("ttft_p99", 2.0), ("tpot_p50", pytest.approx(0.1)), ("e2e_mean", pytest.approx(0.0015)),
        ("error_rate", pytest.approx(0.01))]
    assert "ttft p99 ≤ 2 s" in str(slo) and "tpot p50 ≤ 100 ms" in str(slo)


@pytest.mark.parametrize(("text", "needle"), [
    ("ttft_p42=2s", 'unknown term "ttft_p42"'), ("latency_p99=2s", "unknown term"), ("ttft_p99", 'no "="'),
    ("ttft_p99=2", "has no unit"), ("ttft_p99=fast", "not a duration"), ("error_rate=200%", "between 0 and 100"),
    ("", "has no terms"), ("error_rate=1", "ambiguous"), ("ttft_p99=1s,ttft_p99=2s", "given twice"),
])
def test_bad_slo_names_the_term_and_the_fix(text: str, needle: str) -> None:
    with pytest.raises(AnalysisError) as exc:
        parse_slo(text)
    assert needle in str(exc.value) and "--slo" in str(exc.value)


def test_best_level_is_the_knee_of_the_curve(tmp_path: Path) -> None:
    # tpot(N) = 0.02 + 0.0005 N ≤ 0.1 s holds up to N = 160; ttft(N) = 0.05 + 0.002 N ≤ 1 s up to N = 475.
    # Of 16..256 the highest level meeting both is 128, and 256 fails on tpot (148 ms).
    curve = Curve(0.05, 0.002, 0.02, 0.0005)
    write_run(tmp_path, "llama2-7b-g2", curve=curve, usd_per_hour=2.0)
    slo = parse_slo("ttft_p99=1s,tpot_p50=100ms")
    df, _ = stage_frame(load_runs([str(tmp_path)]), slo)
    series, cheapest = slo_verdicts(add_cost(df), slo)
    row = series.iloc[0]
    assert row["best_level"] == 128 and row["levels_meeting"] == 4
    assert "level 256" in row["why_not"] and "tpot_p50 148 ms" in row["why_not"]
    tok_s = 128 * 64 / curve.e2e(128, 64)
    assert row["output_tok_s"] == pytest.approx(tok_s)
    assert row["usd_per_m_output"] == pytest.approx(2.0 / (tok_s * 3600) * 1e6)
    assert cheapest.iloc[0]["stack"] == "llama2-7b-g2"


def test_no_level_meeting_the_slo_says_why(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=Curve(3.0, 0.0, 0.02, 0.0))
    slo = parse_slo("ttft_p99=2s")
    df, _ = stage_frame(load_runs([str(tmp_path)]), slo)
    series, cheapest = slo_verdicts(add_cost(df), slo)
    assert series.iloc[0]["best_level"] != series.iloc[0]["best_level"]  # NaN
    assert "ttft_p99 3000 ms" in series.iloc[0]["why_not"]
    assert cheapest.empty


def test_error_rate_term(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", levels=(16, 32), errors={32: 8})
    slo = parse_slo("error_rate=5%")
    df, _ = stage_frame(load_runs([str(tmp_path)]), slo)
    assert list(slo.stage_meets(df)) == [True, False]  # 8 / 64 = 12.5 % > 5 %


GOOD = ["ttft_p99=2s", "itl_p99=50ms,error_rate=1%", "e2e_sched_p90=3s,tpot_p50=100ms", "ntpot_mean=1500us",
        "error_rate=0.01"]
BAD = ["ttft_p99=2", "error_rate=1", "foo_p99=1s", "ttft_p42=1s", "ttft_p99", "ttft_p99=1s,ttft_p99=2s"]


@pytest.mark.parametrize("text", GOOD + BAD)
def test_every_command_accepts_and_refuses_the_same_slo(text: str) -> None:
    """One grammar (loadtest/slo.py): the load tester and analysis agree on every string."""
    from loadtest.config import parse_slo as loadtest_slo
    from loadtest.errors import BadInput

    results = []
    for parse, error in ((loadtest_slo, BadInput), (parse_slo, AnalysisError)):
        try:
            parse(text)
            results.append("ok")
        except error as exc:
            results.append(str(exc).split("fix")[0].split(": ", 1)[-1])
    assert results[0] == "ok" if text in GOOD else results[0] != "ok"
    assert (results[0] == "ok") == (results[1] == "ok"), results


def test_itl_and_error_rate_are_judged_on_the_stage_only(tmp_path: Path) -> None:
    from loadtest.aggregate import slo_ok

    slo = parse_slo("ttft_p99=1s,itl_p99=50ms,error_rate=1%")
    assert [t.per_request for t in slo.terms] == [True, False, False]
    # a request with a fine TTFT meets it: ITL and error rate have no per-request value
    assert slo_ok({"ttft": 0.5, "tpot": None, "ntpot": 0.1, "e2e": 1.0, "e2e_sched": 1.0},
                  {"ttft_p99": 1.0, "itl_p99": 0.05, "error_rate": 0.01})
    write_run(tmp_path, "llama2-7b-g2", levels=(16,))
    df, _ = stage_frame(load_runs([str(tmp_path)]), parse_slo("itl_p90=50ms"))
    assert not parse_slo("itl_p90=50ms").stage_meets(df).any()  # no ITL p90 in the table: not measured


def test_the_load_tester_judges_error_rate_and_e2e_sched_on_the_stage() -> None:
    from loadtest.aggregate import summarize_stage
    from loadtest.records import RequestRecord

    ok = RequestRecord(stage="s", i=0, scheduled=0.0, warmup=False, sent=0.5, first=0.6, end=1.0, outputTokens=4,
                       chunks=[(0.6, 1), (0.8, 3)])
    bad = RequestRecord(stage="s", i=1, scheduled=0.0, warmup=False, sent=0.1, end=0.2, error="http_5xx", status=500)
    slo = {"error_rate": 0.6, "e2e_sched_p50": 0.9, "itl_p99": 1.0}
    summary = summarize_stage(stage_id="s", mode="batch", level=2, arrival="closed", records=[ok, bad], start=0.0,
                              end=1.0, slo=slo)
    assert summary["sloMet"] == {"error_rate": True, "e2e_sched_p50": False, "itl_p99": True}  # 50 %; 1.0 s > 0.9
    assert summary["goodRequests"] == 0  # its own e2e from the schedule is 1.0 s
