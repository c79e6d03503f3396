"""The local vLLM engine: vLLM's CPU build serving a tiny random-weight Llama made on this machine
(``scripts/setup_vllm_cpu.sh`` -> ``.venv-vllm``), the real-protocol target of the slow tests and of
the benchmarks that compare this load tester with ``vllm bench serve``.

It runs on 127.0.0.1 and a free port, offline (nothing is fetched), and is stopped by its handle.
``vllm_bench_command`` runs vLLM's own benchmark client from the same installation.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from .targets import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-vllm"
MODEL = VENV / "tiny-llama"
SERVED_NAME = "tiny"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
# the `vllm` console entry needs a distribution named vllm (this one is vllm-cpu): call the module
_BENCH_ENTRY = ("import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser; "
                "from vllm.benchmarks.serve import add_cli_args, main; p = FlexibleArgumentParser(); "
                "add_cli_args(p); main(p.parse_args(sys.argv[1:]))")


class EngineMissing(RuntimeError):
    """The CPU engine is not installed here."""


def installed() -> bool:
    return (VENV / "bin" / "python").exists() and (MODEL / "config.json").exists()


def start_server(cmd: list[str], health_url: str, timeout: float = 30.0, env: dict[str, str] | None = None,
                 log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait until ``health_url`` answers 200; its output goes to ``log``."""
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


def start_engine(log: Path | None = None, timeout: float = 240.0) -> tuple[subprocess.Popen[bytes], str]:
    """The engine on a free port of 127.0.0.1: (its process, its base URL)."""
    if not installed():
        raise EngineMissing("the vLLM CPU engine is not installed: run `bash scripts/setup_vllm_cpu.sh` "
                            "(make test does)")
    port = free_port()
    env = dict(os.environ, **OFFLINE_ENV, VLLM_HOST_IP="127.0.0.1", VLLM_CPU_KVCACHE_SPACE="1")
    proc = start_server([str(VENV / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server", "--model",
                         str(MODEL), "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
                         "--max-model-len", "2048", "--dtype", "float32", "--enforce-eager"],
                        f"http://127.0.0.1:{port}/health", timeout=timeout, env=env, log=log)
    return proc, f"http://127.0.0.1:{port}"


def vllm_bench_command(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``vllm bench serve <args>`` from the engine's installation, and the offline environment to run it in."""
    return [str(VENV / "bin" / "python"), "-c", _BENCH_ENTRY, *args], dict(os.environ, **OFFLINE_ENV)
