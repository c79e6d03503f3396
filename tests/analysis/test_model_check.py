"""Analysis decides on the model's replay for simulated endpoints and never on a host-bound stage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.loader import load_runs
from analysis.report import analyse, write_report
from analysis.slo import parse_slo

from .resultsgen import Curve, write_run

MODEL = Curve(0.05, 0.001, 0.02, 0.0002)
SLOW_HOST = Curve(0.30, 0.004, 0.05, 0.0008)  # what a busy machine makes of the same simulation


def _analyse(root: Path, slo: str = "ttft_p99=200ms") -> object:
    return analyse(load_runs([str(root)]), parse_slo(slo))


def test_a_simulated_run_is_decided_on_its_prediction_however_busy_the_host(tmp_path: Path) -> None:
    calm, busy = tmp_path / "calm", tmp_path / "busy"
    write_run(calm, "llama2-7b-g2", curve=MODEL, predicted=MODEL)
    write_run(busy, "llama2-7b-g2", curve=SLOW_HOST, predicted=MODEL)
    a, b = _analyse(calm), _analyse(busy)
    cols = ["stack", "best_level", "output_tok_s", "usd_per_m_tokens"]
    pd.testing.assert_frame_equal(a.series[cols], b.series[cols], rtol=1e-9)  # the same answer
    assert set(a.stages["basis"]) == {"predicted"} and not a.stages["host_bound"].any()
    assert b.stages["host_bound"].all() and b.stages["decides"].all()  # decided on the (calm) prediction
    assert (b.stages["measured_ttft_p50"] > b.stages["predicted_ttft_p50"]).all()
    assert b.stages["model_error_ttft_p50"].gt(0.5).all()


def test_the_report_shows_measured_against_predicted(tmp_path: Path) -> None:
    write_run(tmp_path / "r", "llama2-7b-g2", curve=SLOW_HOST, predicted=MODEL)
    a = _analyse(tmp_path / "r")
    text = write_report(a, tmp_path / "out", plots=False).read_text()
    section = text.split("## Model check: measured against predicted", 1)[1].split("\n## ", 1)[0]
    assert "host-bound" in section and "**yes**" in section and "predicted tok/s" in section
    assert "5 stage(s) host-bound" in section


def test_a_measured_run_is_decided_on_its_measurement_and_the_model_error_is_shown(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=SLOW_HOST, predicted=MODEL, modelled=False)
    a = _analyse(tmp_path, "ttft_p99=10s")
    st = a.stages
    assert set(st["basis"]) == {"measured"} and st["host_bound"].isna().all() and st["decides"].all()
    assert (st["ttft_p50"] == st["measured_ttft_p50"]).all()
    assert st["model_error_ttft_p50"].notna().all()


def test_a_client_bound_measurement_decides_nothing(tmp_path: Path) -> None:
    import json

    path = write_run(tmp_path, "llama2-7b-g2", curve=MODEL, modelled=False, levels=(16, 32))
    summary = json.loads((path / "summary.json").read_text())
    summary["stages"][1]["clientBottleneck"] = True
    (path / "summary.json").write_text(json.dumps(summary))
    a = _analyse(tmp_path, "ttft_p99=10s")
    assert a.stages["decides"].tolist() == [True, False]
    assert a.series["best_level"].tolist() == [16]  # level 32 was client-bound: not evidence
    assert any("decides no verdict" in w for w in a.warnings)


def test_runs_without_predictions_still_load(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=MODEL)
    st = _analyse(tmp_path).stages
    assert set(st["basis"]) == {"measured"} and st["predicted_output_tok_s"].isna().all() and st["decides"].all()
