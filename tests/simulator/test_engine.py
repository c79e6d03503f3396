"""The scheduler: budgets, chunked prefill, KV blocks, preemption, static batches, determinism."""

from __future__ import annotations

import dataclasses

import pytest

from loadtest.simulator.engine import Engine, EngineError, Sequence

from .conftest import with_kv_blocks


def run_all(engine: Engine) -> list:
    results = []
    while engine.has_work:
        res = engine.step()
        if res is not None:
            results.append(res)
    return results


def add(engine: Engine, n: int, prompt: int, out: int, at: float = 0.0) -> list[Sequence]:
    seqs = [Sequence(rid=i, prompt_len=prompt, max_new=out, arrival=at) for i in range(n)]
    for s in seqs:
        engine.add(s)
    return seqs


def test_every_request_gets_exactly_its_tokens(spec_7b_a3):
    engine = Engine(spec_7b_a3)
    seqs = add(engine, 10, 100, 20)
    run_all(engine)
    assert all(s.generated == 20 and s.done for s in seqs)
    assert engine.free_blocks == engine.kv_blocks  # everything freed


def test_max_batch_caps_running_sequences(spec_7b_a3):
    spec = dataclasses.replace(spec_7b_a3, max_batch=4)
    engine = Engine(spec)
    add(engine, 10, 16, 8)
    for res in run_all(engine):
        assert res.seqs <= 4


def test_token_budget_and_chunked_prefill(spec_7b_a3):
    spec = dataclasses.replace(spec_7b_a3, max_batched_tokens=512)
    engine = Engine(spec)
    (seq,) = add(engine, 1, 2000, 4)
    results = run_all(engine)
    assert all(r.new_tokens <= 512 for r in results)
    assert [r.prefill_tokens for r in results[:4]] == [512, 512, 512, 464]  # 2000 tokens in 4 chunks
    assert seq.first_token_at == results[3].end  # the first token comes with the last chunk


def test_prompt_longer_than_budget_without_chunking_is_refused(spec_7b_a3):
    spec = dataclasses.replace(spec_7b_a3, max_batched_tokens=512, chunked_prefill=False)
    with pytest.raises(EngineError, match="chunked prefill is off"):
        Engine(spec).check(2000, 4)


def test_context_limit_is_refused_like_vllm(spec_7b_a3):
    with pytest.raises(EngineError, match="maximum context length is 4096"):
        Engine(spec_7b_a3).check(4000, 200)


def test_kv_exhaustion_preempts_and_still_finishes(spec_7b_a3):
    spec = with_kv_blocks(spec_7b_a3, 40)  # 640 tokens of KV for 8 x (64 + 64)
    engine = Engine(spec)
    seqs = add(engine, 8, 64, 64)
    run_all(engine)
    assert engine.stats.preemptions > 0
    assert all(s.generated == 64 for s in seqs)
    assert sum(s.preemptions for s in seqs) == engine.stats.preemptions
    assert engine.free_blocks == 40


def test_kv_usage_never_exceeds_capacity(spec_7b_a3):
    spec = with_kv_blocks(spec_7b_a3, 50)
    engine = Engine(spec)
    add(engine, 12, 40, 40)
    while engine.has_work:
        engine.step()
        assert 0 <= engine.free_blocks <= engine.kv_blocks


def test_static_batch_admits_no_one_mid_batch(spec_7b_a3):
    engine = Engine(spec_7b_a3, static_batch=True, batch_size=4, static_wait_s=0.0)
    first = add(engine, 4, 32, 16)
    engine.step()  # the batch's prefill
    late = Sequence(rid=99, prompt_len=32, max_new=16, arrival=engine.now)
    engine.add(late)
    while any(not s.done for s in first):
        engine.step()
    assert late.scheduled_at is None or late.scheduled_at >= max(s.finished_at for s in first)
    run_all(engine)
    assert late.done


def test_static_batch_members_finish_together(spec_7b_a3):
    engine = Engine(spec_7b_a3, static_batch=True, batch_size=8, static_wait_s=0.0)
    seqs = add(engine, 8, 32, 16)
    run_all(engine)
    spread = 8 * engine.emit_s  # the step's tokens leave one stream after another
    assert max(s.finished_at for s in seqs) - min(s.finished_at for s in seqs) <= spread + 1e-12
    assert max(s.first_token_at for s in seqs) - min(s.first_token_at for s in seqs) <= spread + 1e-12


def test_same_arrivals_same_schedule(spec_7b_a3):
    def schedule() -> list[float]:
        engine = Engine(spec_7b_a3)
        for i in range(20):
            engine.add(Sequence(rid=i, prompt_len=50 + i, max_new=10 + i, arrival=i * 0.01))
        return [r.end for r in run_all(engine)]

    assert schedule() == schedule()


def test_continuous_batching_lets_new_requests_join(spec_7b_a3):
    engine = Engine(spec_7b_a3)
    (a,) = add(engine, 1, 32, 50)
    for _ in range(5):
        engine.step()
    b = Sequence(rid=1, prompt_len=32, max_new=5, arrival=engine.now)
    engine.add(b)
    run_all(engine)
    assert b.finished_at < a.finished_at  # b joined the running batch and left first
