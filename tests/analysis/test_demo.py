"""The demo orchestration: lanes, rate sizing, loud failure without a load tester, and (slow) the real
pipeline end to end on one stack with a tiny workload."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analysis import demo
from analysis.cli import main
from analysis.demo_attempt import Attempt
from analysis.errors import AnalysisError

from .resultsgen import Curve, write_run

ROOT = Path(__file__).resolve().parents[2]


def test_fast_endpoints_share_one_lane() -> None:
    groups = demo.lanes(list(demo.DEMO_STACKS))
    assert groups[0] == ["llama2-7b-a3", "llama2-70b-a3"]  # H100 stacks stream fast: one at a time, first
    assert sorted(g[0] for g in groups[1:]) == ["llama2-70b-g2", "llama2-70b-g2-fp8", "llama2-7b-g2",
                                                 "llama2-7b-g2-fp8", "llama2-7b-g2x2"]


def test_rate_sweep_is_sized_from_the_measured_capacity(tmp_path: Path) -> None:
    curve = Curve(0.1, 0.0, 0.05, 0.001)
    runs = [write_run(tmp_path, "llama2-7b-g2", curve=curve, levels=(n,), waves=1, run_id=f"b{n}") for n in (16, 64)]
    capacity = max(n / curve.e2e(n, 64) for n in (16, 64))  # one static batch: n requests in one e2e
    assert demo.rate_levels(runs, (0.5, 1.0)) == [demo._round2(capacity / 2), demo._round2(capacity)]


def test_demo_fails_loudly_without_the_load_tester(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(demo, "_module_available", lambda module, sub: module != "loadtest")
    monkeypatch.setattr(demo, "plan_stacks", lambda stacks, out: {})
    rc = main(["demo", "--out", str(tmp_path / "demo")])
    assert rc == demo.EXIT_FAILED
    err = capsys.readouterr().err
    assert "demo FAILED" in err and "python -m loadtest run" in err and "does not fake results" in err
    assert not (tmp_path / "demo" / "report.md").exists()


def test_missing_plan_command_is_skipped_with_a_notice(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(demo, "_module_available", lambda module, sub: False)
    demo.plan_stacks(["llama2-7b-g2"], tmp_path)
    assert "SKIPPED" in capsys.readouterr().out


def test_unknown_demo_stack_is_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--stacks", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown stack(s): nope" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_the_real_pipeline_on_one_stack(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "analysis", "demo", "--stacks", "llama2-7b-a3", "--batch-levels", "4,8",
           "--prefill-levels", "2", "--rate-seconds", "2", "--out", str(out)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "step 1/3" in p.stdout and "step 3/3" in p.stdout and f"Report: {out / 'report.md'}" in p.stdout
    report = (out / "report.md").read_text()
    assert "Every number in this report is *modelled*" in report and "llama2-7b-a3" in report
    stages = (out / "stages.csv").read_text()
    assert stages.count("\n") >= 1 + 2 + 2 + 1  # 2 batch levels, ≥ 2 rates, 1 prefill level
    doc = json.loads((out / "verdicts.json").read_text())
    assert len(doc["recommendations"]) == 5
    (attempt,) = (out / "results").iterdir()  # one attempt, its own directory
    runs = sorted(p.name for p in (attempt / "llama2-7b-a3").iterdir())
    assert [r.split("-", 1)[1] for r in runs] == ["batch-4", "batch-8", "prefill-2", "rate"]
    ledger = json.loads((attempt / "demo-attempt.json").read_text())
    assert ledger["complete"] is True and ledger["failed"] == {} and len(ledger["runs"]) == 4
    assert "## Model check: measured against predicted" in report
    assert "## Offline plans" in report
    # the recommendation on a chip with no published measurement is followed by one on measured ground
    picks = report.split("## What `stacks recommend` would deploy", 1)[1]
    assert "unvalidated" in picks and "on measured ground (`--validated-only`) it picks" in picks
    assert (out / "plans" / "llama2-7b-a3.json").is_file() or "SKIPPED" in p.stdout


def test_invalid_demo_stack_fails_before_anything_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text("config:\n  gke-llm-bench:accelerator:\n    gpu: nvidia-l5\n")
    monkeypatch.setattr("stacks.loader.stack_files", lambda *a, **k: {"broken": bad})
    assert main(["demo", "--stacks", "broken", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid demo stack(s)" in err and "Pulumi.broken.yaml" in err and "fix:" in err



HANGING_LOAD_TESTER = r'''
import subprocess, sys, time
from pathlib import Path
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
Path(sys.argv[0] + ".child").write_text(str(child.pid))
print("stage 0-batch-4: batch 4: 0/4 ok", flush=True)
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a load tester that never ends and ignores SIGTERM
time.sleep(600)
'''


def test_a_run_over_its_timeout_fails_the_demo_with_its_log_and_is_stopped(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "fake_loadtest.py"
    fake.write_text(HANGING_LOAD_TESTER)
    monkeypatch.setattr(demo, "_py", lambda: [sys.executable, str(fake)])
    monkeypatch.setattr(demo, "RUN_TIMEOUT_S", 1.0)
    monkeypatch.setattr(demo, "_stop_tree", functools.partial(demo._stop_tree, grace=1.0))
    attempt = Attempt.new(tmp_path / "results", {})
    runner = demo.LoadRunner("llama2-7b-g2", attempt, tmp_path, demo.Workloads(), demo.StackProgress("llama2-7b-g2"),
                             threading.Event())
    with pytest.raises(demo.DemoFailed) as exc:
        runner.run("batch-4", ["--mode", "batch"])
    assert "ran over 1 s" in str(exc.value) and str(tmp_path / "llama2-7b-g2-batch-4.log") in str(exc.value)
    child = int((tmp_path / "fake_loadtest.py.child").read_text())
    assert _gone(child), "the stopped load tester's child process was left running"


def _gone(pid: int, wait: float = 3.0) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie awaiting its reaper); SIGKILL lands asynchronously."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_lanes_at_once_follow_the_idle_cores() -> None:
    assert demo.parallel_lanes(6, 0.0) == 1  # a saturated machine still makes progress, one lane at a time
    assert demo.parallel_lanes(6, 2.0) == int(2.0 / demo.LANE_CPU_CORES)
    assert demo.parallel_lanes(3, 64.0) == 3
    assert 0.0 <= demo.cpu_headroom(0.05) <= (os.cpu_count() or 1) + 1e-9


def _finished_run(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"complete": True}))
    return path


def test_a_failed_run_is_recorded_and_the_stack_goes_on(tmp_path: Path, monkeypatch) -> None:
    attempt = Attempt.new(tmp_path, {"k": 1})
    progress = demo.StackProgress("s", total=demo.Workloads().runs_per_stack)
    runner = demo.LoadRunner("s", attempt, tmp_path, demo.Workloads(), progress, threading.Event())
    made: list[str] = []

    def run(name: str, args: list[str]) -> Path:
        if name == "batch-32":
            raise demo.DemoFailed("s: `loadtest run` exited 3; log x.log:\nreset: ReadError")
        made.append(name)
        return _finished_run(tmp_path / "runs", name)

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(demo, "rate_levels", lambda runs, fractions: [1.0, 2.0])
    runner.all()
    assert made == ["batch-16", "batch-64", "batch-128", "batch-256", "rate", "prefill-4", "prefill-16"]
    assert progress.finished == progress.total and progress.failed == 1
    ledger = json.loads((attempt.dir / "demo-attempt.json").read_text())
    assert list(ledger["failed"]) == ["s/batch-32"] and "ReadError" in ledger["failed"]["s/batch-32"]


def test_resume_reuses_finished_runs_and_refuses_other_workloads(tmp_path: Path) -> None:
    first = Attempt.new(tmp_path, {"stacks": ["a"], "rateSeconds": 8.0})
    done = _finished_run(first.dir / "a", "batch-16")
    first.record("a", "batch-16", done)
    first.record("a", "batch-32", first.dir / "a" / "cut")  # started, never finished: redone
    first.fail("a", "rate", "boom")
    again = Attempt.resume(tmp_path, {"stacks": ["a"], "rateSeconds": 8.0})
    assert again.dir == first.dir and again.finished("a", "batch-16") == done
    assert again.finished("a", "batch-32") is None and again.finished("a", "rate") is None
    with pytest.raises(AnalysisError) as exc:
        Attempt.resume(tmp_path, {"stacks": ["a"], "rateSeconds": 4.0})
    assert "rateSeconds" in str(exc.value) and "--resume" in str(exc.value)
    with pytest.raises(AnalysisError):
        Attempt.resume(tmp_path / "empty", {})
    assert Attempt.new(tmp_path, {}).dir != first.dir  # a new attempt never reuses a directory


def test_a_partial_demo_still_reports_and_says_what_is_missing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(demo, "plan_stacks", lambda stacks, out: {})
    monkeypatch.setattr(demo, "_module_available", lambda module, sub: True)

    def load_test_all(stacks, attempt, logs, workloads):
        attempt.fail("llama2-7b-a3", "batch-16", "llama2-7b-a3: `loadtest run` exited 3; log l.log")
        return [write_run(attempt.dir, "llama2-7b-g2", curve=Curve(), levels=(16, 32))]

    monkeypatch.setattr(demo, "_load_test_all", load_test_all)
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--stacks", "llama2-7b-g2,llama2-7b-a3"])
    assert rc == demo.EXIT_FAILED
    err = capsys.readouterr().err
    assert "demo INCOMPLETE: 1 run(s) failed" in err and "--resume" in err
    report = (out / "report.md").read_text()
    missing = report.split("## Missing from this demo", 1)[1]
    assert "llama2-7b-a3/batch-16" in missing and "exited 3" in missing
