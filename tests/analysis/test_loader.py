"""Loading result directories: complete, partial, damaged and unknown-version runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.errors import AnalysisError
from analysis.loader import find_run_dirs, load_run, load_runs, read_requests

from .resultsgen import write_run


def test_complete_run_loads_every_request_and_the_spec(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16, 32), waves=2)
    run = load_run(path)
    assert run.stack == "llama2-7b-g2" and run.modelled and run.source == "modelled"
    assert not run.partial and run.warnings == []
    assert len(run.requests) == 2 * 16 + 2 * 32
    assert run.spec["accelerator"]["machineType"] == "g2-standard-8"
    assert set(run.server_metrics["role"]) == {"running", "waiting", "kv_usage", "preemptions"}
    # histogram buckets are not kept
    assert not run.server_metrics["family"].str.contains("bucket").any()


def test_partial_run_without_summary_and_truncated_line_loads_with_warnings(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16,), waves=1, with_summary=False, truncate_last_line=True)
    run = load_run(path)
    assert run.partial and run.summary is None
    assert len(run.requests) == 15  # the 16th line was cut
    text = " ".join(run.warnings)
    assert "no summary.json" in text and "truncated" in text and "line 16" in text


def test_unknown_format_version_is_refused_naming_file_and_version(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16,), format_version=99)
    with pytest.raises(AnalysisError) as exc:
        load_run(path)
    assert "run.json" in str(exc.value) and "99" in str(exc.value) and "versions 1 and 2" in str(exc.value)


def test_missing_format_version_is_refused(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16,))
    doc = json.loads((path / "run.json").read_text())
    del doc["formatVersion"]
    (path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(AnalysisError, match="formatVersion"):
        load_run(path)


def test_damage_in_the_middle_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "requests.jsonl"
    good = json.dumps({"stage": "s0", "i": 0, "sent": 0.0, "end": 1.0, "outputTokens": 3})
    f.write_text(good + "\n{not json\n" + good + "\n")
    with pytest.raises(AnalysisError, match=r"requests.jsonl:2"):
        read_requests(f)


def test_arguments_expand_to_run_directories(tmp_path: Path) -> None:
    a = write_run(tmp_path, "llama2-7b-g2", levels=(16,))
    b = write_run(tmp_path, "llama2-7b-a3", levels=(16,))
    assert set(find_run_dirs([str(tmp_path)])) == {a.resolve(), b.resolve()}
    assert find_run_dirs([str(tmp_path / "*" / "*")]) == sorted([a.resolve(), b.resolve()])
    assert [r.stack for r in load_runs([str(a), str(a.parent)])] == ["llama2-7b-g2"]  # no duplicates


@pytest.mark.parametrize("arg", ["does/not/exist", "nothing-*-here"])
def test_arguments_that_name_no_run_are_refused(tmp_path: Path, arg: str) -> None:
    with pytest.raises(AnalysisError) as exc:
        find_run_dirs([str(tmp_path / arg)])
    assert "fix:" in str(exc.value)


def test_directory_without_runs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match=r"holds no run\.json"):
        find_run_dirs([str(tmp_path / "empty")])


def test_blank_lines_are_tolerated_and_chunks_are_not_loaded(tmp_path: Path) -> None:
    f = tmp_path / "requests.jsonl"
    rec = {"stage": "s0", "i": 0, "sent": 0.0, "first": 0.1, "end": 1.0, "outputTokens": 3,
           "chunks": [[0.1, 1], [0.5, 2]], "error": None, "warmup": False}
    f.write_text(json.dumps(rec) + "\n\n" + json.dumps({**rec, "i": 1}) + "\n")
    df, warnings = read_requests(f)
    assert list(df["i"]) == [0, 1] and warnings == [] and "chunks" not in df.columns


def test_version_2_incomplete_run_is_partial_and_its_warnings_are_kept(tmp_path: Path) -> None:
    path = write_run(tmp_path, "llama2-7b-g2", levels=(16,), format_version=2)
    doc = json.loads((path / "summary.json").read_text())
    doc.update({"complete": False, "warnings": ["endpoint slow to start"]})
    (path / "summary.json").write_text(json.dumps(doc))
    run = load_run(path)
    assert run.format_version == 2 and run.partial
    assert any("did not finish" in w for w in run.warnings)
    assert any("load tester: endpoint slow to start" in w for w in run.warnings)

