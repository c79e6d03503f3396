"""Why a pick was chosen, in the guide's terms: which of its rules the numbers bear out.

The guide's rules (``reference/`` and the README): 1 quantize; 2 size memory as params x bytes with
80 % for weights and 20 % for the KV cache; 3 choose the GPU by memory, bandwidth and FLOPS; 4 use
A3 (H100) for input-heavy work; 5 batch up to the latency limit. Each line below quotes the
figures from the pick's own sizing and prediction, so the reader can check it by hand.
"""

from __future__ import annotations

from loadtest.slo import SloTerm
from stacks.precision import PRECISIONS
from stacks.sizing import GB, WEIGHT_SHARE_LIMIT

from .evaluate import fmt_s
from .search import Pick, Result, ranking_value


def binding_term(pick: Pick, slo: tuple[SloTerm, ...]) -> SloTerm:
    """The SLO term with the least headroom: the one that sets the size of the setup."""
    return min(slo, key=lambda t: (pick.headroom(t), t.key))


def why(pick: Pick, result: Result) -> list[str]:
    q = result.query
    s = pick.candidate.spec
    z = s.sizing
    chip = s.machine.chip
    lines: list[str] = []
    bf16_gb = s.model.params * PRECISIONS["bf16"].bytes_per_param / GB
    if s.precision.name != "bf16":
        lines.append(f"quantize (rule 1): {s.precision.name} holds the weights in {z.weight_gb:.1f} GB instead of "
                     f"{bf16_gb:.1f} GB at bf16" + (f"; the KV cache in {s.kv_cache_dtype} stores twice the tokens "
                                                    "per byte" if s.kv_cache_dtype == "fp8" else ""))
    else:
        lines.append(f"bf16 (rule 1): {z.weight_gb:.1f} GB of weights fit unquantized")
    group = f"{s.tensor_parallel} x {chip.name}" if s.tensor_parallel > 1 else f"one {chip.name}"
    limit = (" (above the guide's 80 %, as --weights-share-max allows)" if z.weight_share > WEIGHT_SHARE_LIMIT
             else " (≤ 80 %)")
    lines.append(f"memory (rule 2): {group} ({z.group_memory_gb:g} GB): weights {z.weight_share:.0%}{limit}, "
                 f"KV cache {z.kv_gib:.1f} GiB = {z.kv_tokens:,} tokens ({z.kv_share:.0%} of usable memory)")
    others = _best_other_chip(pick, result)
    tflops = chip.peak_tflops(s.precision.compute_dtype)
    gpu_line = (f"accelerator (rule 3): {chip.name}, {chip.memory_gb:g} GB at {chip.bandwidth_gbps:,.0f} GB/s, "
                f"{tflops:,.0f} dense TFLOPS ({s.precision.compute_dtype})")
    if others:
        other, ratio = others
        gpu_line += f"; the best {other.candidate.spec.machine.chip.name} setup costs {ratio:.2f}x as much here"
    lines.append(gpu_line)
    if q.input_heavy:
        if chip.key.startswith("nvidia-h1"):
            verdict_a3 = "the guide's A3 advice holds here"
        elif any(p.candidate.spec.accelerator.startswith("nvidia-h1") and ranking_value(q, p) < ranking_value(q, pick)
                 for p in result.evaluated_picks):
            verdict_a3 = "an H100 setup ranks above this one"
        else:
            verdict_a3 = "no H100 setup is cheaper at this SLO, so the guide's A3 advice does not decide here"
        lines.append(f"input-heavy (rule 4): {q.mean_input:.0f} input tokens per {q.mean_output:.0f} output make the "
                     f"work prefill-bound, where FLOPS count; {verdict_a3}")
    term = binding_term(pick, q.slo)
    value = pick.stage.values.get(term.key)
    if q.rate is None and q.concurrency is None:
        lines.append(f"batch (rule 5): {int(pick.stage.level)} clients per replica, the most that meet the SLO: "
                     f"{term.key} {fmt_s(value)} of {fmt_s(term.limit)} (the server's max batch is set to it)")
    else:
        load = (f"{pick.stage.level:.2f} req/s" if pick.stage.mode == "rate" else f"{int(pick.stage.level)} clients")
        lines.append(f"scale (rule 5): {pick.nodes} node(s) x {pick.candidate.replicas_per_node} replica(s) = "
                     f"{pick.replicas}, {load} each; {term.key} {fmt_s(value)} of {fmt_s(term.limit)} "
                     f"is the binding term")
    return lines


def _best_other_chip(pick: Pick, result: Result) -> tuple[Pick, float] | None:
    """The best evaluated setup on another accelerator, and its cost relative to this pick."""
    q = result.query
    mine = pick.candidate.spec.accelerator
    others = [p for p in result.evaluated_picks if p.candidate.spec.accelerator != mine]
    if not others:
        return None
    best = min(others, key=lambda p: (ranking_value(q, p), p.candidate.sort_key))
    return best, ranking_value(q, best) / ranking_value(q, pick)


def verdict(pick: Pick, slo: tuple[SloTerm, ...]) -> str:
    if not pick.band.validated:
        return f"meets the SLO in the model; {pick.band}"
    if pick.within_band(slo):
        return (f"meets the SLO only within the model's error band ({pick.band}): "
                "confirm with a load test before relying on it")
    return f"meets the SLO with more headroom than the model's typical error ({pick.band})"
