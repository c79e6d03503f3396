"""Per-stage statistics against the fixture's formula (resultsgen) and hand-computed percentiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.frame import stage_frame
from analysis.loader import load_run, load_runs
from analysis.slo import parse_slo

from .resultsgen import Curve, write_run

CURVE = Curve(ttft0=0.05, ttft_slope=0.002, tpot0=0.02, tpot_slope=0.0005)
LEVELS = (16, 32, 64, 128, 256)


@pytest.fixture()
def batch_frame(tmp_path: Path):
    write_run(tmp_path, "llama2-7b-g2", curve=CURVE, levels=LEVELS, waves=2, warmup=3,
              errors={64: 4}, usd_per_hour=2.0)
    df, warnings = stage_frame(load_runs([str(tmp_path)]), parse_slo("ttft_p99=1s,tpot_p50=100ms"))
    return df.set_index("level"), warnings


def test_latencies_and_throughput_follow_the_formula(batch_frame) -> None:
    df, warnings = batch_frame
    assert warnings == []
    for n in LEVELS:
        row = df.loc[n]
        e2e = CURVE.e2e(n, 64)
        assert row["mode"] == "batch" and row["workload"] == "balanced" and row["workload_label"] == "128→64"
        assert row["ttft_p50"] == pytest.approx(CURVE.ttft(n)) and row["ttft_p99"] == pytest.approx(CURVE.ttft(n))
        assert row["tpot_p50"] == pytest.approx(CURVE.tpot(n))
        assert row["e2e_mean"] == pytest.approx(e2e)
        assert row["ntpot_p50"] == pytest.approx(e2e / 64)
        assert row["duration_s"] == pytest.approx(2 * e2e)
        ok = 2 * n - (4 if n == 64 else 0)
        assert row["completed"] == ok and row["requests"] == 2 * n  # warmup requests excluded
        assert row["output_tok_s"] == pytest.approx(ok * 64 / (2 * e2e))
        assert row["input_tok_s"] == pytest.approx(ok * 128 / (2 * e2e))


def test_errors_are_counted_by_class(batch_frame) -> None:
    df, _ = batch_frame
    assert df.loc[64, "errors"] == 4 and df.loc[64, "error_rate"] == pytest.approx(4 / 128)
    assert df.loc[64, "errors_by_class"] == "http_5xx:4"
    assert df.loc[16, "errors"] == 0


def test_goodput_counts_requests_within_every_limit(batch_frame) -> None:
    df, _ = batch_frame
    # tpot(N) = 0.02 + 0.0005 N <= 0.1 up to N = 160: levels 16..128 are all good, 256 none
    assert df.loc[128, "goodput"] == pytest.approx(df.loc[128, "request_throughput"])
    assert df.loc[256, "goodput"] == 0


def test_recomputed_figures_agree_with_the_summary(batch_frame) -> None:
    df, _ = batch_frame
    assert set(df["xcheck"]) == {"ok"}


def test_summary_disagreement_is_reported(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16,))
    doc = json.loads((path / "summary.json").read_text())
    doc["stages"][0]["outputTokensPerS"] *= 1.5
    (path / "summary.json").write_text(json.dumps(doc))
    df, warnings = stage_frame([load_run(path)])
    assert df.loc[0, "xcheck"].startswith("differs: output_tok_s")
    assert any("recomputed figures differ" in w for w in warnings)


def test_percentiles_use_linear_interpolation(tmp_path: Path) -> None:
    path = tmp_path / "llama2-7b-g2" / "r1"
    write_run(tmp_path, "llama2-7b-g2", levels=(100,), waves=1, run_id="r1")
    # rewrite the e2e of request k (k = 1..100) to k seconds: p50 = 50.5, p99 = 99.01, max = 100
    lines = [json.loads(x) for x in (path / "requests.jsonl").read_text().splitlines()]
    for k, rec in enumerate(lines, 1):
        rec["sent"], rec["first"], rec["end"] = 0.0, 0.01, float(k)
    (path / "requests.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    df, _ = stage_frame([load_run(path)])
    row = df.iloc[0]
    expect = np.percentile(np.arange(1, 101), [50, 99])
    assert row["e2e_p50"] == pytest.approx(50.5) == pytest.approx(expect[0])
    assert row["e2e_p99"] == pytest.approx(99.01) and row["e2e_max"] == 100.0


def test_partial_run_takes_levels_from_the_config(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", levels=(16, 32), with_summary=False, truncate_last_line=True)
    df, warnings = stage_frame(load_runs([str(tmp_path)]))
    assert list(df["level"]) == [16, 32] and set(df["partial"]) == {True}
    assert list(df["completed"]) == [32, 63]
    assert set(df["xcheck"]) == {"no summary"}
    assert any("truncated" in w for w in warnings)


def test_rate_stage_window_and_achieved_rate(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=CURVE, mode="rate", levels=(4,), requests_per_rate_level=21)
    df, _ = stage_frame(load_runs([str(tmp_path)]))
    row = df.iloc[0]
    assert row["mode"] == "rate" and row["arrival"] == "constant"
    assert row["achieved_rate"] == pytest.approx(4.0)
    assert row["duration_s"] == pytest.approx(20 / 4 + CURVE.e2e(4, 64))


def test_input_heavy_workload_is_classified(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", levels=(8,), input_len=2048, output_len=8)
    df, _ = stage_frame(load_runs([str(tmp_path)]))
    assert df.loc[0, "workload"] == "input-heavy" and df.loc[0, "workload_label"] == "2048→8"


def test_server_figures_come_from_scrapes_or_else_the_summary(tmp_path: Path) -> None:
    write_run(tmp_path / "a", "llama2-7b-g2", levels=(16, 256), max_running=64)
    write_run(tmp_path / "b", "llama2-7b-g2", levels=(16, 256), max_running=64, scrape=False)
    for root in ("a", "b"):
        df, _ = stage_frame(load_runs([str(tmp_path / root)]))
        df = df.set_index("level")
        assert df.loc[256, "server_running_max"] == 64 and df.loc[256, "server_queue_max"] == 192, root
        assert df.loc[256, "server_preemptions"] == 2 and df.loc[16, "server_preemptions"] == 0, root


def test_client_bottleneck_stages_are_warned_about(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16, 32))
    doc = json.loads((path / "summary.json").read_text())
    doc["stages"][1]["clientBottleneck"] = True
    (path / "summary.json").write_text(json.dumps(doc))
    df, warnings = stage_frame([load_run(path)])
    assert list(df["client_bottleneck"]) == [False, True]
    assert [w for w in warnings if "could not keep its schedule" in w and "level 32" in w]
