"""``python -m analysis compare``: the report, its files, and clear failures."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.cli import main

from .resultsgen import write_run


def test_compare_writes_report_tables_plots_and_verdicts(guide_results: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    rc = main(["compare", str(guide_results / "*" / "*"), "--out", str(out), "--slo", "ttft_p99=2s,tpot_p50=100ms"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed
    assert "Recommendation 3 (G2 for ≤ 7B, A3 for larger models): supported" in printed
    for name in ("report.md", "comparison.csv", "stages.csv", "slo.csv", "verdicts.json", "latency_throughput.png",
                 "per_dollar.png", "batch_effect.png", "prefill.png", "server_timeline.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "Every number in this report is *modelled*" in report
    for section in ("## Headline", "## The guide's findings", "## The guide's five recommendations",
                    "## Best load level under the SLO", "## Comparison table", "## Provenance"):
        assert section in report
    assert "![" in report and "per_dollar.png" in report
    doc = json.loads((out / "verdicts.json").read_text())
    assert len(doc["recommendations"]) == 5 and doc["findings"]
    header = (out / "comparison.csv").read_text().splitlines()[0]
    for col in ("stack", "accelerator × count", "$/h", "TTFT p99 s", "TPOT p50 s", "goodput req/s",
                "$/M output tok", "tok/s per $ (norm.)"):
        assert col in header


def test_bad_slo_exits_2_naming_the_option(guide_results: Path, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(guide_results), "--slo", "ttft=2s", "--out", str(tmp_path)]) == 2
    assert "--slo" in capsys.readouterr().err


def test_unknown_version_exits_2_without_traceback(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r", "llama2-7b-g2", levels=(16,), format_version=7)
    assert main(["compare", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "formatVersion` 7 is not supported" in err and "Traceback" not in err


def test_partial_run_is_compared_with_a_warning(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r", "llama2-7b-g2", levels=(16, 32), with_summary=False, truncate_last_line=True)
    assert main(["compare", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "truncated" in captured.err
    assert "truncated" in (tmp_path / "o" / "report.md").read_text()


def test_figures_without_data_are_named_not_drawn(tmp_path: Path) -> None:
    write_run(tmp_path / "r", "llama2-7b-g2", levels=(16, 32))
    assert main(["compare", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert (tmp_path / "o" / "batch_effect.png").is_file() and not (tmp_path / "o" / "prefill.png").exists()
    assert "_Prefill throughput and prefill tokens per dollar on the input-heavy workload: no data" in report


def test_run_without_completed_requests_is_left_out_with_a_warning(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r", "llama2-7b-g2", levels=(16,))
    empty = write_run(tmp_path / "r", "llama2-7b-a3", levels=(16,))
    (empty / "requests.jsonl").write_text("")
    assert main(["compare", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "empty (no request finished)" in err and "the run is left out" in err
    assert "llama2-7b-a3" not in (tmp_path / "o" / "comparison.csv").read_text()
