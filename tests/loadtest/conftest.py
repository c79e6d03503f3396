"""Fixtures: the protocol fixture server (one process for the session) and CLI helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadtest.cli import main
from loadtest.targets import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]


def start_process(cmd: list[str], health_url: str, timeout: float = 30.0, env: dict | None = None,
                  log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = f": {log.read_text()[-2000:]}" if log else ""
            raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}{tail}")
        try:
            if httpx.get(health_url, timeout=1.0, trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_process(proc)
    raise RuntimeError(f"{cmd[:4]} did not become healthy at {health_url} within {timeout} s")




@pytest.fixture(scope="session")
def fixture_url() -> str:
    """Base URL of the fixture server; append ``/<behaviour>/<arg>``."""
    port = free_port()
    proc = start_process([sys.executable, "-m", "tests.loadtest.fixture_server", "--port", str(port)],
                         f"http://127.0.0.1:{port}/health")
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def results_dir_from(stdout: str) -> Path:
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("results: "), stdout
    return Path(last.removeprefix("results: "))


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    return summary, records


def endpoint_args(url: str, dialect: str = "openai", model: str = "fixture") -> list[str]:
    return ["--stack", "llama2-7b-g2", "--endpoint", url, "--dialect", dialect, "--model", model, "--no-progress"]


# The slow tests' real engine: vLLM's CPU build with a tiny local model (scripts/setup_vllm_cpu.sh).
VENV = REPO / ".venv-vllm"
MODEL = VENV / "tiny-llama"


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory) -> str:
    python = VENV / "bin" / "python"
    if not python.exists() or not (MODEL / "config.json").exists():
        pytest.fail("the vLLM CPU engine is not installed: run `bash scripts/setup_vllm_cpu.sh` (make test does)")
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
               VLLM_HOST_IP="127.0.0.1", VLLM_CPU_KVCACHE_SPACE="1")
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    proc = start_process([str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(MODEL),
                          "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
                          "--max-model-len", "2048", "--dtype", "float32", "--enforce-eager"],
                         f"http://127.0.0.1:{port}/health", timeout=240, env=env, log=log)
    yield f"http://127.0.0.1:{port}"
    stop_process(proc, grace=20)


def written_files(run_dir: Path) -> dict[Path, str]:
    """Every file a run wrote, as text: Parquet (the columnar copy, compressed) decoded to its rows, so
    a check for a leaked secret reads what the file holds, not its compressed bytes."""
    import pyarrow.parquet as pq

    out = {}
    for p in sorted(run_dir.rglob("*")):
        if p.is_file():
            out[p] = json.dumps(pq.read_table(p).to_pylist()) if p.suffix == ".parquet" else p.read_text()
    return out

