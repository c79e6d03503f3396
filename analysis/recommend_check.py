"""The demo's last step: what ``stacks recommend`` would deploy for the guide's 7B and 70B cases, set
beside the cheapest stack the demo measured for the same model, workload and SLO.

The recommendation searches the whole catalog from first principles (sizing + performance model);
the demo measured a handful of hand-written stacks. Agreement means the committed stacks already
hold the best setup; a cheaper pick names what the committed stacks do not try (a smaller host, an
fp8 KV cache, a batch closer to the latency limit), and it is only a prediction until a load test
of its written stack file confirms it.
"""

from __future__ import annotations

from dataclasses import replace

from stacks.loader import load_stack_file, stack_files
from stacks.spec import StackSpec

from .answer import Answer
from .slo import Slo

CASES = ("llama-2-7b", "llama-2-70b")


def _setup(spec: StackSpec) -> dict[str, object]:
    return {"machine": spec.machine.name, "server": spec.server.name, "precision": spec.precision.name,
            "KV cache": spec.kv_cache_dtype, "TP": spec.tensor_parallel}


def recommend_vs_measured(answers: list[Answer], slo: Slo, lengths: tuple[int, int]) -> list[str]:
    """One paragraph per case: the pick, the demo's cheapest measured stack, and how they differ."""
    from recommend.query import Query
    from recommend.search import search

    terms = tuple(t for t in slo.terms if t.metric != "error_rate")
    label = f"{lengths[0]}→{lengths[1]}"
    lines: list[str] = []
    files = stack_files()
    for model in CASES:
        q = Query(model={"name": model}, model_label=model, shapes=(lengths,), workload_label=f"{label} tokens",
                  slo=terms, top=1)
        result = search(q)
        measured = next((a.winner for a in answers if a.model == model and a.workload_label == label and a.winner),
                        None)
        if not result.picks:
            lines.append(f"{model}, {label}: stacks recommend finds no setup meeting {slo}.")
            continue
        pick = result.picks[0]
        text = (f"{model}, {label} tokens, SLO {slo}: `stacks recommend` picks {pick.candidate.label} at "
                f"${pick.usd_per_m_output:.3f}/M output tokens (predicted, {int(pick.stage.level)} clients per "
                f"replica, {pick.replicas} replica(s) per node; searched {result.candidates} setups)")
        flag = ""
        if not pick.band.validated:
            # a pick on a chip nobody has measured a server on is a lead, not an answer: compare on measured ground
            text += f", {pick.band}"
            grounded = search(replace(q, validated_only=True))
            if grounded.picks:
                pick, flag = grounded.picks[0], " --validated-only"
                text += (f"; on measured ground (`--validated-only`) it picks {pick.candidate.label} at "
                         f"${pick.usd_per_m_output:.3f}/M")
        if measured is None or measured.stack not in files:
            lines.append(text + "; the demo measured no stack of this model that meets the SLO.")
            continue
        mine, theirs = _setup(pick.candidate.spec), _setup(load_stack_file(files[measured.stack], measured.stack))
        diff = [f"{k} {mine[k]} vs {theirs[k]}" for k in mine if mine[k] != theirs[k]]
        ratio = pick.usd_per_m_output / measured.usd_per_m
        text += (f"; the demo's cheapest measured stack is {measured.stack} at ${measured.usd_per_m:.3f}/M "
                 f"({measured.load}). ")
        if not diff:
            text += f"Same setup: the pick is {measured.stack}, at {ratio:.2f}x the measured price."
        else:
            text += (f"The pick is predicted at {ratio:.2f}x the measured price and differs in: {'; '.join(diff)} "
                     f"(confirm it: `python -m stacks recommend --model {model} --workload {lengths[0]}:{lengths[1]} "
                     f"--slo {slo.text}{flag} --top 1 --write <dir>`, then load-test the file).")
        lines.append(text)
    return lines
