"""``python -m loadtest.simulator``: the contract the load tester relies on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "loadtest.simulator", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    line = proc.stdout.readline()
    while not line.startswith("listening: ") and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read() if proc.stderr else "exited")
        line = proc.stdout.readline()
    return proc, line.split(" ", 1)[1].strip()


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def test_serve_port_zero_health_generate_sigterm():
    proc, url = start("--stack", "llama2-7b-g2", "--host", "127.0.0.1", "--port", "0", "--seed", "3")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        r = httpx.post(url + "/v1/completions", json={"prompt": "a b", "max_tokens": 3}, timeout=10)
        assert r.json()["usage"]["completion_tokens"] == 3
    finally:
        rc, err = stop(proc)
    assert rc == 0
    assert "stopped:" in err and "emission lag" in err


def test_serve_prints_the_separate_metrics_url(tmp_path):
    stack = tmp_path / "Pulumi.sim-triton.yaml"
    stack.write_text(
        "config:\n  gcp:project: my-project\n  gcp:region: us-central1\n  gcp:zone: us-central1-a\n"
        "  gke-llm-bench:accelerator:\n    machineType: a2-ultragpu-1g\n"
        "  gke-llm-bench:model:\n    name: llama-2-7b\n  gke-llm-bench:server:\n    kind: triton-trtllm\n")
    proc, url = start("--stack", str(stack), "--port", "0")
    try:
        assert proc.stdout is not None
        metrics_line = proc.stdout.readline()
        assert metrics_line.startswith("metrics: http://127.0.0.1:")
        text = httpx.get(metrics_line.split(" ", 1)[1].strip(), timeout=5).text
        assert "nv_inference_request_success" in text
        assert httpx.get(url + "/v2/health/ready", timeout=5).status_code == 200
    finally:
        rc, _ = stop(proc)
    assert rc == 0


def test_bad_input_exits_2_naming_the_flag():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, needle in ((["--stack", "no-such-stack", "--port", "0"], "no stack named"),
                         (["--stack", "llama2-7b-g2", "--port", "0", "--faults", "error_rate=7"], "error_rate")):
        r = subprocess.run([sys.executable, "-m", "loadtest.simulator", "serve", *args], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r.stderr
        assert needle in r.stderr


def test_main_is_callable_in_process(capsys):
    from loadtest.simulator.cli import main

    assert main(["predict", "--stack", "llama2-7b-a3", "--concurrency", "8", "--requests", "16"]) == 0
    assert '"outputTokensPerS"' in capsys.readouterr().out
