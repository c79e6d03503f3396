"""The model check: every stage replayed on the stack's performance model, compared, judged."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from loadtest import model_check
from loadtest.aggregate import summarize_stage
from loadtest.model_check import TOLERANCE, TTFT_FLOOR_S, agreement, check_stage, judge, predicted_records
from loadtest.records import RequestRecord
from stacks.loader import load_stack_file, stack_files

from .conftest import load_run, results_dir_from, run_cli


@pytest.fixture(scope="module")
def spec():
    return load_stack_file(stack_files()["llama2-7b-a3"], "llama2-7b-a3")


def _records(n: int, *, gap: float = 0.05, origin: float = 10.0) -> list[RequestRecord]:
    """An open-loop stage as the load tester records it (times on the run clock, measured by hand)."""
    out = []
    for i in range(n):
        t = origin + i * gap
        out.append(RequestRecord(stage="0-rate-20", i=i, scheduled=t, warmup=False, inputTokensExpected=128,
                                 outputTokensRequested=32, sent=t + 0.001, first=t + 0.05, end=t + 0.5,
                                 chunks=[(t + 0.05, 1)], inputTokens=128, outputTokens=32, status=200))
    return out


def test_rate_replay_keeps_the_schedule_lengths_and_order(spec) -> None:
    recs = _records(20)
    pred = predicted_records(spec, "rate", 20.0, recs)
    assert isinstance(pred, list) and len(pred) == 20
    for r, p in zip(recs, pred, strict=True):
        assert (p.i, p.stage, p.scheduled, p.sent) == (r.i, r.stage, r.scheduled, r.scheduled)
        assert (p.inputTokens, p.outputTokens, p.tokenSource, p.error) == (128, 32, "model", None)
        assert p.sent < p.first < p.end  # type: ignore[operator]
        assert len(p.chunks) == 32 and p.chunks[0][0] == p.first and p.chunks[-1][0] == p.end
    assert pred == predicted_records(spec, "rate", 20.0, recs)  # simulated time: the same every time


def test_closed_loop_replay_serves_level_clients(spec) -> None:
    recs = [replace(r, stage="0-batch-4") for r in _records(12, gap=0.0)]
    pred = predicted_records(spec, "batch", 4.0, recs)
    assert isinstance(pred, list)
    starts = sorted(p.sent for p in pred)  # type: ignore[misc]
    assert starts[:4] == [10.0] * 4 and starts[4] > 10.0  # four clients; the fifth waits for a finish


def test_failed_requests_are_replayed_with_what_they_asked_for(spec) -> None:
    recs = _records(3)
    recs[1] = replace(recs[1], error="http_5xx", status=500, outputTokens=None, first=None, end=None)
    pred = predicted_records(spec, "rate", 20.0, recs)
    assert isinstance(pred, list) and pred[1].outputTokens == 32 and pred[1].error is None


@pytest.mark.parametrize(("recs", "kw", "reason"), [
    ([], {}, "no request"),
    (None, {"max_concurrency": 4}, "--max-concurrency"),
    ([replace(r, inputTokens=None, inputTokensExpected=None) for r in _records(2)], {}, "no known input"),
    ([replace(r, inputTokens=10**7) for r in _records(2)], {}, "cannot serve"),
])
def test_stages_the_model_cannot_replay_say_why(spec, recs, kw, reason) -> None:
    result = predicted_records(spec, "rate", 20.0, _records(2) if recs is None else recs, **kw)
    assert isinstance(result, str) and reason in result


def test_agreement_tolerances() -> None:
    assert agreement(1000, 1000 * (1 + TOLERANCE * 0.9), 0.1, 0.1).agrees
    off = agreement(1000 * (1 + 2 * TOLERANCE), 1000, 0.1, 0.1)
    assert not off.agrees and off.error_tok_s == pytest.approx(2 * TOLERANCE) and "output tok/s" in off.disagreements[0]
    # small TTFTs: within the absolute floor is agreement, however large the ratio
    assert agreement(100, 100, 0.010 + TTFT_FLOOR_S * 0.9, 0.010).agrees
    assert not agreement(100, 100, 0.010 + TTFT_FLOOR_S * 1.1, 0.010).agrees
    assert agreement(100, None, 0.1, None).agrees  # nothing to compare is no disagreement


def test_judge_host_bound_only_for_simulated_endpoints() -> None:
    assert judge(False, False, modelled_target=False) is None  # a real endpoint: the model's error
    assert judge(False, True, modelled_target=True) is False
    assert judge(False, False, modelled_target=True) is True
    assert judge(True, True, modelled_target=True) is True  # the load generator fell behind
    assert judge(False, None, modelled_target=True) is None  # no prediction


def _summary(recs: list[RequestRecord]) -> dict:
    return summarize_stage(stage_id="0-rate-20", mode="rate", level=20.0, arrival="poisson", records=recs,
                           start=recs[0].sent, end=max(r.end for r in recs), slo={})  # type: ignore[arg-type,type-var]


def test_check_stage_writes_the_model_block(spec) -> None:
    recs = predicted_records(spec, "rate", 20.0, _records(40))
    assert isinstance(recs, list)
    summary = _summary(recs)  # a stage measured exactly as the model serves it
    pred = check_stage(spec, summary, recs, modelled_target=True, slo={})
    assert len(pred) == 40 and summary["hostBound"] is False and summary["model"]["agrees"]
    assert summary["model"]["error"]["outputTokensPerS"] == pytest.approx(0.0, abs=1e-9)
    slow = [replace(r, first=r.first + 0.2, end=r.end + 0.2) for r in recs]  # type: ignore[operator]
    summary = _summary(slow)
    check_stage(spec, summary, slow, modelled_target=True, slo={})
    assert summary["hostBound"] is True and "TTFT p50" in summary["model"]["disagreements"][0]
    json.dumps(summary, allow_nan=False)  # summary.json stays strict JSON


def test_check_stage_without_a_spec_or_with_a_broken_model(spec, monkeypatch) -> None:
    recs = _records(3)
    summary = _summary(recs)
    assert check_stage(None, summary, recs, modelled_target=False, slo={}) == []
    assert "no stack file" in summary["model"]["skipped"] and summary["hostBound"] is None

    def boom(*a, **k):
        raise RuntimeError("defect")

    monkeypatch.setattr(model_check, "predicted_records", boom)
    check_stage(spec, summary, recs, modelled_target=True, slo={})
    assert "RuntimeError: defect" in summary["model"]["skipped"]  # the measurement is kept


def test_sim_run_writes_predictions_beside_the_measurement(capsys, tmp_path) -> None:
    code, out, err = run_cli(capsys, "run", "--stack", "llama2-7b-g2", "--target", "sim", "--mode", "rate",
                             "--levels", "2", "--requests-per-level", "6", "--output-len", "8", "--input-len", "64",
                             "--arrival", "poisson", "--seed", "5", "--results-dir", str(tmp_path), "--no-progress")
    assert code == 0, err
    run_dir = results_dir_from(out)
    summary, records = load_run(run_dir)
    predicted = [json.loads(x) for x in (run_dir / "predicted.jsonl").read_text().splitlines()]
    assert [p["i"] for p in predicted] == sorted(r["i"] for r in records)
    stage = summary["stages"][0]
    assert stage["model"]["predicted"]["outputTokensPerS"] > 0 and isinstance(stage["hostBound"], bool)


def test_rate_replay_follows_the_schedule_when_indices_interleave(spec) -> None:
    """--workers: indices of different processes interleave; each record keeps its own send time."""
    recs = _records(6)
    recs = [replace(r, i=k) for r, k in zip(recs, (0, 3, 1, 4, 2, 5), strict=True)]
    pred = predicted_records(spec, "rate", 20.0, recs)
    assert isinstance(pred, list)
    assert {(p.i, p.sent) for p in pred} == {(r.i, r.scheduled) for r in recs}
