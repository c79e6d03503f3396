"""Efficiency factors of the performance model, read from ``data/efficiency.yaml``.

The roofline gives a step's time at 100 % of the datasheet peaks; real engines reach a fraction of
them that depends on the engine (kernels, CPU overheads), the GPU (power cap, memory type) and the
precision (FP8 kernels reach a smaller share of their doubled peak). Those fractions are data with
their sources, not constants in code, so a better measurement changes one line of YAML.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).parent / "data"
EFFICIENCY_FILE = DATA_DIR / "efficiency.yaml"
FIT_FILE = DATA_DIR / "serving-fit.json"  # benchmarks/fit_serving.py's output
_FACTOR_KEYS = (
    "mfu", "mbu", "step_overhead_ms", "per_seq_overhead_us", "request_overhead_ms", "comm_efficiency",
    "token_emit_us",
)


class EfficiencyError(ValueError):
    """The efficiency data file is missing an entry the model needs."""


@dataclass(frozen=True)
class Efficiency:
    """The resolved factors for one engine on one chip at one precision."""

    engine: str
    chip: str
    precision: str
    mfu: float  # share of dense peak FLOPS reached in compute-bound steps
    mbu: float  # share of datasheet bandwidth reached in memory-bound steps
    step_overhead_s: float  # fixed cost of one engine step (launch, scheduling)
    per_seq_overhead_s: float  # CPU cost per sequence in a step (sampling, detokenizing, bookkeeping)
    request_overhead_s: float  # from arrival to schedulable (HTTP, tokenizing, queue admission)
    comm_efficiency: float  # share of link bandwidth an all-reduce reaches
    token_emit_s: float  # spacing of a step's tokens as the server sends them, stream after stream
    link_bytes_per_s: float  # GPU-to-GPU bandwidth per direction
    allreduce_latency_s: float  # fixed cost of one all-reduce
    sources: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "chip": self.chip, "precision": self.precision, "mfu": self.mfu, "mbu": self.mbu,
            "stepOverheadMs": self.step_overhead_s * 1e3, "perSeqOverheadUs": self.per_seq_overhead_s * 1e6,
            "requestOverheadMs": self.request_overhead_s * 1e3, "commEfficiency": self.comm_efficiency,
            "tokenEmitUs": self.token_emit_s * 1e6,
            "linkGBps": self.link_bytes_per_s / 1e9, "allreduceLatencyUs": self.allreduce_latency_s * 1e6,
            "sources": list(self.sources),
        }


def raw_data(path: Path = EFFICIENCY_FILE) -> dict[str, Any]:
    """efficiency.yaml as written, before the fitted factors are laid over it."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "engines" not in data or "hardware" not in data:
        raise EfficiencyError(f"{path}: needs top-level `hardware:` and `engines:` mappings")
    return data


@functools.cache
def _data(path: Path = EFFICIENCY_FILE, fit: Path = FIT_FILE) -> dict[str, Any]:
    """efficiency.yaml with each fitted profile's factors from serving-fit.json (one set for every GPU:
    the fit is profile-wide, so the profile's per-GPU overrides are dropped)."""
    data = raw_data(path)
    if fit.is_file():
        for name, result in json.loads(fit.read_text()).get("profiles", {}).items():
            eng = data["engines"].get(name)
            if eng is None:
                raise EfficiencyError(f"{fit}: profile {name} is not in {path}")
            eng.pop("gpus", None)
            eng.update(result["factors"])
    return data


def engines() -> tuple[str, ...]:
    return tuple(_data()["engines"])


def version_of(text: str) -> tuple[int, ...] | None:
    """The first dotted version number in an image tag or a version string: ``vllm/vllm-openai:v0.5.4``
    → (0, 5, 4), ``TGI 1.0.3`` → (1, 0, 3); None when there is none (``latest``, a digest)."""
    tag = text.rsplit(":", 1)[-1] if "/" in text else text
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", tag)
    return tuple(int(x) for x in m.groups() if x is not None) if m else None


def profile_for(engine: str, version: str | None, data: dict[str, Any] | None = None) -> str:
    """The efficiency profile of an engine *version*: ``bands.<engine>`` lists ``{below: "0.6", profile:
    vllm-0.5}`` entries, first match wins; an unknown or missing version gets the engine's current
    profile (the last entry, or the engine itself). Engines change a lot between releases (vLLM 0.5
    reached about half of 0.11's throughput on the same H100), so one set of factors per engine is
    not enough."""
    data = data or _data()
    bands = data.get("bands", {}).get(engine)
    if not bands:
        return engine
    v = version_of(version) if version else None
    for band in bands:
        below = band.get("below")
        if below is None or (v is not None and v < version_of(str(below))):  # type: ignore[operator]
            return str(band["profile"])
    return str(bands[-1]["profile"])


def efficiency(engine: str, chip: str, precision: str, data: dict[str, Any] | None = None) -> Efficiency:
    """Resolve the factors for ``engine`` x ``chip`` x ``precision`` (most specific entry wins)."""
    data = data or _data()
    eng = data["engines"].get(engine)
    if eng is None:
        raise EfficiencyError(f"{EFFICIENCY_FILE}: no entry engines.{engine}; add one (copy a similar engine's "
                              f"block and cite its source); known: {', '.join(data['engines'])}")
    hw = data["hardware"].get(chip)
    if hw is None:
        raise EfficiencyError(f"{EFFICIENCY_FILE}: no entry hardware.{chip}; add its link_gbps, "
                              f"allreduce_latency_us and attainable shares with a source")
    layers = [
        eng,
        eng.get("precisions", {}).get(precision, {}),
        eng.get("gpus", {}).get(chip, {}),
        eng.get("gpus", {}).get(chip, {}).get("precisions", {}).get(precision, {}),
    ]
    f: dict[str, float] = {}
    for layer in layers:
        f.update({k: float(v) for k, v in layer.items() if k in _FACTOR_KEYS})
    missing = [k for k in _FACTOR_KEYS if k not in f]
    if missing:
        raise EfficiencyError(f"{EFFICIENCY_FILE}: engines.{engine} lacks {', '.join(missing)}")
    return Efficiency(
        engine=engine, chip=chip, precision=precision,
        mfu=f["mfu"] * float(hw.get("compute_attainable", 1.0)),
        mbu=f["mbu"] * float(hw.get("memory_attainable", 1.0)),
        step_overhead_s=f["step_overhead_ms"] / 1e3,
        per_seq_overhead_s=f["per_seq_overhead_us"] / 1e6,
        request_overhead_s=f["request_overhead_ms"] / 1e3,
        comm_efficiency=f["comm_efficiency"],
        token_emit_s=f["token_emit_us"] / 1e6,
        link_bytes_per_s=float(hw["link_gbps"]) * 1e9,
        allreduce_latency_s=float(hw["allreduce_latency_us"]) / 1e6,
        sources=(str(eng.get("source", "")), str(hw.get("source", ""))),
    )
