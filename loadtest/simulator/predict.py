"""``predict(spec, workload)``: the performance model as a library call, no HTTP.

Runs the same ``Engine`` the served endpoint runs, over simulated time, with the workload's
arrivals: N closed-loop clients (``batch``), an open-loop rate (``rate``), or back-to-back static
batches of N (``static``, the guide's batch-size comparison). Returns latency percentiles and
throughput as a load test against the simulated endpoint would measure them, minus HTTP. The
analysis uses it for what-if questions ("this stack on H100 instead?") without starting anything.

Definitions match the load tester's: TTFT = first token - arrival; TPOT = (e2e - TTFT)/(out - 1);
throughput = output tokens / (last finish - first arrival).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from stacks.spec import StackSpec

from .engine import Engine, Sequence, StepResult
from .perf_model import PerfModel

Mode = Literal["batch", "rate", "static"]


@dataclass(frozen=True)
class Workload:
    """What is asked of the stack. ``requests`` 0 means a sensible default for the mode."""

    input_len: int = 128
    output_len: int = 64
    mode: Mode = "batch"
    concurrency: int = 16  # batch: closed-loop clients; static: batch size
    rate: float = 1.0  # rate mode: requests per second
    arrival: Literal["poisson", "constant"] = "poisson"
    requests: int = 0
    seed: int = 0
    # per-request (input, output) lengths, cycled in order (e.g. a measured run's dataset);
    # empty: every request is input_len / output_len
    shapes: tuple[tuple[int, int], ...] = ()
    # rate mode: the send offsets themselves (a measured stage's schedule) instead of drawing them
    arrivals: tuple[float, ...] = ()
    # per-request LoRA adapter (None: the base model), cycled in order like ``shapes``
    adapters: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        if self.input_len < 1 or self.output_len < 1:
            raise ValueError("Workload.input_len and output_len must be >= 1")
        if any(i < 1 or o < 1 for i, o in self.shapes):
            raise ValueError("Workload.shapes: every (input, output) length must be >= 1")
        if self.mode not in ("batch", "rate", "static"):
            raise ValueError(f'Workload.mode "{self.mode}" is not one of batch, rate, static')
        if self.mode in ("batch", "static") and self.concurrency < 1:
            raise ValueError("Workload.concurrency must be >= 1")
        if self.mode == "rate" and self.rate <= 0 and not self.arrivals:
            raise ValueError("Workload.rate must be > 0 requests per second")
        if self.arrivals and self.mode != "rate":
            raise ValueError("Workload.arrivals is an open-loop schedule: use it with mode rate")

    @property
    def n_requests(self) -> int:
        if self.arrivals:
            return len(self.arrivals)
        if self.requests:
            return self.requests
        if self.mode == "rate":
            return max(64, int(self.rate * 60))
        return max(2 * self.concurrency, 32) if self.mode == "batch" else self.concurrency


@dataclass(frozen=True)
class Percentiles:
    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: list[float] | np.ndarray) -> Percentiles:
        a = np.asarray(values, dtype=float)
        if a.size == 0:
            return cls(float("nan"), float("nan"), float("nan"), float("nan"))
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(float(a.mean()), float(p50), float(p90), float(p99))

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "p50": self.p50, "p90": self.p90, "p99": self.p99}


@dataclass(frozen=True)
class Prediction:
    stack: str
    workload: Workload
    requests: int
    duration_s: float
    ttft_s: Percentiles
    tpot_s: Percentiles
    e2e_s: Percentiles
    queue_s: Percentiles
    output_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    preemptions: int
    mean_running: float
    steps: int
    usd_per_hour: float
    notes: tuple[str, ...] = field(default=())

    @property
    def output_tokens_per_usd(self) -> float:
        """Output tokens per dollar of the replica's chips (its share of the node's price)."""
        return self.output_tokens_per_s * 3600 / self.usd_per_hour if self.usd_per_hour else float("nan")

    def as_dict(self) -> dict[str, object]:
        w = self.workload
        return {
            "stack": self.stack, "modelled": True,
            "workload": {"inputLen": w.input_len, "outputLen": w.output_len, "mode": w.mode,
                         "concurrency": w.concurrency, "rate": w.rate, "arrival": w.arrival,
                         "requests": self.requests, "seed": w.seed, "shapes": [list(x) for x in w.shapes]},
            "durationS": self.duration_s, "ttftS": self.ttft_s.as_dict(), "tpotS": self.tpot_s.as_dict(),
            "e2eS": self.e2e_s.as_dict(), "queueS": self.queue_s.as_dict(),
            "outputTokensPerS": self.output_tokens_per_s, "totalTokensPerS": self.total_tokens_per_s,
            "requestsPerS": self.requests_per_s, "outputTokensPerUsd": self.output_tokens_per_usd,
            "preemptions": self.preemptions, "meanRunning": self.mean_running, "steps": self.steps,
            "notes": list(self.notes),
        }


def _arrivals(w: Workload) -> list[float]:
    if w.arrivals:
        return sorted(w.arrivals)
    rng = random.Random(w.seed)
    n = w.n_requests
    if w.arrival == "constant":
        return [i / w.rate for i in range(n)]
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(w.rate)
    return out


@dataclass
class Simulation:
    """One workload run through the engine in simulated time: every request, as the engine served it."""

    engine: Engine
    seqs: list[Sequence]  # in submission order (rid = index)
    running_sum: float  # ∫ running sequences dt, for the mean batch
    token_times: list[list[float]] | None  # per request, when each of its tokens left (with_tokens=True)


def simulate(spec: StackSpec, workload: Workload, *, perf: PerfModel | None = None,
             with_tokens: bool = False) -> Simulation:
    """Run ``workload`` through the stack's engine over simulated time (no clock, no HTTP)."""
    w = workload
    static = w.mode == "static"
    engine = Engine(spec, perf, static_batch=static, batch_size=w.concurrency if static else None,
                    static_wait_s=0.0)
    shapes = w.shapes or ((w.input_len, w.output_len),)
    for i, o in set(shapes):
        engine.check(i, o)
    total = w.n_requests
    seqs: list[Sequence] = []
    tokens: list[list[float]] | None = [] if with_tokens else None
    running_sum = 0.0

    def submit(at: float) -> None:
        i, o = shapes[len(seqs) % len(shapes)]
        adapter = w.adapters[len(seqs) % len(w.adapters)] if w.adapters else None
        seq = Sequence(rid=len(seqs), prompt_len=i, max_new=o, arrival=at, adapter=adapter)
        seqs.append(seq)
        if tokens is not None:
            tokens.append([])
        engine.add(seq)

    def account(res: StepResult) -> None:
        nonlocal running_sum
        running_sum += res.seqs * (res.end - res.start)
        if tokens is not None:
            for s in res.emitted:
                tokens[s.rid].append(s.last_token_at)  # type: ignore[arg-type]

    if w.mode == "rate":
        arrivals = _arrivals(w)
        nxt = 0
        while nxt < len(arrivals) or engine.has_work:
            t = engine.next_start()
            if nxt < len(arrivals) and (t is None or arrivals[nxt] <= t):
                submit(arrivals[nxt])
                nxt += 1
                continue
            res = engine.step(t)
            if res is not None:
                account(res)
    else:
        clients = w.concurrency
        for _ in range(min(clients, total)):
            submit(0.0)
        while engine.has_work:
            res = engine.step()
            if res is None:
                continue
            account(res)
            for _seq in res.finished:
                if len(seqs) < total:
                    submit(res.end)
    return Simulation(engine, seqs, running_sum, tokens)


def predict(spec: StackSpec, workload: Workload, *, perf: PerfModel | None = None) -> Prediction:
    """Predict what a load test of ``workload`` against ``spec`` would measure."""
    sim = simulate(spec, workload, perf=perf)
    return _summarise(spec, workload, sim.engine, sim.seqs, sim.running_sum)


def _summarise(spec: StackSpec, w: Workload, engine: Engine, seqs: list[Sequence], running_sum: float) -> Prediction:
    done = [s for s in seqs if s.finished_at is not None]
    start = min(s.arrival for s in seqs)
    end = max(s.finished_at for s in done if s.finished_at is not None)
    duration = end - start
    ttft = [s.first_token_at - s.arrival for s in done]  # type: ignore[operator]
    e2e = [s.finished_at - s.arrival for s in done]  # type: ignore[operator]
    tpot = [(s.finished_at - s.first_token_at) / (s.generated - 1) for s in done if s.generated > 1]  # type: ignore[operator]
    queue = [s.scheduled_at - s.arrival for s in done if s.scheduled_at is not None]
    out_tokens = sum(s.generated for s in done)
    in_tokens = sum(s.prompt_len for s in done)
    notes = []
    if engine.stats.preemptions:
        notes.append(f"{engine.stats.preemptions} preemption(s): the KV cache ({engine.kv_blocks} blocks) ran out")
    return Prediction(
        stack=spec.name, workload=w, requests=len(done), duration_s=duration,
        ttft_s=Percentiles.of(ttft), tpot_s=Percentiles.of(tpot), e2e_s=Percentiles.of(e2e),
        queue_s=Percentiles.of(queue),
        output_tokens_per_s=out_tokens / duration if duration else float("nan"),
        total_tokens_per_s=(out_tokens + in_tokens) / duration if duration else float("nan"),
        requests_per_s=len(done) / duration if duration else float("nan"),
        preemptions=engine.stats.preemptions, mean_running=running_sum / duration if duration else 0.0,
        steps=engine.stats.steps, usd_per_hour=spec.usd_per_replica_hour, notes=tuple(notes),
    )
