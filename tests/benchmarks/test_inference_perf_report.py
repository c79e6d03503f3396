"""inference-perf report parsing and config generation (no install, no network)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.inference_perf_compare import build_config, parse_stage_report


def stage_report(count: int, achieved_rate: float, failures: int, ttft_p99_s: float | None) -> dict:
    """The shape of inference-perf 0.7.0's stage_0_lifecycle_metrics.json (fields the parser reads)."""
    successes: dict = {"count": count - failures}
    if ttft_p99_s is not None:
        successes["latency"] = {"time_to_first_token": {"median": ttft_p99_s / 4, "p99": ttft_p99_s}}
    return {"benchmark_time_seconds": 15.0,
            "load_summary": {"count": count, "schedule_delay": {"p99": 0.0021}, "send_duration": 15.0,
                             "requested_rate": 800.0, "achieved_rate": achieved_rate},
            "successes": successes, "failures": {"count": failures, "by_label": {}}}


def test_parses_rate_errors_ttft_and_dispatch() -> None:
    row = parse_stage_report(stage_report(12000, 800.2, 0, 0.0039), rate=800, duration=15)
    assert row["requests"] == 12000 and row["errors"] == 0
    assert row["achieved"] == pytest.approx(800.0)  # capped by sent / requested duration
    assert row["ttft_p99_ms"] == pytest.approx(3.9)
    assert row["dispatch_p99_ms"] == pytest.approx(2.1)


def test_fewer_requests_sent_than_asked_lowers_achieved() -> None:
    # its send rate looks fine, but only 9000 of 12000 requests went out in the stage
    row = parse_stage_report(stage_report(9000, 799.0, 0, 0.001), rate=800, duration=15)
    assert row["achieved"] == pytest.approx(600.0)


def test_failures_count_and_missing_ttft_fails_bound() -> None:
    row = parse_stage_report(stage_report(100, 100.0, 100, None), rate=100, duration=1)
    assert row["errors"] == 100
    assert math.isinf(row["ttft_p99_ms"])


def test_report_without_load_summary_names_the_key() -> None:
    with pytest.raises(ValueError, match="load_summary"):
        parse_stage_report({"successes": {}}, rate=1, duration=1)


def test_config_is_one_streamed_constant_stage_with_two_workers(tmp_path: Path) -> None:
    cfg = build_config("http://127.0.0.1:8080", 1600, 15.0, tmp_path / "tok", tmp_path / "reports")
    assert cfg["api"] == {"type": "completion", "streaming": True}
    assert cfg["load"]["type"] == "constant" and cfg["load"]["num_workers"] == 2
    assert cfg["load"]["stages"] == [{"rate": 1600, "duration": 15}]
    assert cfg["data"]["type"] == "random"
    assert cfg["data"]["input_distribution"]["min"] == cfg["data"]["input_distribution"]["max"] == 128
    assert cfg["data"]["output_distribution"]["mean"] == 64
    assert cfg["server"]["type"] == "vllm" and cfg["server"]["base_url"] == "http://127.0.0.1:8080"
    assert cfg["tokenizer"]["pretrained_model_name_or_path"] == str(tmp_path / "tok")
