"""Schedules (arrival times, sweep decisions), workloads (seeded prompts, ShareGPT filters), scraping."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json

import pytest

from loadtest.config import LengthSpec, LoadConfig
from loadtest.errors import BadInput
from loadtest.metrics_scrape import parse_samples, summarize
from loadtest.schedule import SweepPlanner, arrival_offsets
from loadtest.workloads import sharegpt, synthetic


def test_constant_arrivals_are_evenly_spaced():
    assert list(itertools.islice(arrival_offsets(4.0, "constant", 0), 4)) == [0.0, 0.25, 0.5, 0.75]


def test_poisson_arrivals_are_seeded_with_the_right_mean():
    a = list(itertools.islice(arrival_offsets(10.0, "poisson", 3), 5001))
    b = list(itertools.islice(arrival_offsets(10.0, "poisson", 3), 5001))
    assert a == b and a != list(itertools.islice(arrival_offsets(10.0, "poisson", 4), 5001))
    gaps = [y - x for x, y in itertools.pairwise(a)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.1, rel=0.05)


def _stage(level, tput, completed=100, requests=100, out=1000.0):
    return {"level": level, "requestThroughput": tput, "completed": completed, "requests": requests,
            "outputTokensPerS": out}


def test_rate_sweep_finds_the_knee_and_bisects_once():
    p = SweepPlanner("rate", None, 10)
    assert p.next_level() == 1.0
    p.record(_stage(1, 1.0), True)
    assert p.next_level() == 2.0
    p.record(_stage(2, 2.0), True)
    assert p.next_level() == 4.0
    p.record(_stage(4, 3.0), True)  # 75 % of requested: saturated
    assert p.knee == 2 and "kept pace" in p.reason
    assert p.next_level() == 3.0  # one bisection between knee and first bad
    p.record(_stage(3, 2.95), True)
    assert p.knee == 3 and p.next_level() is None


def test_sweep_stops_on_slo_or_errors():
    p = SweepPlanner("rate", [1, 2, 4], 10)
    p.record(_stage(1, 1.0), True)
    p.record(_stage(2, 2.0, completed=80), True)
    assert p.knee == 1 and "failed" in p.reason
    p2 = SweepPlanner("rate", [1, 2], 10)
    p2.record(_stage(1, 1.0), False)
    assert p2.knee is None and p2.next_level() is None and p2.reason == "an SLO broke"


def test_batch_sweep_stops_when_throughput_stops_growing():
    p = SweepPlanner("batch", None, 10)
    p.record(_stage(1, 1, out=100), True)
    p.record(_stage(2, 2, out=190), True)
    p.record(_stage(4, 2, out=200), True)
    assert p.knee == 2 and "grew only" in p.reason


def cfg(**kw) -> LoadConfig:
    return LoadConfig(mode="batch", levels=[1], **kw)


def test_synthetic_prompts_are_seeded_and_distinct():
    a = asyncio.run(synthetic(cfg(seed=1), 20, None))
    b = asyncio.run(synthetic(cfg(seed=1), 20, None))
    c = asyncio.run(synthetic(cfg(seed=2), 20, None))
    assert [p.text for p in a.prompts] == [p.text for p in b.prompts] != [p.text for p in c.prompts]
    assert len({p.text.split()[0] for p in a.prompts}) == 20  # no two share a cacheable prefix
    assert all(len(p.text.split()) == 129 for p in a.prompts)  # serial + 128 words
    assert not a.exact_input


def test_distributed_lengths_stay_in_range():
    w = asyncio.run(synthetic(cfg(input_len=LengthSpec(10, 20), output_len=LengthSpec(5, 9)), 200, None))
    outs = {p.output_len for p in w.prompts}
    assert min(outs) == 5 and max(outs) == 9
    assert all(11 <= len(p.text.split()) <= 21 for p in w.prompts)


def test_exact_input_lengths_with_a_tokenizer():
    async def tokenize(texts):  # a tokenizer where every word is two tokens except "the"
        return [sum(1 if w == "the" else 2 for w in t.split()) for t in texts]

    w = asyncio.run(synthetic(cfg(input_len=LengthSpec(64, 64)), 30, tokenize))
    counts = asyncio.run(tokenize([p.text for p in w.prompts]))
    assert counts == [p.input_tokens for p in w.prompts]
    assert sum(c == 64 for c in counts) >= 25  # exact for (nearly) all; the rest are reported


def test_shared_prefix_groups():
    w = asyncio.run(synthetic(cfg(prefix_len=50, prefix_groups=3, input_len=LengthSpec(80, 80)), 9, None))
    prefixes = {" ".join(p.text.split()[:50]) for p in w.prompts}
    assert len(prefixes) == 3
    assert w.prompts[0].text.split()[:50] == w.prompts[3].text.split()[:50]


def test_sharegpt_filters_and_seed(tmp_path):
    data = [{"conversations": [{"from": "human", "value": "word " * n}, {"from": "gpt", "value": "reply " * m}]}
            for n, m in [(10, 10), (2, 10), (10, 2), (2000, 10), (900, 1500), (20, 30)]]
    data.append({"conversations": [{"from": "human", "value": "only one turn"}]})
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(data))

    async def tokenize(texts):
        return [len(t.split()) for t in texts]

    w = asyncio.run(sharegpt(cfg(), str(path), 10, tokenize))
    assert sorted((p.input_tokens, p.output_len) for p in w.prompts) == [(10, 10), (20, 30)]
    w2 = asyncio.run(sharegpt(cfg(), str(path), 10, tokenize, output_len=7))
    assert {p.output_len for p in w2.prompts} == {7}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"nope": 1}]))
    with pytest.raises(BadInput, match="conversations"):
        asyncio.run(sharegpt(cfg(), str(bad), 10, tokenize))


VLLM_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 7.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 2.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 3.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 2.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 2.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 0.3
"""


def test_parse_and_summarize_vllm_metrics():
    s = parse_samples(VLLM_METRICS)
    assert s['vllm:num_requests_running{engine="0",model_name="m"}'] == 7.0
    assert s['vllm:time_to_first_token_seconds_count{engine="0",model_name="m"}'] == 2.0
    assert not any("bucket" in k for k in s)
    later = dict(s)
    later['vllm:num_requests_running{engine="0",model_name="m"}'] = 3.0
    later['vllm:num_preemptions_total{engine="0",model_name="m"}'] = 5.0
    summary = summarize([{"t": 0, "stage": "x", "samples": s}, {"t": 1, "stage": "x", "samples": later}])
    assert summary == {"scrapes": 2, "runningMean": 5.0, "runningMax": 7.0, "waitingMax": 2.0,
                       "kvCacheUsageMax": 0.25, "preemptions": 2.0}


def test_scraper_stops_even_when_a_cancellation_is_lost():
    from loadtest.clock import Clock
    from loadtest.metrics_scrape import Scraper

    class SwallowingTransport:  # a get() that eats its cancellation, as a racing wait_for can
        async def get(self, url, headers=None):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)
            return 200, VLLM_METRICS.encode()

    async def scenario():
        seen = []
        scraper = Scraper("http://x/metrics", SwallowingTransport(), Clock(), 0.01, seen.append)
        scraper.start()
        await asyncio.sleep(0.2)
        await asyncio.wait_for(scraper.stop(), timeout=5)
        count = len(seen)
        await asyncio.sleep(0.1)
        return count, len(seen)

    before, after = asyncio.run(scenario())
    assert before >= 2 and after == before  # stopped, and stays stopped
