"""One place owns time: when each request of a stage is *scheduled*, and when the stage ends.

- ``batch N``: closed loop. N workers each send a request, wait for it to finish, send the next.
  A request's scheduled time is the moment its worker became free.
- ``rate R``: open loop. Scheduled times are fixed in advance (constant spacing 1/R; Poisson:
  exponential gaps with mean 1/R; gamma: gaps with mean 1/R and shape ``burstiness``, below 1
  burstier than Poisson, as ``vllm bench serve --burstiness``; all seeded); a request is sent at its
  scheduled time whether or not earlier ones have finished. ``normalize`` scales a count-bounded
  stage's random gaps so its N requests span exactly N/R (vllm bench's normalisation: the achieved
  rate is then the requested one, not a sample of it); ``ramp_up`` seconds raise the rate linearly
  from 0 to R first; ``max_concurrency`` caps requests in flight (a request due while the cap is
  full waits, and its dispatch delay shows it). If the client falls behind, the gap between
  scheduled and actual send time (dispatch delay) shows it; latency is also reported from the
  scheduled time.
- A stage is bounded by a request count or a duration, after an optional warmup (requests
  *scheduled* during warmup are marked and excluded from statistics), and followed by a cooldown.
- ``sweep``: raise the level stage by stage until the server falls short or an SLO breaks; the
  last good level is the knee.
- Shares (``share_of``): a stage split over W processes or pods. In an open-loop stage every share
  draws the *same* seeded global schedule and sends the arrivals whose global number g has
  g mod W == k, so the union of the shares is exactly the requested process (not W independent
  ones); request g gets the workload's prompt g. A closed-loop stage splits its clients and count.

Ctrl-C (``stop`` set) ends dispatch at once; requests in flight get ``grace`` seconds, then are
cancelled and recorded as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .clock import Clock
from .records import RequestRecord
from .runner import Runner
from .workloads import Workload


def _release(slots: asyncio.Semaphore, _task: asyncio.Task[Any]) -> None:
    """A finished request frees its --max-concurrency slot."""
    slots.release()


@dataclass(frozen=True)
class StageSpec:
    id: str
    mode: str  # "batch" | "rate"
    level: float  # concurrency N or requested rate R (req/s)
    arrival: str  # "closed" | "constant" | "poisson"
    count: int | None  # measured requests to send (warmup excluded)
    duration: float | None  # measured seconds of sending (warmup excluded)
    warmup: float = 0.0
    seed: int = 0
    start_at: float | None = None  # run-clock time to start at (worker processes start together)
    burstiness: float = 1.0  # gamma arrivals' shape (1: Poisson)
    normalize: bool = False  # scale a count-bounded stage's random gaps to span exactly count / rate
    ramp_up: float = 0.0  # seconds over which the rate rises linearly from 0 to level
    max_concurrency: int | None = None  # open loop: at most this many requests in flight
    share_index: int = 0  # this process's share k of share_count (``share_of``)
    share_count: int = 1


@dataclass
class StageRun:
    """What happened in one stage: its records and the times that bound it."""

    spec: StageSpec
    start: float
    measure_from: float
    dispatch_end: float = 0.0
    end: float = 0.0
    interrupted: bool = False
    records: list[RequestRecord] | None = None


def _split(total: int, parts: int, k: int) -> int:
    return total // parts + (1 if k < total % parts else 0)


def share_of(spec: StageSpec, k: int, parts: int) -> StageSpec:
    """Share ``k`` of ``parts`` of a stage (worker processes, load-generator pods).

    Open loop: the same level, count and seed (the global schedule), arrivals g = k mod parts;
    ``max_concurrency`` is split (each share caps its own in-flight requests). Closed loop: the
    clients, the count and the cap are split as evenly as possible.
    """
    if parts == 1:
        return spec
    cap = max(1, _split(spec.max_concurrency, parts, k)) if spec.max_concurrency else None
    if spec.mode == "rate":
        return replace(spec, share_index=k, share_count=parts, max_concurrency=cap)
    count = _split(spec.count, parts, k) if spec.count is not None else None
    return replace(spec, level=float(_split(int(spec.level), parts, k)), count=count, max_concurrency=cap,
                   share_index=k, share_count=parts)


def stage_span(spec: StageSpec) -> float | None:
    """Seconds from a stage's start to its last scheduled send: known in advance for an open-loop
    stage (its schedule is seeded) and for a duration-bounded one; None for a closed loop bounded
    by a count (its pace is the server's). Pods that cannot talk to each other start each stage on
    a timetable built from this."""
    if spec.mode == "batch" or spec.count is None:
        return None if spec.duration is None else spec.warmup + spec.duration
    budget = _Budget(spec, spec.warmup)
    last = 0.0
    for offset in arrival_offsets(spec.level, spec.arrival, spec.seed, burstiness=spec.burstiness,
                                  normalize_to=spec.count if spec.normalize else None, ramp_up=spec.ramp_up):
        if budget.take(offset) is None:
            return last
        last = offset
    return last  # pragma: no cover - the offsets never end


def arrival_offsets(rate: float, arrival: str, seed: int, *, burstiness: float = 1.0, normalize_to: int | None = None,
                    ramp_up: float = 0.0) -> Iterator[float]:
    """Scheduled send offsets (seconds from stage start) for an open-loop stage.

    ``normalize_to`` N: the first N random gaps are scaled so they add up to N / rate. ``ramp_up``
    S: the steady process is time-warped so the rate rises linearly over S seconds (the expected
    count by time t is R t^2 / 2S, then R (t - S/2)); the order and the seed's draws are unchanged.
    """
    offsets = _steady_offsets(rate, arrival, seed, burstiness, normalize_to)
    if ramp_up <= 0:
        yield from offsets
        return
    half = ramp_up / 2
    for u in offsets:
        yield math.sqrt(2 * ramp_up * u) if u < half else u + half


def _steady_offsets(rate: float, arrival: str, seed: int, burstiness: float,
                    normalize_to: int | None) -> Iterator[float]:
    if arrival == "constant":
        i = 0
        while True:
            yield i / rate
            i += 1
    rng = random.Random(seed)
    if arrival == "gamma":
        def gap() -> float:
            return rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
    else:
        def gap() -> float:
            return rng.expovariate(rate)
    t = 0.0
    if normalize_to:
        gaps = [gap() for _ in range(normalize_to)]
        scale = (normalize_to / rate) / sum(gaps)
        for g in gaps:
            yield t
            t += g * scale
    while True:
        yield t
        t += gap()


class _Budget:
    """Decides whether one more request may be scheduled at time t."""

    def __init__(self, spec: StageSpec, measure_from: float):
        self.spec = spec
        self.measure_from = measure_from
        self.measured = 0

    def take(self, t: float) -> bool | None:
        """True: send as measured; False: send as warmup; None: the stage is over."""
        if t < self.measure_from:
            return False
        if self.spec.count is not None:
            if self.measured >= self.spec.count:
                return None
        elif self.spec.duration is not None and t >= self.measure_from + self.spec.duration:
            return None
        self.measured += 1
        return True


class Scheduler:
    def __init__(self, runner: Runner, workload: Workload, clock: Clock, stop: asyncio.Event, grace: float = 5.0,
                 force: asyncio.Event | None = None):
        self.runner = runner
        self.workload = workload
        self.clock = clock
        self.stop = stop
        self.force = force or asyncio.Event()  # a second Ctrl-C: no grace
        self.grace = grace
        self._index = 0  # the next request's number (global across the shares of a stage)

    def _record(self, spec: StageSpec, scheduled: float, warmup: bool, i: int) -> RequestRecord:
        return RequestRecord(stage=spec.id, i=i, scheduled=scheduled, warmup=warmup)

    async def run_stage(self, spec: StageSpec, on_record: Callable[[RequestRecord], None] | None = None) -> StageRun:
        if spec.start_at is not None and (delay := spec.start_at - self.clock.now()) > 0:
            await asyncio.sleep(delay)
        start = spec.start_at if spec.start_at is not None else self.clock.now()
        run = StageRun(spec, start=start, measure_from=start + spec.warmup)
        records: list[RequestRecord] = []
        budget = _Budget(spec, run.measure_from)
        tasks: set[asyncio.Task[Any]] = set()
        base, k, parts = self._index, spec.share_index, spec.share_count
        numbered = 0  # global numbers g used so far (this share's and, open loop, the others')

        async def one(rec: RequestRecord) -> None:
            records.append(rec)
            await self.runner.send(rec, self.workload.peek(rec.i - base))
            if on_record:
                on_record(rec)

        if spec.mode == "batch":
            async def worker() -> None:
                nonlocal numbered
                while not self.stop.is_set():
                    t = self.clock.now()
                    verdict = budget.take(t)
                    if verdict is None:
                        return
                    g = k + numbered * parts  # closed loop: this share's requests are k, k + W, ...
                    numbered += 1
                    await one(self._record(spec, t, not verdict, base + g))

            tasks = {asyncio.create_task(worker()) for _ in range(int(spec.level))}
            await self._drain(tasks, run)
            run.dispatch_end = max((r.sent or 0.0 for r in records), default=start)
        else:
            slots = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None
            normalize_to = spec.count if spec.normalize else None  # the config allows it only with a count
            for g, offset in enumerate(arrival_offsets(spec.level, spec.arrival, spec.seed,
                                                       burstiness=spec.burstiness, normalize_to=normalize_to,
                                                       ramp_up=spec.ramp_up)):
                if self.stop.is_set():
                    break
                scheduled = start + offset
                verdict = budget.take(scheduled)  # the budget counts every share's arrivals
                if verdict is None:
                    break
                numbered = g + 1
                if g % parts != k:
                    continue
                while (delay := scheduled - self.clock.now()) > 0 and not self.stop.is_set():
                    await asyncio.sleep(min(delay, 0.25))
                if slots is not None and not await self._slot(slots):
                    break  # stopped while waiting for a free slot
                if self.stop.is_set():
                    if slots is not None:
                        slots.release()
                    break
                task = asyncio.create_task(one(self._record(spec, scheduled, not verdict, base + g)))
                if slots is not None:
                    task.add_done_callback(functools.partial(_release, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            run.dispatch_end = self.clock.now()
            await self._drain(set(tasks), run)
        run.end = self.clock.now()
        run.interrupted = self.stop.is_set()
        records.sort(key=lambda r: r.i)
        run.records = records
        # the next stage numbers (and draws prompts) after every share's requests of this one
        used = numbered if spec.mode == "rate" else max((r.i - base for r in records), default=-1) + 1
        self._index = base + used
        self.workload.advance(used)
        return run

    async def _slot(self, slots: asyncio.Semaphore) -> bool:
        """Wait for a free slot under ``max_concurrency`` (the request's dispatch delay grows
        meanwhile); False when the run is stopped first."""
        while not self.stop.is_set():
            try:
                async with asyncio.timeout(0.25):
                    await slots.acquire()
                return True
            except TimeoutError:
                continue
        return False

    async def _drain(self, tasks: set[asyncio.Task[Any]], run: StageRun) -> None:
        """Wait for the stage's tasks; after Ctrl-C, give them ``grace`` seconds, then cancel."""
        pending = set(tasks)
        while pending:
            if self.stop.is_set():
                deadline = self.clock.now() + self.grace
                while pending and not self.force.is_set() and self.clock.now() < deadline:
                    _, pending = await asyncio.wait(pending, timeout=min(0.1, self.grace))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                return
            _, pending = await asyncio.wait(pending, timeout=0.2)


class SweepPlanner:
    """``--mode sweep``: levels rise until the server falls short or an SLO breaks.

    Given levels are tried in order; without them, rates double from 1 req/s (batch sizes from 1).
    A level is *good* when the server kept pace with the schedule — completions from first to
    last (``completionRate``, not a window that includes the final drain) >= 90 % of the
    scheduled rate (rate sweep) — or output tokens/s grew by >= 10 % over the previous level (batch
    sweep), the error rate is <= 5 %, and every SLO holds. The knee is the last good level; after
    the first bad one, one bisection stage between the knee and it refines the answer.
    """

    def __init__(self, of: str, levels: list[float] | None, max_stages: int):
        self.of = of
        self.explicit = list(levels) if levels else None
        self.max_stages = max_stages
        self.history: list[tuple[float, bool, str]] = []
        self.knee: float | None = None
        self.reason = ""
        self._bad: float | None = None
        self._bisected = False
        self._last_tput: float | None = None

    def judge(self, stage: dict[str, Any], slo_ok: bool) -> tuple[bool, str]:
        level = stage["level"]
        completed = stage.get("completed") or 0
        reqs = stage.get("requests") or 0
        errors = reqs - completed
        if reqs and errors / reqs > 0.05:
            return False, f"{errors} of {reqs} requests failed"
        if not slo_ok:
            return False, "an SLO broke"
        if self.of == "rate":
            # this sample's own rate (a Poisson draw of a short stage can differ from the level by 20 %)
            scheduled = stage.get("scheduledRate") or level
            kept = stage.get("completionRate")
            if kept is None:
                kept = stage.get("requestThroughput") or 0.0
            if kept < 0.9 * scheduled:
                return False, (f"completions kept pace with {kept:.2f} req/s (first to last), < 90 % of the "
                               f"{scheduled:.2f} req/s scheduled (level {level:g})")
            return True, "ok"
        if self._last_tput:
            # throughput in tokens/s must still grow meaningfully with the batch size
            gain = (stage.get("outputTokensPerS") or 0.0) / self._last_tput
            if gain < 1.10:
                return False, f"output tokens/s grew only {100 * (gain - 1):.0f} % over batch {self.knee:g}"
        return True, "ok"

    def record(self, stage: dict[str, Any], slo_ok: bool) -> None:
        good, why = self.judge(stage, slo_ok)
        self.history.append((stage["level"], good, why))
        if good:
            if self.knee is None or stage["level"] > self.knee:
                self.knee = stage["level"]
            self._last_tput = stage.get("outputTokensPerS", 0.0)
        else:
            if self._bad is None or stage["level"] < self._bad:
                self._bad = stage["level"]
            self.reason = why

    def next_level(self) -> float | None:
        if len(self.history) >= self.max_stages:
            return None
        if self._bad is not None:
            if self._bisected or self.knee is None:
                return None
            self._bisected = True
            mid = (self.knee + self._bad) / 2
            if self.of == "batch":
                mid = int(mid)
            if mid <= self.knee or mid >= self._bad:
                return None
            return mid
        tried = len(self.history)
        if self.explicit is not None:
            return self.explicit[tried] if tried < len(self.explicit) else None
        return float(2 ** tried) if self.of == "rate" else 2 ** tried
