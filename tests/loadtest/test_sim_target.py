"""``--target sim``: the stack's simulated endpoint as a subprocess, one per dialect the stacks use."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import load_run, results_dir_from, run_cli


@pytest.mark.parametrize(("stack", "dialect", "source"), [
    ("llama2-7b-g2", "openai", "usage"),
    ("gemma7b-tgi-l4", "tgi", "details"),
    ("llama2-7b-triton-l4", "triton", "chunks"),
    ("gemma7b-jetstream-v5e", "jetstream", "chunks"),
])
def test_sim_target_runs_and_is_marked_modelled(capsys, tmp_path, stack, dialect, source):
    code, out, err = run_cli(capsys, "run", "--stack", stack, "--target", "sim", "--mode", "batch", "--levels", "4",
                             "--requests-per-level", "4", "--output-len", "4", "--input-len", "32",
                             "--scrape-interval", "0.2", "--results-dir", str(tmp_path), "--no-progress")
    assert code == 0, err
    run_dir = results_dir_from(out)
    summary, records = load_run(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    for doc in (summary, run):
        assert doc["target"] == "sim" and doc["modelled"] is True and doc["stack"] == stack
        assert doc["spec"]["cost"]["usdPerHour"] > 0 and doc["outputs"]["dialect"] == dialect
    assert len(records) == 4 and all(r["error"] is None and r["outputTokens"] == 4 for r in records)
    assert {r["tokenSource"] for r in records} == {source}
    stage = summary["stages"][0]
    assert stage["serverMetrics"] and stage["serverMetrics"]["runningMax"] is not None
    # the simulator was stopped: nothing answers at its address any more
    with pytest.raises(httpx.HTTPError):
        httpx.get(summary["endpoint"]["baseUrl"] + run["outputs"]["healthPath"], timeout=1)


def test_sim_target_bad_stack_is_bad_input(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--stack", "no-such-stack", "--target", "sim", "--mode", "batch",
                           "--levels", "1", "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert code == 2 and "no-such-stack" in err
    assert not (tmp_path / "r").exists()
