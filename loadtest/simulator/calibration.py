"""Calibration points (``data/calibration.yaml``) turned into specs and predictions.

Each published measurement names an engine, a machine, a model, a precision and a workload. The
point's spec is built through the project's own stack resolution (``spec_from_config``), so its KV
capacity, TP and prices come from the same sizing code a real stack uses; the prediction comes from
``predict`` (or, for a single static batch, the engine directly). The fidelity benchmark prints
the comparison; tests check that the error stays inside the documented bounds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stacks.loader import spec_from_config
from stacks.spec import StackSpec

from .efficiency import DATA_DIR, efficiency
from .perf_model import PerfModel
from .predict import Workload, predict

CALIBRATION_FILE = DATA_DIR / "calibration.yaml"
# The server kind whose spec a calibration engine is sized with (KV capacity, ports); the timing
# factors still come from the point's own engine entry in efficiency.yaml.
_SERVER_FOR_ENGINE = {"triton-trtllm": "triton-trtllm", "fastertransformer": "triton-trtllm", "vllm": "vllm",
                      "tgi": "tgi", "jetstream": "jetstream"}


@dataclass(frozen=True)
class Point:
    id: str
    source: str
    engine: str
    machine: str
    model: str
    precision: str
    kv_cache: str
    workload: dict[str, Any]
    kind: str
    measured: float
    assumed: str


@dataclass(frozen=True)
class Comparison:
    point: Point
    predicted: float

    @property
    def error(self) -> float:
        """Signed relative error of the prediction."""
        return (self.predicted - self.point.measured) / self.point.measured


@functools.cache
def load_calibration(path: Path = CALIBRATION_FILE) -> tuple[tuple[Point, ...], dict[str, float]]:
    data = yaml.safe_load(path.read_text())
    points = tuple(
        Point(id=p["id"], source=p["source"], engine=p["engine"], machine=p["machine"], model=p["model"],
              precision=p["precision"], kv_cache=p.get("kv_cache", "auto"), workload=dict(p["workload"]),
              kind=p["kind"], measured=float(p["measured"]), assumed=p.get("assumed", ""))
        for p in data["points"]
    )
    return points, {k: float(v) for k, v in data["guide"].items()}


def build_spec(machine: str, model: str, precision: str, server: str, *, kv_cache: str = "auto",
               max_batch: int = 256, max_batched_tokens: int | None = None, max_model_len: int | None = None,
               tp: int | None = None, name: str = "calibration") -> StackSpec:
    """A spec for a shape that has no committed stack file (calibration, the guide's comparisons)."""
    srv: dict[str, Any] = {"kind": server, "maxBatch": max_batch}
    if max_batched_tokens:
        srv["maxBatchedTokens"] = max_batched_tokens
    if max_model_len:
        srv["maxModelLen"] = max_model_len
    if tp:
        srv["tensorParallel"] = tp
    flat = {
        "gcp:project": "calibration", "gcp:region": "us-central1", "gcp:zone": "us-central1-a",
        "gke-llm-bench:accelerator": {"machineType": machine, "queuedProvisioning": True},
        "gke-llm-bench:model": {"name": model},
        "gke-llm-bench:precision": {"weights": precision, "kvCache": kv_cache},
        "gke-llm-bench:server": srv,
    }
    return spec_from_config(flat, name)


def predict_point(p: Point) -> float:
    """The model's value for one calibration point, in the point's unit."""
    w = p.workload
    spec = build_spec(p.machine, p.model, p.precision, _SERVER_FOR_ENGINE[p.engine], kv_cache=p.kv_cache,
                      max_batch=int(w.get("max_batch", max(256, w.get("batch", 1)))),
                      max_batched_tokens=w.get("max_batched_tokens"), name=f"calibration-{p.id}")
    perf = PerfModel(spec, efficiency(p.engine, spec.accelerator, spec.precision.name))
    if p.kind == "tok_per_s":
        pred = predict(spec, Workload(w["input"], w["output"], mode="static" if False else "batch",
                                      concurrency=int(w.get("max_batch", spec.max_batch)),
                                      requests=int(w["requests"])), perf=perf)
        return pred.output_tokens_per_s
    if p.kind == "mbu":
        # decode-only bandwidth use: bytes a decode step must read / (step time x datasheet bandwidth)
        ctx = w["input"] + w["output"] // 2
        t = perf.step_seconds(1, 1, ctx + 1, ctx)
        bytes_read = spec.sizing.weight_bytes + spec.sizing.kv_bytes_per_token * (ctx + 1)
        return bytes_read / t / (spec.tensor_parallel * spec.machine.chip.bandwidth_gbps * 1e9)
    batch = int(w["batch"])
    pred = predict(spec, Workload(w["input"], w["output"], mode="static", concurrency=batch,
                                  requests=batch * (3 if p.kind == "req_per_s" else 1)), perf=perf)
    if p.kind == "ttft":
        return pred.ttft_s.mean
    if p.kind == "latency":
        return pred.e2e_s.mean
    if p.kind == "req_per_s":
        return pred.requests_per_s
    raise ValueError(f"{CALIBRATION_FILE}: point {p.id} has unknown kind {p.kind!r} "
                     "(use ttft, latency, req_per_s, tok_per_s or mbu)")


def compare_all() -> list[Comparison]:
    points, _ = load_calibration()
    return [Comparison(p, predict_point(p)) for p in points]
