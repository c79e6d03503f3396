"""Published serving measurements (the ``calibration-serving.json`` schema) as the model sees them.

A point names an engine and its version, a GPU type and count, a model, a precision, a workload
(lengths as numbers, ``~N (±x%)`` or ShareGPT with a mean; a concurrency, a rate or a batch) and a
metric with its statistic. ``represent`` turns it into a ``Case`` — a spec built by the project's
own stack resolution, the efficiency profile of the engine's *version band*, a workload and how many
data-parallel replicas share the load — or says why it cannot. ``predict_case`` runs the case on the
performance model (simulated time) and reads the point's metric off the result.

Choices a reader should know (each is printed as the case's ``notes``):
- ShareGPT lengths are a seeded log-normal with the point's mean (σ = 1, what ShareGPT's prompt and
  answer lengths look like), clipped to [4, the stated cap]; ShareGPT without a stated mean uses
  the means S6 measured (230 in / 224 out).
- ``~N (±x%)``: uniform in N × [1 − x, 1 + x]; a fixed number is fixed.
- Concurrency C without a rate: C closed-loop clients; a burst (rate inf, N prompts): N clients
  that each send once; a rate with a concurrency cap above the server's capacity: closed loop at
  the cap (the cap is what binds); a rate alone: constant arrivals for the stated stage length.
- Several GPUs are tensor parallel unless the point says replicas (S7: 8 × 1 L4 behind a Service):
  then each replica gets 1/N of the load and throughputs are summed.
- FP8 checkpoints on GPUs without FP8 tensor cores (A100) run weight-only: 8-bit weights, 16-bit math.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stacks.errors import SpecErrors
from stacks.spec import StackSpec

from .efficiency import DATA_DIR, efficiency, profile_for
from .engine import EngineError
from .perf_model import PerfModel
from .predict import Workload, simulate

SERVING_POINTS_FILE = DATA_DIR / "calibration-serving.json"
SHAREGPT_MEANS = (230, 224)  # S6's ShareGPT sample: 10 prompts, mean ~230 in / ~224 out
SHAREGPT_SIGMA = 1.0
MACHINES = {  # (gpu, count) → the GKE machine with exactly that many
    ("nvidia-h100-80gb", 1): "a3-highgpu-1g", ("nvidia-h100-80gb", 2): "a3-highgpu-2g",
    ("nvidia-h100-80gb", 4): "a3-highgpu-4g", ("nvidia-h100-80gb", 8): "a3-highgpu-8g",
    ("nvidia-a100-80gb", 1): "a2-ultragpu-1g", ("nvidia-a100-80gb", 2): "a2-ultragpu-2g",
    ("nvidia-a100-80gb", 4): "a2-ultragpu-4g", ("nvidia-a100-80gb", 8): "a2-ultragpu-8g",
    ("nvidia-tesla-a100", 1): "a2-highgpu-1g", ("nvidia-tesla-a100", 4): "a2-highgpu-4g",
    ("nvidia-tesla-a100", 8): "a2-highgpu-8g", ("nvidia-l4", 1): "g2-standard-8",
    ("tpu-v5e", 8): "ct5lp-hightpu-8t",
}
MODELS = {  # the point's model → the catalog's (same architecture)
    "llama-3.1-8b": "llama-3.1-8b", "llama-3.1-70b": "llama-3.1-70b", "llama-2-7b": "llama-2-7b",
    "llama-2-13b": "llama-2-13b", "llama-2-70b": "llama-2-70b", "llama-3-8b": "llama-3-8b", "gemma-7b": "gemma-7b",
    "mistral-7b-v0.3": "mistral-7b",  # v0.3 adds 768 vocabulary rows (0.1 % of the weights) to v0.1
}
SERVERS = {"vllm": "vllm", "tgi": "tgi", "jetstream-pytorch": "jetstream", "jetstream": "jetstream"}
# what a source states about the server that the point's fields do not carry
SOURCE_SERVER: dict[str, dict[str, float]] = {
    "s1": {"max_batch": 256, "max_model_len": 32768, "requests": 150},
    "s2": {"max_batch": 128, "max_model_len": 512, "stage_s": 60.0},
    "s5": {"max_batch": 128, "stage_s": 90.0},
    "s6": {"max_batch": 256},
    "s7": {"max_batch": 256, "max_model_len": 16384, "replicas": 8, "requests": 8000, "cap": 16000},
    "s9": {"requests": 2000, "cap": 1024},
}
METRICS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "ntpot_ms", "out_tok_s", "total_tok_s", "req_s")


@dataclass(frozen=True)
class Point:
    id: str
    engine: str
    engine_version: str
    gpu: str
    gpus: int
    model: str
    precision: str
    kv_dtype: str
    batch: int | None
    rate: float | None
    concurrency: int | None
    input: str
    output: str
    metric: str
    stat: str
    value: float
    source: str
    notes: str = ""

    @property
    def source_key(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def setup(self) -> tuple[Any, ...]:
        """What the measurement ran: points that share it are read off one simulation."""
        return (self.engine, self.engine_version, self.gpu, self.gpus, self.model, self.precision, self.kv_dtype,
                self.batch, self.rate, self.concurrency, self.input, self.output)


@dataclass(frozen=True)
class Case:
    point: Point
    spec: StackSpec
    profile: str
    workload: Workload
    replicas: int = 1
    notes: tuple[str, ...] = field(default=())


def load_points(path: Path = SERVING_POINTS_FILE) -> list[Point]:
    doc = json.loads(Path(path).read_text())
    points = doc["points"] if isinstance(doc, dict) else doc
    return [Point(id=p["id"], engine=p["engine"], engine_version=str(p.get("engine_version") or ""), gpu=p["gpu"],
                  gpus=int(p["gpus"]), model=p["model"], precision=str(p["precision"]),
                  kv_dtype=str(p.get("kv_dtype") or "auto"), batch=p.get("batch"), rate=p.get("rate"),
                  concurrency=p.get("concurrency"), input=str(p["input"]), output=str(p["output"]),
                  metric=p["metric"], stat=p["stat"], value=float(p["value"]), source=str(p.get("src", "")),
                  notes=str(p.get("notes", "")))
            for p in points]


# -- lengths --------------------------------------------------------------------------------------
def lengths(text: str, n: int, seed: int, cap: int | None) -> tuple[list[int], str]:
    """Per-request lengths for a point's ``input`` or ``output`` field, and how they were read."""
    t = text.strip()
    mean = re.search(r"mean ~?\s*(\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?", t)
    if t.lower().startswith(("sharegpt", "~")) and "sharegpt" in t.lower():
        m = float(mean.group(1)) if mean else None
        if m is None:
            lead = re.match(r"~\s*(\d+)", t)
            m = float(lead.group(1)) if lead else None
        return _sharegpt(m, n, seed, cap)
    spread = re.match(r"~\s*(\d+(?:\.\d+)?)\s*\(±\s*(\d+(?:\.\d+)?)%\)", t)
    if spread:
        base, pct = float(spread.group(1)), float(spread.group(2)) / 100
        rng = random.Random(seed)
        return [max(1, round(base * rng.uniform(1 - pct, 1 + pct))) for _ in range(n)], \
            f"uniform {base:g} ±{pct:.0%}"
    if mean:  # a fixed shape with its measured mean (e.g. shared_prefix ... mean ~200-204)
        lo = float(mean.group(1))
        hi = float(mean.group(2)) if mean.group(2) else lo
        v = round((lo + hi) / 2)
        return [v] * n, f"fixed {v} (the measured mean)"
    lead = re.match(r"~?\s*(\d+)", t)
    if lead:
        v = int(lead.group(1))
        return [v] * n, f"fixed {v}"
    raise ValueError(f'lengths "{text}": not a number, "~N (±x%)" or ShareGPT')


def _sharegpt(mean: float | None, n: int, seed: int, cap: int | None, *, output: bool = False) -> tuple[list[int], str]:
    m = mean if mean is not None else float(SHAREGPT_MEANS[1 if output else 0])
    mu = math.log(m) - SHAREGPT_SIGMA ** 2 / 2  # log-normal with this mean
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mu, SHAREGPT_SIGMA, n)
    out = [int(min(max(4, round(x)), cap or 10**9)) for x in raw]
    return out, f"ShareGPT-like log-normal, mean {m:g}{' (S6 ShareGPT mean)' if mean is None else ''}" + \
        (f", capped at {cap}" if cap else "")


# -- a point → a case ----------------------------------------------------------------------------
def represent(p: Point) -> Case | str:
    """The point as a case the model can run, or the reason it cannot."""
    from .calibration import build_spec

    if p.metric not in METRICS:
        return f"metric {p.metric} has no model counterpart"
    server = SERVERS.get(p.engine)
    if server is None:
        return f"engine {p.engine} has no efficiency profile"
    model = MODELS.get(p.model)
    if model is None:
        return f"model {p.model} is not in the catalog"
    src = SOURCE_SERVER.get(p.source_key, {})
    replicas = int(src.get("replicas", 1))
    per_replica_gpus = p.gpus // replicas
    machine = MACHINES.get((p.gpu, per_replica_gpus))
    if machine is None:
        return f"no catalog machine has {per_replica_gpus} × {p.gpu}"
    notes: list[str] = []
    prec = p.precision.lower()
    if prec.startswith("fp8"):
        precision = "fp8"
        if p.gpu in ("nvidia-a100-80gb", "nvidia-tesla-a100"):
            precision = "int8"
            notes.append("FP8 checkpoint on A100 (no FP8 tensor cores): weight-only 8-bit, 16-bit math")
    elif prec.startswith(("bf16", "fp16", "int8")):
        precision = prec[:4]
    else:
        return f"precision {p.precision!r} is not modelled"
    kv = "fp8" if p.kv_dtype.lower().startswith("fp8") else "auto"
    profile = profile_for(p.engine if p.engine in ("vllm", "tgi") else server, p.engine_version)
    # how many requests the case runs
    if p.concurrency and p.rate is None:
        clients = int(p.concurrency)
        n = int(src.get("requests", max(4 * clients, 64)))
        if "inf" in p.notes.lower() or "burst" in p.notes.lower():
            n = clients  # a burst of N prompts: each client sends once
            notes.append(f"burst of {clients} prompts (request rate inf)")
    elif p.rate is not None and p.concurrency:
        clients = int(p.concurrency) // replicas
        n = int(src.get("requests", 10 * clients)) // replicas
        notes.append(f"rate {p.rate:g} capped at {p.concurrency} in flight: closed loop at the cap")
    elif p.rate is not None:
        clients = 0
        n = max(20, int(float(p.rate) * float(src.get("stage_s", 60.0)) / replicas))
    elif p.batch:
        clients = int(p.batch)
        n = int(src.get("requests", 4 * clients))
        notes.append(f"server batch {p.batch}, {n} prompts queued at once")
    else:
        return "the workload has neither a concurrency, a rate nor a batch"
    cap = int(src["cap"]) if "cap" in src else None
    seed = sum(map(ord, "|".join(map(str, p.setup))))
    try:
        ins, how_in = lengths(p.input, n, seed, cap)
        outs, how_out = (_sharegpt(None, n, seed + 1, cap, output=True) if p.output.lower().startswith("sharegpt")
                         and "mean" not in p.output.lower() else lengths(p.output, n, seed + 1, cap))
    except ValueError as exc:
        return str(exc)
    notes += [f"input: {how_in}", f"output: {how_out}"]
    max_batch = int(p.batch or src.get("max_batch", 256))
    max_len = int(src.get("max_model_len") or 0) or None
    if max_len is None and max(i + o for i, o in zip(ins, outs, strict=True)) > 4096:
        max_len = 1 << math.ceil(math.log2(max(i + o for i, o in zip(ins, outs, strict=True))))
    try:
        spec = build_spec(machine, model, precision, server, kv_cache=kv, max_batch=max_batch, max_model_len=max_len,
                          tp=per_replica_gpus if per_replica_gpus > 1 else None, name=f"point-{p.id}")
    except SpecErrors as exc:  # the catalog and the stack rules refuse it, as they would a stack file
        return f"the stack rules refuse this shape: {exc.errors[0]}".replace("\n", " ")
    shapes = tuple(zip(ins, outs, strict=True))
    if clients:
        w = Workload(mode="batch", concurrency=min(clients, n), requests=n, shapes=shapes)
    else:
        rate = float(p.rate or 0) / replicas
        w = Workload(mode="rate", rate=rate, arrival="constant", requests=n, shapes=shapes)
    if replicas > 1:
        notes.append(f"{replicas} data-parallel replicas: each serves 1/{replicas} of the load, throughputs summed")
    return Case(p, spec, profile, w, replicas, tuple(notes))


def case_metrics(case: Case, data: dict[str, Any] | None = None) -> dict[str, float]:
    """Every metric of ``METRICS`` (both statistics) from one simulation of the case.

    ``data``: efficiency data to use instead of efficiency.yaml (the fitting script varies it)."""
    eff = efficiency(case.profile, case.spec.accelerator, case.spec.precision.name, data)
    sim = simulate(case.spec, case.workload, perf=PerfModel(case.spec, eff), with_tokens=True)
    done = [s for s in sim.seqs if s.finished_at is not None and s.first_token_at is not None]
    start = min(s.arrival for s in sim.seqs)
    dur = max(s.finished_at for s in done if s.finished_at is not None) - start
    out_tokens = sum(s.generated for s in done)
    r = case.replicas
    values: dict[str, float] = {
        "out_tok_s": r * out_tokens / dur, "total_tok_s": r * (out_tokens + sum(s.prompt_len for s in done)) / dur,
        "req_s": r * len(done) / dur}
    assert sim.token_times is not None
    series = {
        "ttft_ms": [s.first_token_at - s.arrival for s in done],  # type: ignore[operator]
        "e2e_ms": [s.finished_at - s.arrival for s in done],  # type: ignore[operator]
        "tpot_ms": [(s.finished_at - s.first_token_at) / (s.generated - 1) for s in done if s.generated > 1],  # type: ignore[operator]
        # TGI's "inference time / generated tokens": from the first step that serves it (no queueing)
        "ntpot_ms": [(s.finished_at - (s.scheduled_at or s.arrival)) / s.generated for s in done],  # type: ignore[operator]
        "itl_ms": [b - a for s in done for a, b in zip(sim.token_times[s.rid], sim.token_times[s.rid][1:],
                                                          strict=False)],
    }
    for name, vals in series.items():
        values[f"{name}/mean"] = float(np.mean(vals)) * 1e3 if vals else math.nan
        values[f"{name}/median"] = float(np.median(vals)) * 1e3 if vals else math.nan
    return values


def metric_value(p: Point, values: dict[str, float]) -> float:
    if p.metric in values:
        return values[p.metric]
    return values[f"{p.metric}/{'median' if p.stat in ('median', 'p50') else 'mean'}"]


def error_of(case: Case, predicted: float) -> float:
    return (predicted - case.point.value) / case.point.value


def predict_points(points: list[Point], data: dict[str, Any] | None = None
                   ) -> tuple[list[tuple[Case, float]], list[tuple[Point, str]]]:
    """Each point the model can represent with its prediction; the others with the reason.
    Points that share a setup share one simulation."""
    done: list[tuple[Case, float]] = []
    skipped: list[tuple[Point, str]] = []
    memo: dict[tuple[Any, ...], dict[str, float] | str] = {}
    for p in points:
        case = represent(p)
        if isinstance(case, str):
            skipped.append((p, case))
            continue
        if p.setup not in memo:
            try:
                memo[p.setup] = case_metrics(case, data)
            except EngineError as exc:
                memo[p.setup] = f"the model cannot serve one of its requests: {exc}"
        got = memo[p.setup]
        if isinstance(got, str):
            skipped.append((p, got))
        else:
            done.append((case, metric_value(p, got)))
    return done, skipped


def as_json_record(case: Case, predicted: float) -> dict[str, Any]:
    return {"id": case.point.id, "measured": case.point.value, "predicted": predicted,
            "error": error_of(case, predicted)}
