"""The rate sweep's judge: it finds the knee the performance model has, and never calls a stage
that kept pace short because its last requests were still draining."""

from __future__ import annotations

import itertools

import pytest

from loadtest.aggregate import summarize_stage
from loadtest.model_check import predicted_records
from loadtest.records import RequestRecord
from loadtest.schedule import SweepPlanner, arrival_offsets
from loadtest.simulator.predict import Workload, predict
from stacks.loader import load_stack_file, stack_files


def _record(i: int, t: float, e2e: float = 0.0, n_in: int = 128, n_out: int = 64) -> RequestRecord:
    return RequestRecord(stage="s", i=i, scheduled=t, warmup=False, inputTokensExpected=n_in,
                         outputTokensRequested=n_out, sent=t, first=t + e2e / 2, end=t + e2e, inputTokens=n_in,
                         outputTokens=n_out, status=200)


def _summary(records: list[RequestRecord], level: float) -> dict:
    return summarize_stage(stage_id="s", mode="rate", level=level, arrival="poisson", records=records,
                           start=min(r.sent for r in records), end=max(r.end for r in records), slo={})  # type: ignore


def test_a_stage_that_kept_pace_is_good_although_its_drain_lowers_the_window_rate() -> None:
    # 2 req/s for 10 s, every request 2.5 s: the server keeps pace, the drain adds 2.5 s to the window
    summary = _summary([_record(i, i / 2, e2e=2.5) for i in range(20)], 2.0)
    assert summary["requestThroughput"] < 1.8  # what the judge used to divide by
    assert summary["completionRate"] == pytest.approx(2.0, rel=0.01)
    good, why = SweepPlanner("rate", [2], 4).judge(summary, True)
    assert good, why


def test_a_server_falling_behind_is_bad() -> None:
    # sent at 4 req/s, served one at a time every 0.5 s: the queue grows for the whole stage
    records = [replace_end(_record(i, i / 4), 0.5 * (i + 1)) for i in range(40)]
    good, why = SweepPlanner("rate", [4], 4).judge(_summary(records, 4.0), True)
    assert not good and "kept pace" in why


def replace_end(r: RequestRecord, end: float) -> RequestRecord:
    r.first, r.end = end - 0.01, end
    return r


def _saturation(spec) -> float:
    """The most requests/s the model completes under open-loop load: constant-rate arrivals rising by
    15 % from half the closed-loop capacity, 30 s each. A rate's completion rate is its requests over
    the run less the drain a server that keeps pace adds (the median e2e at the first, light rate);
    past the knee the queue lengthens the drain and the completion rate falls below the rate."""
    closed = predict(spec, Workload(128, 64, "batch", concurrency=spec.max_batch, requests=2 * spec.max_batch))
    best, rate, drain = 0.0, 0.5 * closed.requests_per_s, None
    while True:
        p = predict(spec, Workload(128, 64, "rate", rate=rate, arrival="constant", requests=int(30 * rate)))
        drain = p.e2e_s.p50 if drain is None else drain
        got = p.requests / (p.duration_s - drain)
        if got < 0.95 * rate:
            return max(best, got)
        best, rate = max(best, got), rate * 1.15


@pytest.mark.parametrize("stack", ["llama2-7b-g2", "llama2-7b-a3"])
def test_the_rate_sweep_finds_the_models_saturation_point(stack: str) -> None:
    spec = load_stack_file(stack_files()[stack], stack)
    saturated = _saturation(spec)
    planner = SweepPlanner("rate", None, 12)
    seed = 0
    while (level := planner.next_level()) is not None:
        n = max(60, int(20 * level))  # 20 s of Poisson arrivals, normalised to exactly the level
        offsets = itertools.islice(arrival_offsets(level, "poisson", seed, normalize_to=n), n)
        replay = predicted_records(spec, "rate", level, [_record(i, t) for i, t in enumerate(offsets)])
        assert isinstance(replay, list)
        planner.record(_summary(replay, level), True)
        seed += 1
    assert planner.knee is not None
    # doubling from 1 req/s, then one bisection: the knee is the last rate kept, below saturation by at most
    # the bisection's step
    assert 0.75 * saturated <= planner.knee <= 1.05 * saturated, (planner.knee, saturated, planner.history)
