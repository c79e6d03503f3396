"""Every fault a load test meets is recorded as its own error class, with the tokens received,
and the number of records always equals the number of requests sent (docs/results-format.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadtest.targets import free_port

from .conftest import REPO, endpoint_args, load_run, results_dir_from, run_cli


def _run(capsys, tmp_path, url, *extra):
    code, out, err = run_cli(capsys, "run", *endpoint_args(url), "--mode", "batch", "--levels", "4",
                             "--requests-per-level", "8", "--output-len", "10", "--input-len", "16",
                             "--results-dir", str(tmp_path), *extra)
    return code, out, err


def _served(url: str) -> int:
    text = httpx.get(url + "/metrics").text
    return int(float(next(line for line in text.splitlines() if line.startswith("fixture_requests_total")).split()[1]))


def test_server_down_at_start_exits_3_and_leaves_no_results_dir(capsys, tmp_path):
    port = free_port()  # nothing listens here
    code, _, err = _run(capsys, tmp_path / "res", f"http://127.0.0.1:{port}")
    assert code == 3
    assert "does not answer" in err and f"127.0.0.1:{port}/health" in err
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize(("status", "error"), [(503, "http_5xx"), (500, "http_5xx"), (429, "http_429"),
                                                (400, "http_4xx")])
def test_http_errors_recorded_with_status_and_never_retried(capsys, tmp_path, fixture_url, status, error):
    before = _served(fixture_url)
    code, out, _ = _run(capsys, tmp_path, f"{fixture_url}/status/{status}")
    assert code == 0
    summary, records = load_run(results_dir_from(out))
    assert len(records) == 8
    assert all(r["status"] == status and r["error"] == error and r["outputTokens"] == 0 for r in records)
    assert summary["stages"][0]["errors"] == {error: 8}
    assert summary["stages"][0]["completed"] == 0
    assert _served(fixture_url) - before == 8  # one server request per record: no retries


@pytest.mark.parametrize(("behaviour", "error", "tokens"), [
    ("reset/3", "reset", 3),
    ("truncated/4", "truncated", 4),
    ("badjson/2", "invalid_json", 2),
    ("error/5", "server_error", 5),
])
@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
def test_broken_streams_keep_partial_tokens(capsys, tmp_path, fixture_url, behaviour, error, tokens, client):
    code, out, _ = _run(capsys, tmp_path, f"{fixture_url}/{behaviour}", "--http-client", client)
    assert code == 0
    summary, records = load_run(results_dir_from(out))
    assert len(records) == 8 == summary["stages"][0]["requests"]
    for r in records:
        assert r["error"] == error, r
        assert r["status"] == 200
        assert r["outputTokens"] == tokens == sum(n for _, n in r["chunks"])
        assert r["tokenSource"] == "chunks"
        assert r["first"] is not None and r["sent"] < r["first"] <= r["end"]
    assert summary["stages"][0]["errors"] == {error: 8}


def test_per_request_timeout_is_its_own_class(capsys, tmp_path, fixture_url):
    # 10 tokens x 150 ms = 1.5 s per request; the deadline is 0.5 s: 2-3 tokens arrive first.
    code, out, _ = _run(capsys, tmp_path, f"{fixture_url}/slow/150", "--request-timeout", "0.5")
    assert code == 0
    _, records = load_run(results_dir_from(out))
    assert len(records) == 8
    for r in records:
        assert r["error"] == "timeout"
        assert 1 <= r["outputTokens"] <= 4
        assert 0.45 <= r["end"] - r["sent"] <= 1.0


def test_hung_server_is_stalled_not_timeout(capsys, tmp_path, fixture_url):
    code, out, _ = _run(capsys, tmp_path, f"{fixture_url}/hung/0", "--read-timeout", "0.4",
                        "--request-timeout", "30")
    assert code == 0
    _, records = load_run(results_dir_from(out))
    assert len(records) == 8
    assert {r["error"] for r in records} == {"stalled"}
    assert all(r["outputTokens"] == 0 and r["first"] is None for r in records)
    assert all(0.35 <= r["end"] - r["sent"] <= 5 for r in records)


def _spawn_run(url: str, results: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "loadtest", "run", *endpoint_args(url), "--results-dir", str(results),
           "--run-id", "r1", "--output-len", "20", "--input-len", "8", *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_lines(path: Path, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


def test_kill_9_loses_no_completed_record(tmp_path, fixture_url):
    # 8 concurrent streams of 20 tokens x 10 ms: ~40 requests/s complete; kill mid-run.
    proc = _spawn_run(f"{fixture_url}/ok/10", tmp_path, "--mode", "batch", "--levels", "8",
                      "--requests-per-level", "100000")
    reqs = tmp_path / "llama2-7b-g2" / "r1" / "requests.jsonl"
    _wait_lines(reqs, 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    raw = reqs.read_text()
    lines = raw.splitlines()
    assert raw.endswith("\n"), "a record was cut mid-line"
    records = [json.loads(line) for line in lines]
    assert len(records) >= 20
    assert all(r["error"] is None and r["outputTokens"] == 20 == sum(n for _, n in r["chunks"]) for r in records)
    assert len({r["i"] for r in records}) == len(records)
    assert (tmp_path / "llama2-7b-g2" / "r1" / "run.json").exists()


def test_ctrl_c_writes_partial_summary_and_exits_130(tmp_path, fixture_url):
    proc = _spawn_run(f"{fixture_url}/ok/10", tmp_path, "--mode", "rate", "--levels", "50,100",
                      "--requests-per-level", "100000", "--grace", "2")
    run_dir = tmp_path / "llama2-7b-g2" / "r1"
    _wait_lines(run_dir / "requests.jsonl", 30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == f"results: {run_dir}"
    summary, records = load_run(run_dir)
    assert summary["partial"] is True and summary["complete"] is False
    stage = summary["stages"][0]
    assert stage["interrupted"] is True
    assert stage["requests"] == len(records)  # every request sent has its record
    assert stage["completed"] == sum(1 for r in records if r["error"] is None)
    assert sum(stage["errors"].values()) + stage["completed"] == len(records)
    assert len(summary["stages"]) == 1  # the second stage never started


def test_second_ctrl_c_cancels_in_flight_requests_at_once(tmp_path, fixture_url):
    proc = _spawn_run(f"{fixture_url}/hung/0", tmp_path, "--mode", "batch", "--levels", "6",
                      "--requests-per-level", "100", "--grace", "60", "--read-timeout", "120")
    run_dir = tmp_path / "llama2-7b-g2" / "r1"
    deadline = time.monotonic() + 20
    while not (run_dir / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # six requests are now hanging in flight
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10  # not the 60 s grace
    summary, records = load_run(run_dir)
    assert summary["partial"] is True
    assert len(records) == 6 and {r["error"] for r in records} == {"cancelled"}
    assert summary["stages"][0]["errors"] == {"cancelled": 6}
