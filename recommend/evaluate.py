"""One candidate at one load, predicted and judged by the results contract.

A stage is simulated with the same engine ``predict`` runs (simulated time: deterministic for a
seed, whatever the machine is doing), its requests become request records, and the load tester's
own ``summarize_stage`` turns them into the stage summary a measurement would get. The SLO is then
judged exactly as ``loadtest run --slo`` judges a measured stage, so a recommendation and the load
test that confirms it use one set of definitions.

Replicas share the load evenly (a Kubernetes Service spreads connections across pods), so a setup
with ``k`` replicas at ``R`` requests per second is predicted as one replica at ``R / k``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loadtest.aggregate import summarize_stage, term_value
from loadtest.model_check import simulated_records
from loadtest.simulator.engine import EngineError
from loadtest.simulator.perf_model import PerfModel
from loadtest.simulator.predict import Workload, simulate
from loadtest.slo import SloTerm, as_limits
from stacks.spec import StackSpec

SEED = 0
RATE_WINDOW_S = 60.0  # open-loop stages: a minute of arrivals ...
MIN_REQUESTS, MAX_REQUESTS = 200, 1200  # ... but at least enough for a p99, and bounded in time


@dataclass(frozen=True)
class Stage:
    """What a load test of one replica at one load level would measure (the stage summary), and
    the SLO terms' values."""

    mode: str  # "rate" | "batch"
    level: float  # req/s per replica, or clients per replica
    summary: dict[str, Any]
    values: dict[str, float | None]  # SLO term key -> value (seconds)

    def meets(self, slo: tuple[SloTerm, ...]) -> bool:
        return all(self.values.get(t.key) is not None and self.values[t.key] <= t.limit  # type: ignore[operator]
                   for t in slo)

    def worst_ratio(self, slo: tuple[SloTerm, ...]) -> float:
        """max over terms of value / limit: below 1 meets the SLO; how far off it is otherwise."""
        values = [self.values.get(t.key) for t in slo]
        return max((math.inf if v is None else v) / t.limit for v, t in zip(values, slo, strict=True))

    @property
    def output_tok_s(self) -> float:
        return float(self.summary["outputTokensPerS"])

    @property
    def requests_per_s(self) -> float:
        return float(self.summary["requestThroughput"])


def fmt_s(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else \
        f"{seconds * 1e3:.1f} ms"


class StagePredictor:
    """Predicts stages for the query's request shapes and SLO; a stage asked twice is simulated once."""

    def __init__(self, shapes: tuple[tuple[int, int], ...], slo: tuple[SloTerm, ...]):
        self.shapes = shapes
        self.slo = slo
        self.limits = as_limits(slo)
        self._memo: dict[tuple[Any, ...], Stage | str] = {}
        self.itl = any(t.metric == "itl" for t in slo)
        self.simulations = 0

    def stage(self, key: tuple[Any, ...], spec: StackSpec, mode: str, level: float,
              requests: int | None = None) -> Stage | str:
        """One replica of ``spec`` at ``level``; a string says why the model cannot serve it."""
        if requests is None:
            requests = (min(MAX_REQUESTS, max(MIN_REQUESTS, math.ceil(level * RATE_WINDOW_S))) if mode == "rate"
                        else max(3 * int(level), 48))
        memo_key = (key, mode, round(level, 9), requests)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._simulate(spec, mode, level, requests)
        return self._memo[memo_key]

    def _simulate(self, spec: StackSpec, mode: str, level: float, requests: int) -> Stage | str:
        w = (Workload(mode="rate", rate=level, arrival="poisson", requests=requests, seed=SEED, shapes=self.shapes)
             if mode == "rate" else
             Workload(mode="batch", concurrency=int(level), requests=requests, seed=SEED, shapes=self.shapes))
        self.simulations += 1
        try:
            sim = simulate(spec, w, with_tokens=True)
        except EngineError as exc:
            return str(exc)
        records = simulated_records(sim, "predicted")
        if not self.itl:  # token times matter only to ITL; without them the summary skips the per-gap pass
            for r in records:
                r.chunks = []
        start = min(r.scheduled for r in records)
        end = max(r.end for r in records if r.end is not None)
        summary = summarize_stage(stage_id="predicted", mode=mode, level=level,
                                  arrival="poisson" if mode == "rate" else "closed-loop", records=records,
                                  start=start, end=end, slo=self.limits)
        return Stage(mode, level, summary, {t.key: term_value(summary, t.key) for t in self.slo})


def optimistic_capacity(spec: StackSpec, mean_input: float, mean_output: float, slack: float = 1.25) -> float:
    """Requests per second one replica could *at most* sustain, from the roofline alone (no simulation).

    A full batch of decodes (as many sequences as the KV cache holds at the mean length, up to max
    batch) shares one read of the weights; each request also needs its prefill at the prefill rate
    of a full token budget. ``slack`` makes it a bound the simulated capacity stays under (a test
    checks it over the catalog): the search orders and prunes candidates with it, so it must never be
    low.
    """
    perf = PerfModel(spec)
    ctx = mean_input + mean_output / 2
    batch = max(1, min(spec.max_batch, int(spec.sizing.kv_tokens // max(1.0, mean_input + mean_output))))
    decode = perf.step_seconds(batch, batch, batch * ctx, batch * ctx) / batch
    per_step = max(1, spec.max_batched_tokens // max(1, int(mean_input)))
    prefill = mean_input / perf.prefill_tokens_per_s(max(1, int(mean_input)), per_step)
    return slack / (prefill + mean_output * decode)
