"""Load generation as N pods (an Indexed Job), run here as N local processes against the simulator:
one seeded schedule shared by index, shares streamed to a "bucket" directory, merged into one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from analysis.frame import stage_frame
from analysis.loader import load_runs
from loadtest.bucket import Mirror, read_pod
from loadtest.errors import BadInput, Unreachable
from loadtest.merge import AUDIT_FILE, merge
from loadtest.pods import parse_start_at, pod_index, start_wall
from loadtest.schedule import StageSpec, arrival_offsets, share_of, stage_span
from loadtest.targets import sim_target

from .conftest import REPO, run_cli

STACK = "llama2-7b-g2"
PODS = 3
PER_LEVEL = 90


@pytest.fixture(scope="module")
def sim():
    target = sim_target(STACK, None)
    yield target
    target.close()


def _pods_run(sim, tmp_path: Path, *extra: str) -> tuple[Path, float]:
    """Run PODS pod processes to completion, ship each share with the uploader, return the bucket."""
    start = time.time() + 4.0  # time for every process to import, tokenize and build its schedule
    procs = []
    for k in range(PODS):
        env = {**os.environ, "JOB_COMPLETION_INDEX": str(k)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "loadtest", "run", "--stack", STACK, "--endpoint", sim.base_url,
             "--dialect", sim.dialect, "--model", sim.model, "--no-progress", "--pods", str(PODS),
             "--start-at", f"{start:.3f}", "--results-dir", str(tmp_path / f"pod{k}"), "--run-id", "r1",
             "--stage-gap", "0.5", "--output-len", "8", *extra],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    bucket = tmp_path / "bucket" / "r1"
    for k in range(PODS):
        code = subprocess.run([sys.executable, "-m", "loadtest", "upload", str(tmp_path / f"pod{k}"),
                               str(bucket / str(k)), "--once"], cwd=REPO, capture_output=True, text=True)
        assert code.returncode == 0, code.stderr
    return bucket, start


def test_pods_merge_into_the_one_requested_schedule(sim, tmp_path):
    bucket, start = _pods_run(sim, tmp_path, "--mode", "rate", "--levels", "40,80", "--arrival", "poisson",
                              "--requests-per-level", str(PER_LEVEL), "--seed", "7")
    run_dir = merge(str(bucket), tmp_path / "results")
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert summary["complete"] is True and summary["pods"]["count"] == PODS
    assert len(records) == 2 * PER_LEVEL and all(r["error"] is None for r in records)
    run0 = json.loads((bucket / "0" / "run.json" / "000000").read_text())
    for s, (stage, level) in enumerate(zip(summary["stages"], (40, 80), strict=True)):
        mine = sorted((r for r in records if r["stage"] == stage["id"]), key=lambda r: r["i"])
        assert [r["i"] for r in mine] == list(range(s * PER_LEVEL, (s + 1) * PER_LEVEL))
        # the union of the shares is exactly the seeded global schedule (times rounded to 1 us)
        offsets = arrival_offsets(level, "poisson", 7 + s)
        expected = [next(offsets) for _ in range(PER_LEVEL)]
        first = mine[0]["scheduled"]
        assert [r["scheduled"] - first for r in mine] == pytest.approx(expected, abs=3e-6)
        assert stage["requests"] == stage["completed"] == PER_LEVEL
        assert stage["outputTokens"] == 8 * PER_LEVEL
        assert stage["serverMetrics"]["scrapes"] >= 1  # pod 0 scraped the server for every pod
        assert "predicted" in stage["model"]  # the merged stage is replayed on the performance model
    # stage 0 began at the shared start time, on pod 0's clock
    assert summary["stages"][0]["id"].startswith("0-rate")
    t0 = json.loads((bucket / "0" / "run.json" / "000000").read_text())["clockOrigin"]
    first0 = min(r["scheduled"] for r in records if r["stage"] == summary["stages"][0]["id"])
    assert t0 + first0 == pytest.approx(start, abs=2e-3)
    audit = json.loads((run_dir / AUDIT_FILE).read_text())
    assert [p["index"] for p in audit["pods"]] == [0, 1, 2]
    assert sum(p["sent"] for p in audit["pods"]) == 2 * PER_LEVEL
    assert all(p["sent"] in (59, 60, 61) and p["errors"] == 0 and p["dispatchDelayMs"]["p50"] is not None
               for p in audit["pods"])
    assert all(c["numbersContiguous"] and c["pods"] == PODS for c in audit["stages"])
    assert run0["pod"]["count"] == PODS and "pod" not in json.loads((run_dir / "run.json").read_text())
    pod1 = json.loads((bucket / "1" / "run.json" / "000000").read_text())
    assert pod1["endpoint"]["metricsUrl"] is None  # only pod 0 scrapes
    scrapes = (run_dir / "server_metrics.jsonl").read_text().splitlines()
    assert any(json.loads(x)["stage"] == summary["stages"][1]["id"] for x in scrapes)
    # analysis reads the merged run like any other
    frame, _ = stage_frame(load_runs([str(run_dir)]))
    assert sorted(frame["level"]) == [40.0, 80.0] and (frame["requests"] == PER_LEVEL).all()


def test_pods_split_a_closed_loop_by_clients(sim, tmp_path):
    bucket, _ = _pods_run(sim, tmp_path, "--mode", "batch", "--levels", "7", "--requests-per-level", "40")
    run_dir = merge(str(bucket), tmp_path / "results")
    summary = json.loads((run_dir / "summary.json").read_text())
    stage = summary["stages"][0]
    assert stage["level"] == 7 and stage["requests"] == 40 == stage["completed"]
    audit = json.loads((run_dir / AUDIT_FILE).read_text())
    assert sorted(p["measured"] for p in audit["pods"]) == [13, 13, 14]


def test_merge_refuses_missing_pods_and_merges_partial_on_request(sim, tmp_path):
    bucket, _ = _pods_run(sim, tmp_path, "--mode", "rate", "--levels", "60", "--requests-per-level", "30")
    os.rename(bucket / "2", tmp_path / "gone")
    with pytest.raises(BadInput, match=r"pod\(s\) \[2\] of 3"):
        merge(str(bucket), tmp_path / "results")
    run_dir = merge(str(bucket), tmp_path / "partial", partial=True)
    with pytest.raises(BadInput, match="merged before"):
        merge(str(bucket), tmp_path / "partial", partial=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["partial"] is True and summary["stages"][0]["requests"] == 20
    assert any("pods [2] of 3" in w for w in summary["warnings"])
    assert any("scheduled requests are missing" in w for w in summary["warnings"])


def test_mirror_ships_complete_lines_once_and_survives_a_restart(tmp_path):
    run_dir = tmp_path / "results" / "stack" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text('{"a": 1}')
    (run_dir / "requests.jsonl").write_text('{"i": 0}\n{"i": 1}\n{"i": 2')  # the last line is still being written
    dest = tmp_path / "bucket" / "r1" / "0"
    assert Mirror(run_dir, str(dest)).sync() > 0
    with open(run_dir / "requests.jsonl", "a") as f:
        f.write('}\n{"i": 3}\n')
    (run_dir / "run.json").write_text('{"a": 2}')
    restarted = Mirror(run_dir, str(dest))  # a restarted sidecar remembers what it shipped
    restarted.sync()
    assert restarted.sync() == 0  # nothing new: nothing shipped
    assert sorted(p.name for p in (dest / "requests.jsonl").iterdir()) == ["000000", "000001"]
    files = read_pod(str(dest))
    assert files["requests.jsonl"] == b'{"i": 0}\n{"i": 1}\n{"i": 2}\n{"i": 3}\n'
    assert json.loads(files["run.json"]) == {"a": 2}


def test_shares_of_a_stage():
    spec = StageSpec("0-rate-10", "rate", 10.0, "poisson", 50, None, seed=3, max_concurrency=5)
    shares = [share_of(spec, k, 3) for k in range(3)]
    assert all(s.level == 10.0 and s.count == 50 and s.seed == 3 for s in shares)
    assert [s.max_concurrency for s in shares] == [2, 2, 1]
    closed = StageSpec("0-batch-8", "batch", 8.0, "closed", 50, None)
    assert [(s.level, s.count) for s in (share_of(closed, k, 3) for k in range(3))] == [(3, 17), (3, 17), (2, 16)]
    offsets = arrival_offsets(10.0, "poisson", 3)
    assert stage_span(spec) == pytest.approx([next(offsets) for _ in range(50)][-1])
    assert stage_span(closed) is None


def test_start_at_forms_and_the_pod_index():
    assert parse_start_at("job+120") == ("job", 120.0)
    assert parse_start_at("2026-12-03T10:00:00Z") == ("at", 1796292000.0)
    assert parse_start_at("1796292000.5") == ("at", 1796292000.5)
    for bad in ("job-5", "tomorrow", "2026-12-03T10:00:00"):
        with pytest.raises(BadInput, match="--start-at"):
            parse_start_at(bad)
    assert pod_index(None, {"JOB_COMPLETION_INDEX": "4"}) == 4
    with pytest.raises(BadInput, match="JOB_COMPLETION_INDEX"):
        pod_index(None, {})


class _FakeApi(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        ok = self.path == "/apis/batch/v1/namespaces/bench/jobs/loadgen-r1" and self.status == 200
        body = json.dumps({"metadata": {"creationTimestamp": "2026-12-03T10:00:00Z"}} if ok else {}).encode()
        self.send_response(200 if ok else self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_start_at_job_reads_the_jobs_creation_time(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("LOADGEN_KUBE_API", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("JOB_NAME", "loadgen-r1")
        monkeypatch.setenv("POD_NAMESPACE", "bench")
        assert start_wall("job+90") == 1796292000.0 + 90
        _FakeApi.status = 403
        with pytest.raises(Unreachable, match="HTTP 403") as exc:
            start_wall("job+90", timeout=1.0)
        assert "get` on its own Job" in str(exc.value)
    finally:
        _FakeApi.status = 200
        server.shutdown()


@pytest.mark.parametrize(("flags", "message"), [
    (["--mode", "sweep", "--start-at", "job+1"], "--mode sweep"),
    (["--mode", "rate", "--levels", "1"], "--pods needs --start-at"),
    (["--mode", "batch", "--levels", "1,2", "--start-at", "job+1"], "needs --duration"),
    (["--mode", "rate", "--levels", "1", "--start-at", "job+1", "--pod-index", "3"], "--pod-index 3"),
])
def test_pod_flags_refused_with_the_fix(capsys, monkeypatch, flags, message):
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    code, _, err = run_cli(capsys, "run", "--stack", STACK, "--endpoint", "http://127.0.0.1:9", "--dialect", "openai",
                           "--model", "m", "--pods", "3", "--pod-index", "0", *flags)
    assert code == 2 and message in err and "fix:" in err


def test_pods_refuse_a_simulator_each(capsys):
    code, _, err = run_cli(capsys, "run", "--stack", STACK, "--target", "sim", "--mode", "rate", "--levels", "1",
                           "--pods", "2", "--pod-index", "0", "--start-at", "job+1")
    assert code == 2 and "simulated endpoint of its own" in err and "--endpoint" in err
