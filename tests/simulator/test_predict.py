"""``predict``: the library call the analysis uses for what-if questions."""

from __future__ import annotations

import pytest

from loadtest.simulator import Workload, predict


def test_throughput_rises_with_batch_and_latency_with_it(spec_7b_a3):
    small = predict(spec_7b_a3, Workload(128, 64, mode="batch", concurrency=4, requests=32))
    large = predict(spec_7b_a3, Workload(128, 64, mode="batch", concurrency=64, requests=256))
    assert large.output_tokens_per_s > 4 * small.output_tokens_per_s
    assert large.tpot_s.mean > small.tpot_s.mean


def test_ttft_grows_with_the_prompt(spec_7b_a3):
    short = predict(spec_7b_a3, Workload(128, 16, concurrency=1, requests=4))
    long = predict(spec_7b_a3, Workload(3000, 16, concurrency=1, requests=4))
    # 23x the prompt: the prefill grows with it, the fixed request overhead does not
    assert long.ttft_s.mean > 3 * short.ttft_s.mean


def test_rate_mode_is_seeded(spec_7b_a3):
    w = Workload(256, 64, mode="rate", rate=20, requests=100, seed=7)
    a, b = predict(spec_7b_a3, w), predict(spec_7b_a3, w)
    assert a.as_dict() == b.as_dict()
    c = predict(spec_7b_a3, Workload(256, 64, mode="rate", rate=20, requests=100, seed=8))
    assert c.ttft_s.p99 != a.ttft_s.p99


def test_overload_queues(spec_7b_a3):
    light = predict(spec_7b_a3, Workload(512, 128, mode="rate", rate=2, requests=60))
    heavy = predict(spec_7b_a3, Workload(512, 128, mode="rate", rate=500, requests=600))
    assert heavy.queue_s.p90 > 10 * max(light.queue_s.p90, 1e-3)


def test_small_kv_cache_preempts(stacks):
    p = predict(stacks["llama2-7b-g2"], Workload(1024, 512, mode="batch", concurrency=64, requests=64))
    assert p.preemptions > 0
    assert any("preemption" in n for n in p.notes)


def test_static_mode_matches_a_single_batch(spec_7b_a3):
    p = predict(spec_7b_a3, Workload(32, 128, mode="static", concurrency=16, requests=16))
    assert p.ttft_s.p50 == pytest.approx(p.ttft_s.p99, abs=1e-3)  # one prefill for the whole batch


def test_bad_workload_names_the_field():
    with pytest.raises(ValueError, match=r"Workload\.rate"):
        Workload(mode="rate", rate=0)
    with pytest.raises(ValueError, match=r"Workload\.mode"):
        Workload(mode="sweep")  # type: ignore[arg-type]


def test_mixed_shapes_cycle(spec_7b_a3):
    w = Workload(mode="batch", concurrency=4, requests=8, shapes=((100, 10), (2000, 50)))
    p = predict(spec_7b_a3, w)
    assert p.requests == 8
    assert p.total_tokens_per_s > p.output_tokens_per_s
    with pytest.raises(ValueError, match=r"Workload\.shapes"):
        Workload(shapes=((0, 5),))
