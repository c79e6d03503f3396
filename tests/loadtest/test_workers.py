"""``--workers W``: one stage spread over W processes, one clock, one requests.jsonl."""

from __future__ import annotations

import itertools
import signal

import pytest

from .conftest import endpoint_args, load_run, results_dir_from, run_cli
from .test_faults import _spawn_run, _wait_lines


@pytest.mark.parametrize(("mode", "levels"), [("rate", "150"), ("batch", "5")])
def test_workers_share_a_stage(capsys, tmp_path, fixture_url, mode, levels):
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/2"), "--mode", mode, "--levels", levels,
                             "--requests-per-level", "61", "--output-len", "6", "--workers", "2",
                             "--results-dir", str(tmp_path))
    assert code == 0, err
    summary, records = load_run(results_dir_from(out))
    assert len(records) == 61 and sorted(r["i"] for r in records) == list(range(61))
    assert all(r["error"] is None and r["outputTokens"] == 6 for r in records)
    stage = summary["stages"][0]
    assert stage["requests"] == 61 == stage["completed"]
    assert stage["client"]["workers"] == 2
    assert stage["outputTokens"] == 366
    if mode == "rate":
        # constant arrivals interleave exactly: scheduled gaps are 1/150 s across both workers
        sched = sorted(r["scheduled"] for r in records)
        gaps = [b - a for a, b in itertools.pairwise(sched)]
        assert max(gaps) - min(gaps) < 3e-6 and abs(gaps[0] - 1 / 150) < 3e-6  # times are rounded to 1 us
        assert stage["scheduledRate"] == pytest.approx(150, rel=1e-6)


def test_workers_ctrl_c_partial_summary(tmp_path, fixture_url):
    proc = _spawn_run(f"{fixture_url}/ok/10", tmp_path, "--mode", "rate", "--levels", "60",
                      "--requests-per-level", "100000", "--workers", "2", "--grace", "2")
    run_dir = tmp_path / "llama2-7b-g2" / "r1"
    _wait_lines(run_dir / "requests.jsonl", 30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary, records = load_run(run_dir)
    assert summary["partial"] is True
    stage = summary["stages"][0]
    assert stage["requests"] == len(records) and stage["interrupted"] is True
    assert len({r["i"] for r in records}) == len(records)
