"""Fixtures: the protocol fixture server (one process for the session) and CLI helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from loadtest.cli import main
from loadtest.local_vllm import EngineMissing, start_engine, start_server
from loadtest.targets import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fixture_url() -> str:
    """Base URL of the fixture server; append ``/<behaviour>/<arg>``."""
    port = free_port()
    proc = start_server([sys.executable, "-m", "tests.loadtest.fixture_server", "--port", str(port)],
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


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory) -> str:
    """The slow tests' real engine (``loadtest/local_vllm.py``), started once per session."""
    try:
        proc, url = start_engine(log=tmp_path_factory.mktemp("vllm") / "vllm.log")
    except EngineMissing as exc:
        pytest.fail(str(exc))
    yield url
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

