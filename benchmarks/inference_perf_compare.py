"""Run kubernetes-sigs/inference-perf as a reference load generator in the capacity benchmark.

Why a separate virtualenv: inference-perf 0.7.0 needs Python >= 3.12 and brings its own pins
(transformers, datasets, boto3, ...) that have no business in the project's ``.venv``. It is installed
from PyPI into ``.venv-inference-perf`` (git-ignored, like every ``.venv-*``), once.

Why a tokenizer: its ``random`` data generator draws prompt token ids from a real tokenizer and
re-tokenizes streamed text to count output tokens. There is no model hub here, so it is pointed at
the tiny local tokenizer (``.venv-vllm/tiny-llama`` from ``scripts/make_tiny_model.py``), or, when that
is absent, at a tokenizer trained the same way into ``.venv-inference-perf/tiny-tokenizer``.

Each rate is one ``inference-perf --config_file`` run with one constant-rate stage; its per-stage
report (``stage_0_lifecycle_metrics.json``) gives the figures compared with ``python -m loadtest``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-inference-perf"
VERSION = "0.7.0"
VLLM_TOKENIZER = REPO / ".venv-vllm" / "tiny-llama"
OWN_TOKENIZER = VENV / "tiny-tokenizer"
STAGE_REPORT = "stage_0_lifecycle_metrics.json"

# trains the tokenizer half of scripts/make_tiny_model.py (no torch needed) with the same settings
_TOKENIZER_SNIPPET = """
import sys
sys.path.insert(0, sys.argv[1])
from make_tiny_model import CHAT_TEMPLATE, SPECIAL, VOCAB, training_text
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(training_text(), trainer=trainers.BpeTrainer(
    vocab_size=VOCAB, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
fast.chat_template = CHAT_TEMPLATE
fast.save_pretrained(sys.argv[2])
"""


class Unavailable(RuntimeError):
    """inference-perf cannot be set up here; the message says why and what to install."""


def find_python312() -> str | None:
    """A Python >= 3.12 interpreter that actually runs (a pyenv shim may exist yet refuse to run)."""
    candidates = [shutil.which("python3.12"), shutil.which("python3.13")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.1[2-9]*/bin/python3.1[2-9]"))]
    for exe in filter(None, candidates):
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return exe
    return None


def installed_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    code = "from importlib.metadata import version; print(version('inference-perf'))"
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_installed() -> Path:
    """Create ``.venv-inference-perf`` with inference-perf==0.7.0 unless it is already there; return its CLI."""
    cli = VENV / "bin" / "inference-perf"
    if installed_version() == VERSION and cli.exists():
        return cli
    python = find_python312()
    if python is None:
        raise Unavailable(f"inference-perf {VERSION} needs Python >= 3.12 and no working python3.12 was found "
                          "(install one, e.g. `pyenv install 3.12`, then rerun)")
    if not (VENV / "bin" / "python").exists():
        print(f"  creating {VENV.name} with {python}", file=sys.stderr)
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    print(f"  installing inference-perf=={VERSION} into {VENV.name} (from PyPI)", file=sys.stderr)
    pip = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"inference-perf=={VERSION}"],
                         capture_output=True, text=True, check=False)
    if pip.returncode != 0 or installed_version() != VERSION:
        raise Unavailable(f"pip install inference-perf=={VERSION} failed: {pip.stderr[-800:]}")
    return cli


def ensure_tokenizer() -> Path:
    """The local tokenizer inference-perf loads (never a hub download)."""
    if (VLLM_TOKENIZER / "tokenizer.json").exists():
        return VLLM_TOKENIZER
    if not (OWN_TOKENIZER / "tokenizer.json").exists():
        subprocess.run([str(VENV / "bin" / "python"), "-c", _TOKENIZER_SNIPPET, str(REPO / "scripts"),
                        str(OWN_TOKENIZER)], check=True, capture_output=True, env=offline_env())
    return OWN_TOKENIZER


def offline_env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")


def fixed(tokens: int) -> dict[str, Any]:
    return {"type": "fixed", "min": tokens, "max": tokens, "mean": tokens, "std_dev": 0}


def build_config(url: str, rate: float, duration: float, tokenizer: Path, report_dir: Path, *,
                 workers: int = 2, input_len: int = 128, output_len: int = 64) -> dict[str, Any]:
    """inference-perf's config (schema of its ``inference_perf.config.Config``, which rejects unknown keys)
    for one constant-rate stage: streamed completions so it measures TTFT, ``workers`` worker processes,
    server type vllm at ``url``, no Prometheus scraping (nginx has no /metrics)."""
    return {
        "api": {"type": "completion", "streaming": True},
        "data": {"type": "random", "input_distribution": fixed(input_len), "output_distribution": fixed(output_len)},
        "load": {"type": "constant", "num_workers": workers, "stages": [{"rate": rate, "duration": round(duration)}]},
        "server": {"type": "vllm", "model_name": "m", "base_url": url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": str(tokenizer)},
        "report": {"prometheus": None},
        "storage": {"local_storage": {"path": str(report_dir)}},
    }


def parse_stage_report(report: Mapping[str, Any], rate: float, duration: float) -> dict[str, Any]:
    """Figures from ``stage_0_lifecycle_metrics.json``, in the benchmark's row format.

    ``achieved`` is the sending rate, as ``python -m loadtest`` reports it: inference-perf's own
    ``load_summary.achieved_rate`` (requests sent / send time), capped by requests sent / requested
    duration, so a generator that sends fewer requests than the stage asks for cannot count as
    keeping up. ``dispatch_p99_ms`` is its ``schedule_delay`` p99 (send time minus scheduled time).
    """
    try:
        load = report["load_summary"]
        sent = int(load["count"])
        errors = int((report.get("failures") or {}).get("count") or 0)
        successes = report.get("successes") or {}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"inference-perf stage report lacks {exc}: expected load_summary.count and "
                         "failures.count (is this a stage_*_lifecycle_metrics.json from inference-perf 0.7?)") from exc
    achieved = min(float(load.get("achieved_rate") or 0.0), sent / duration if duration else 0.0)
    ttft = ((successes.get("latency") or {}).get("time_to_first_token") or {}).get("p99")
    delay = (load.get("schedule_delay") or {}).get("p99")
    return {"requested": rate, "achieved": achieved, "requests": sent, "errors": errors,
            # no successful request has no TTFT: count it as failing the TTFT bound
            "ttft_p99_ms": 1000 * ttft if ttft is not None else float("inf"),
            "dispatch_p99_ms": 1000 * delay if delay is not None else float("nan")}


def run_stage(cli: Path, tokenizer: Path, url: str, rate: float, duration: float, results: Path,
              workers: int = 2) -> dict[str, Any]:
    """One inference-perf run at ``rate`` for ``duration`` s; raises with its stderr when it fails."""
    work = results / f"inference-perf-{rate:g}"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(build_config(url, rate, duration, tokenizer, work / "reports", workers=workers),
                                     sort_keys=False))
    proc = subprocess.run([str(cli), "--config_file", str(config), "--log-level", "WARNING"], cwd=work,
                          capture_output=True, text=True, env=offline_env(), timeout=duration * 4 + 240, check=False)
    report = work / "reports" / STAGE_REPORT
    if proc.returncode != 0 or not report.exists():
        raise RuntimeError(f"inference-perf exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}")
    return parse_stage_report(json.loads(report.read_text()), rate, duration)
