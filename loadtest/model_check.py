"""Predict → measure → the model's error, for every stage the load tester measures.

After a stage, the stack's performance model (``simulator.predict.simulate``, simulated time, no
HTTP) serves the *same* workload the stage sent: the same requests in the same order with the same
lengths, the same open-loop schedule (rate) or the same number of closed-loop clients (batch). Its
requests become ordinary records (``predicted.jsonl``, the request-record format) and are summarised
by the same ``summarize_stage`` as the measured ones, so both figures use one set of definitions.

What the comparison means depends on the target:
- a **real endpoint** (``gke``/``url``): the error is how far the model is from reality;
- a **simulated endpoint** (``sim``): the served numbers should *be* the model's. When they differ by
  more than the tolerance, the host running the simulator and the load tester could not keep up
  (CPU contention, a busy machine): the stage is ``hostBound``. The same holds for a stage the load
  generator itself could not keep (``clientBottleneck``). Analysis then reports such measurements
  but never lets them decide a verdict; for a simulated endpoint it decides on the prediction,
  which is deterministic for a seed whatever the machine is doing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .aggregate import summarize_stage
from .records import RequestRecord

if TYPE_CHECKING:
    from stacks.spec import StackSpec

    from .simulator.predict import Simulation

#: relative difference allowed between the measured and predicted throughput and TTFT p50
TOLERANCE = 0.10
#: a TTFT p50 difference smaller than this is HTTP and event-loop noise, not a model or host problem
TTFT_FLOOR_S = 0.025
#: stages with more requests than this are not predicted (the engine runs ~10k requests/s)
MAX_PREDICTED_REQUESTS = 200_000
#: the figures copied from each summary into the stage's ``model`` block
FIGURES = ("outputTokensPerS", "requestThroughput", "ttft", "tpot", "itl", "e2e")


def predicted_records(spec: StackSpec, mode: str, level: float, records: list[RequestRecord],
                      max_concurrency: int | None = None) -> list[RequestRecord] | str:
    """The stage's requests as the model serves them, or the reason it cannot.

    Lengths: each request's server-counted input (else the expected one) and the output it got
    (a completed request) or asked for (a failed one: the model serves what was asked). Times are
    on the run's clock: the first request is sent when the measured stage sent its first.
    """
    from .simulator.engine import EngineError
    from .simulator.predict import Workload, simulate

    if not records:
        return "the stage sent no request"
    if len(records) > MAX_PREDICTED_REQUESTS:
        return f"{len(records):,} requests: more than the {MAX_PREDICTED_REQUESTS:,} the model check replays"
    if mode == "rate" and max_concurrency:
        return "--max-concurrency caps the open-loop schedule, which the model does not replay"
    # the k-th request the model serves is the k-th sent: by schedule (open loop; with --workers the
    # indices of different processes interleave) or by index (closed loop)
    order = sorted(records, key=(lambda r: (r.scheduled, r.i)) if mode == "rate" else (lambda r: r.i))
    shapes: list[tuple[int, int]] = []
    for r in order:
        n_in = r.inputTokens or r.inputTokensExpected
        n_out = r.outputTokens if (r.ok and r.outputTokens) else r.outputTokensRequested
        if not n_in or not n_out:
            return f"request {r.i} has no known input or output length"
        shapes.append((int(n_in), int(n_out)))
    origin = min(r.scheduled for r in order)
    adapters = tuple(r.adapter for r in order) if any(r.adapter for r in order) else ()
    if mode == "rate":
        w = Workload(mode="rate", arrivals=tuple(r.scheduled - origin for r in order), shapes=tuple(shapes),
                     adapters=adapters)
    elif mode == "batch":
        w = Workload(mode="batch", concurrency=max(1, int(level)), requests=len(order), shapes=tuple(shapes),
                     adapters=adapters)
    else:
        return f'mode "{mode}" has no model'
    try:
        sim = simulate(spec, w, with_tokens=True)
    except EngineError as exc:
        return f"the model cannot serve a request of this stage: {exc}"
    assert sim.token_times is not None
    out: list[RequestRecord] = []
    # batch: the model's requests are sent in its own closed loop; seq k is the k-th request sent
    for r, seq, times in zip(order, sim.seqs, sim.token_times, strict=True):
        sent = origin + seq.arrival
        out.append(replace(
            r, scheduled=sent if mode == "batch" else r.scheduled, sent=sent,
            first=origin + seq.first_token_at if seq.first_token_at is not None else None,
            end=origin + seq.finished_at if seq.finished_at is not None else None,
            chunks=[(origin + t, 1) for t in times], inputTokens=seq.prompt_len, outputTokens=seq.generated,
            tokenSource="model", status=200, error=None, errorDetail=None, inputTokensEstimated=False))
    return out


def simulated_records(sim: Simulation, stage_id: str) -> list[RequestRecord]:
    """A simulation's requests as request records, sent at their arrival: the model's own stage (nothing
    measured), so ``summarize_stage`` judges a prediction by the definitions a measurement gets."""
    assert sim.token_times is not None, "simulate(..., with_tokens=True)"
    return [RequestRecord(stage=stage_id, i=seq.rid, scheduled=seq.arrival, warmup=False,
                          inputTokensExpected=seq.prompt_len, outputTokensRequested=seq.max_new, sent=seq.arrival,
                          first=seq.first_token_at, end=seq.finished_at, chunks=[(t, 1) for t in times],
                          inputTokens=seq.prompt_len, outputTokens=seq.generated, tokenSource="model", status=200)
            for seq, times in zip(sim.seqs, sim.token_times, strict=True)]


def _relative(measured: float | None, predicted: float | None) -> float | None:
    if measured is None or predicted is None or predicted == 0:
        return None
    return (measured - predicted) / predicted


@dataclass(frozen=True)
class Agreement:
    """How a stage's measurement compares with the model's replay of it.

    Errors are (measured − predicted) / predicted: +0.2 means the stage measured 20 % more than the
    model said. Agreement: throughput within ``TOLERANCE``, and TTFT p50 within ``TOLERANCE`` or
    ``TTFT_FLOOR_S``, whichever is larger.
    """

    error_tok_s: float | None
    error_ttft_p50: float | None
    disagreements: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return not self.disagreements


def agreement(measured_tok_s: float | None, predicted_tok_s: float | None,
              measured_ttft_p50: float | None, predicted_ttft_p50: float | None) -> Agreement:
    tput = _relative(measured_tok_s, predicted_tok_s)
    ttft = _relative(measured_ttft_p50, predicted_ttft_p50)
    reasons = []
    if tput is not None and abs(tput) > TOLERANCE:
        reasons.append(f"output tok/s {measured_tok_s:.4g} vs predicted {predicted_tok_s:.4g} ({tput:+.0%})")
    if ttft is not None and measured_ttft_p50 is not None and predicted_ttft_p50 is not None \
            and abs(measured_ttft_p50 - predicted_ttft_p50) > max(TOLERANCE * predicted_ttft_p50, TTFT_FLOOR_S):
        reasons.append(f"TTFT p50 {measured_ttft_p50 * 1e3:.1f} ms vs predicted {predicted_ttft_p50 * 1e3:.1f} ms "
                       f"({ttft:+.0%})")
    return Agreement(tput, ttft, tuple(reasons))


def judge(client_bottleneck: bool, agrees: bool | None, modelled_target: bool) -> bool | None:
    """``hostBound`` for a stage of a simulated endpoint: its served numbers are not the model's
    (beyond tolerance) or the load generator fell behind. None for real endpoints (their
    disagreement is the model's error, not the host's) and when there was no prediction."""
    if not modelled_target or agrees is None:
        return None
    return client_bottleneck or not agrees


def compare(measured: dict[str, Any], predicted: dict[str, Any]) -> dict[str, Any]:
    """The stage's ``model`` block of summary.json: the model's figures, the errors, the verdict."""
    a = agreement(measured.get("outputTokensPerS"), predicted.get("outputTokensPerS"),
                  (measured.get("ttft") or {}).get("p50"), (predicted.get("ttft") or {}).get("p50"))
    return {"predicted": {k: predicted.get(k) for k in FIGURES},
            "error": {"outputTokensPerS": a.error_tok_s, "ttftP50": a.error_ttft_p50},
            "tolerance": {"relative": TOLERANCE, "ttftFloorS": TTFT_FLOOR_S},
            "agrees": a.agrees, "disagreements": list(a.disagreements)}


def check_stage(spec: StackSpec | None, summary: dict[str, Any], records: list[RequestRecord], *,
                modelled_target: bool, slo: dict[str, float],
                max_concurrency: int | None = None) -> list[RequestRecord]:
    """Add ``model`` and ``hostBound`` to ``summary`` (in place); return the predicted records."""
    if spec is None:
        summary["model"] = {"skipped": "no stack file to model (pass --stack with a committed stack)"}
        summary["hostBound"] = None
        return []
    try:
        pred = predicted_records(spec, summary["mode"], summary["level"], records, max_concurrency)
    except Exception as exc:
        pred = f"the model failed on this stage ({type(exc).__name__}: {exc})"
    if isinstance(pred, str):
        summary["model"] = {"skipped": pred}
        summary["hostBound"] = None
        return []
    ok = [r for r in pred if not r.warmup]
    start = min((r.sent for r in ok if r.sent is not None), default=0.0)
    end = max((r.end for r in ok if r.end is not None), default=start)
    predicted = summarize_stage(stage_id=summary["id"], mode=summary["mode"], level=summary["level"],
                                arrival=summary["arrival"], records=pred, start=start, end=end, slo=slo)
    summary["model"] = compare(summary, predicted)
    summary["hostBound"] = judge(bool(summary.get("clientBottleneck")), summary["model"]["agrees"], modelled_target)
    return pred
