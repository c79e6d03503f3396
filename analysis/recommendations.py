"""The guide's five recommendations, each evaluated on the data as a verdict with its evidence.

1. Quantize to cut memory and cost (evaluate accuracy below 8 bits).
2. Pick the GPU by the model's memory need (weights ≤ 80 %, KV cache ≥ 20 %); shard with TP if needed.
3. G2 gives better throughput per $ for ≤ 7B models (latency permitting); A3 for larger models.
4. A3 for input-heavy (prefill-bound) work: better throughput per $.
5. Batch to raise throughput; the best batch size is the largest that meets the latency requirement.

Verdicts: ``supported`` (the data agrees), ``partly supported``, ``not supported`` (the data
disagrees: the evidence says by how much) and ``not evaluated`` (the runs lack the comparison, and
the verdict says which run would supply it). Each verdict is computed within one source: modelled
results never vote on measured ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from stacks.precision import PRECISIONS

from .select import common_top, first, guide_pairs, ratio, sweep
from .slo import Slo

SMALL_MODEL_PARAMS = 8.5e9  # "7b parameters or less" (Llama-3-8B's 8.0 B counts as small)
DECODE_WORKLOADS = ("balanced", "output-heavy")
SUPPORTED, PARTLY, NOT_SUPPORTED, NOT_EVALUATED = "supported", "partly supported", "not supported", "not evaluated"

TITLES = {
    1: "Quantize to reduce memory use and cost (evaluate accuracy below 8 bits)",
    2: "Choose the GPU by the model's memory need: weights ≤ 80 % of memory, ≥ 20 % left for the KV cache; "
       "shard with tensor parallelism when one GPU is not enough",
    3: "G2 (L4) gives better throughput per $ for models of ≤ 7 B parameters; A3 (H100) for larger models",
    4: "Use A3 for input-heavy work (long prompts, short answers): better throughput per $",
    5: "Batch to raise throughput; the best batch size is the largest that meets the latency requirement "
       "(A3 for low latency, G2 when some latency is acceptable)",
}


@dataclass
class Verdict:
    number: int
    source: str
    verdict: str
    summary: str
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def title(self) -> str:
        return TITLES[self.number]


def evaluate(df: pd.DataFrame, slo: Slo) -> list[Verdict]:
    """All five verdicts for each source present in ``df`` (a stage table with cost columns)."""
    out: list[Verdict] = []
    for source in sorted(set(df["source"])):
        d = df.loc[df["source"] == source]
        out += [quantization(d, source, slo), memory_fit(d, source), gpu_choice(d, source, slo),
                input_heavy(d, source), batching(d, source, slo)]
    return out


def _decode_workload(d: pd.DataFrame, *stacks: str) -> str | None:
    for w in DECODE_WORKLOADS:
        if all(not sweep(d, s, w).empty for s in stacks):
            return w
    return None


def _best_under_slo(rows: pd.DataFrame, slo: Slo) -> pd.Series | None:
    ok = rows.loc[slo.stage_meets(rows)] if not rows.empty else rows
    return ok.iloc[-1] if not ok.empty else None


def quantization(d: pd.DataFrame, source: str, slo: Slo) -> Verdict:
    """Pairs of stacks with the same model and machine type at different weight precisions."""
    rows, agree = [], []
    for (_model, _machine), g in d.groupby(["model", "machine"], dropna=True):
        stacks = g.drop_duplicates("stack").copy()
        if stacks["precision"].nunique() < 2:
            continue
        stacks = stacks.sort_values("weight_gb", ascending=False)
        hi = stacks.iloc[0]
        for _, lo in stacks.iloc[1:].iterrows():
            w = _decode_workload(d, hi["stack"], lo["stack"])
            top = common_top(sweep(d, hi["stack"], w), sweep(d, lo["stack"], w)) if w else None
            if top is None or w is None:
                continue
            a, b = top
            best_a = _best_under_slo(sweep(d, hi["stack"], w), slo)
            best_b = _best_under_slo(sweep(d, lo["stack"], w), slo)
            gain = ratio(b["output_tok_s"], a["output_tok_s"])
            agree.append(lo["weight_gb"] < hi["weight_gb"] and gain >= 0.98)
            rows.append({
                "model": hi["model"], "machine": hi["machine"], "from": f"{hi['stack']} ({hi['precision']})",
                "to": f"{lo['stack']} ({lo['precision']})",
                "weights GB": f"{hi['weight_gb']:.1f} → {lo['weight_gb']:.1f}",
                "KV cache GiB": f"{hi['kv_gib']:.1f} → {lo['kv_gib']:.1f}", "batch": f"{a['level']:g}",
                "output tok/s": f"{a['output_tok_s']:.0f} → {b['output_tok_s']:.0f} ({gain:.2f}×)",
                "$/M output tok": f"{a['usd_per_m_output']:.3f} → {b['usd_per_m_output']:.3f}",
                "best batch under SLO": f"{_lvl(best_a)} → {_lvl(best_b)}",
            })
    low_bits = sorted(set(d.loc[d["precision"].map(lambda p: p in PRECISIONS and PRECISIONS[p].bits < 8), "stack"]))
    note = (f" Below 8 bits ({', '.join(low_bits)}): accuracy is not measured here; evaluate it first."
            if low_bits else " Accuracy is not measured by a load test; 8-bit formats usually lose little.")
    if not rows:
        return Verdict(1, source, NOT_EVALUATED, "No pair of stacks serves the same model on the same machine type at "
                       "two precisions (add e.g. a bf16 and an fp8 stack and run the same batch sweep on both)." + note)
    evidence = pd.DataFrame(rows)
    n_ok = sum(agree)
    verdict = SUPPORTED if n_ok == len(agree) else (PARTLY if n_ok else NOT_SUPPORTED)
    summary = "; ".join(f"{r['from']} → {r['to']}: weights {r['weights GB']} GB, KV cache {r['KV cache GiB']} GiB, "
                        f"output tok/s at batch {r['batch']} {r['output tok/s']}, $/M output tokens "
                        f"{r['$/M output tok']}" for r in rows) + "." + note
    return Verdict(1, source, verdict, summary, evidence)


def memory_fit(d: pd.DataFrame, source: str) -> Verdict:
    """The sizing rule per stack, against what the server did when a batch outgrew the KV cache.

    A batch of N sequences of (input + output) tokens needs N × (input + output) KV slots at its end;
    when that exceeds the stack's KV capacity the rule predicts a capped running batch or preemptions.
    """
    rows, served, tight_seen, tight_expected, unexpected = [], [], 0, 0, []
    for stack, g in d.groupby("stack", sort=True):
        r = g.iloc[0]
        batch = g.loc[(g["mode"] == "batch") & g["level"].notna()].copy()
        dec = batch.loc[batch["workload"].isin(DECODE_WORKLOADS)]
        batch = (dec if not dec.empty else batch).sort_values("level")
        top = batch.iloc[-1] if not batch.empty else None
        kv_tokens = r["kv_tokens"] if pd.notna(r["kv_tokens"]) else None
        per_seq = (top["mean_input_tokens"] + top["mean_output_tokens"]) if top is not None else float("nan")
        holds = kv_tokens / per_seq if kv_tokens and per_seq > 0 else float("nan")
        outgrew = top is not None and pd.notna(holds) and top["level"] > holds
        run_max = top["server_running_max"] if top is not None else float("nan")
        preempted = top is not None and pd.notna(top["server_preemptions"]) and top["server_preemptions"] > 0
        capped = top is not None and pd.notna(run_max) and run_max < 0.9 * top["level"]
        if g["completed"].sum() == 0 or top is None or pd.isna(run_max):
            pass  # nothing the server did to compare with the rule
        elif outgrew:
            tight_expected += 1
            tight_seen += bool(capped or preempted)
        elif capped or preempted:
            unexpected.append(stack)
        served.append(r["fits"] is not False)
        rows.append({
            "stack": stack, "weights GB": _f(r["weight_gb"], ".1f"),
            "weight share": _f(r["weight_share"], ".0%"),
            "≤ 80 %": {True: "yes", False: "no"}.get(r["fits"], "–"),
            "KV GiB": _f(r["kv_gib"], ".1f"),
            "KV share": _f(r["kv_share"], ".0%") + (" (< 20 %)" if (r["kv_share"] or 1) < 0.2 else ""),
            "KV tokens": _f(kv_tokens, ",.0f"),
            "top batch (tokens/seq)": "–" if top is None else f"{top['level']:g} ({_f(per_seq, '.0f')})",
            "seqs the KV holds": _f(holds, ".0f"), "server running max": _f(run_max, ".0f"),
            "server KV max": _f(top["server_kv_max"] if top is not None else None, ".0%"),
            "preemptions": _f(top["server_preemptions"] if top is not None else None, ".0f"),
        })
    evidence = pd.DataFrame(rows)
    if not rows:
        return Verdict(2, source, NOT_EVALUATED, "No runs.")
    summary = (f"{sum(served)}/{len(served)} stacks fit by the rule (weights ≤ 80 % of memory). "
               f"{tight_expected} stack(s) ran a batch whose KV demand exceeds their KV cache; "
               f"{tight_seen} of them show the cap the rule warns of (running batch held below the batch, "
               f"or preemptions)")
    summary += (f"; capped although the KV cache should hold the batch: {', '.join(unexpected)}." if unexpected
                else ".")
    if not all(served):
        verdict = NOT_SUPPORTED
    elif tight_seen < tight_expected or unexpected:
        verdict = PARTLY
    else:
        verdict = SUPPORTED
    return Verdict(2, source, verdict, summary, evidence)


def gpu_choice(d: pd.DataFrame, source: str, slo: Slo) -> Verdict:
    """G2 vs A3 output tokens per $ at the largest common batch, per model."""
    rows, agree = [], []
    for p in guide_pairs(d):
        if p.source != source:
            continue
        w = _decode_workload(d, p.a, p.b)
        sa, sb = (sweep(d, p.a, w), sweep(d, p.b, w)) if w else (pd.DataFrame(), pd.DataFrame())
        top = common_top(sa, sb) if w else None
        if top is None:
            continue
        a, b = top
        r = ratio(b["output_tok_per_usd"], a["output_tok_per_usd"])
        params = first(d, p.a, "model_params") or 0
        small = params <= SMALL_MODEL_PARAMS
        expected = "G2" if small else "A3"
        winner = "A3" if r > 1 else "G2"
        agree.append(winner == expected)
        ba, bb = _best_under_slo(sa, slo), _best_under_slo(sb, slo)
        rows.append({
            "model": p.model, "precision": p.precision, "G2 stack": p.a, "A3 stack": p.b, "batch": f"{a['level']:g}",
            "G2 tok/s": f"{a['output_tok_s']:.0f}", "A3 tok/s": f"{b['output_tok_s']:.0f}",
            "$/h G2 / A3": f"{a['usd_per_hour']:.2f} / {b['usd_per_hour']:.2f}",
            "A3 per $ (G2 = 1)": f"{r:.2f}", "expected winner": expected, "winner": winner,
            "best under SLO (G2 / A3)": f"batch {_lvl(ba)} ${_usd(ba)}/M / batch {_lvl(bb)} ${_usd(bb)}/M",
        })
    if not rows:
        return Verdict(3, source, NOT_EVALUATED, "No model is served by both a G2 and an A3 stack at the "
                       "same precision with a common batch level (run the batch sweep on a G2/A3 pair).")
    n = sum(agree)
    verdict = SUPPORTED if n == len(agree) else (PARTLY if n else NOT_SUPPORTED)
    summary = "; ".join(f"{r['model']} at batch {r['batch']}: A3 delivers {r['A3 per $ (G2 = 1)']}× G2's "
                        f"output tokens per $ (winner {r['winner']}, guide expects {r['expected winner']})"
                        for r in rows) + "."
    return Verdict(3, source, verdict, summary, pd.DataFrame(rows))


def input_heavy(d: pd.DataFrame, source: str) -> Verdict:
    """A3 vs G2 prefill (input) tokens per $ on the input-heavy workload, against the decode workload."""
    rows, agree = [], []
    for p in guide_pairs(d):
        if p.source != source:
            continue
        top = common_top(sweep(d, p.a, "input-heavy"), sweep(d, p.b, "input-heavy"))
        if top is None:
            continue
        a, b = top
        r_in = ratio(b["input_tok_per_usd"], a["input_tok_per_usd"])
        w = _decode_workload(d, p.a, p.b)
        dec = common_top(sweep(d, p.a, w), sweep(d, p.b, w)) if w else None
        r_dec = ratio(dec[1]["output_tok_per_usd"], dec[0]["output_tok_per_usd"]) if dec else float("nan")
        agree.append(r_in > 1)
        rows.append({
            "model": p.model, "precision": p.precision, "pair": f"{p.a} / {p.b}", "workload": a["workload_label"],
            "batch": f"{a['level']:g}", "prefill tok/s G2": f"{a['input_tok_s']:.0f}",
            "prefill tok/s A3": f"{b['input_tok_s']:.0f}",
            "A3 / G2 prefill": f"{ratio(b['input_tok_s'], a['input_tok_s']):.1f}×",
            "A3 / G2 cost": f"{ratio(b['usd_per_hour'], a['usd_per_hour']):.1f}×",
            "A3 prefill per $ (G2 = 1)": f"{r_in:.2f}", "A3 decode per $ (G2 = 1)": f"{r_dec:.2f}",
        })
    if not rows:
        return Verdict(4, source, NOT_EVALUATED, "No G2/A3 pair ran an input-heavy workload (inputs ≥ 4 × "
                       "outputs) at a common level (run e.g. --input-len 2048 --output-len 16 on both).")
    n = sum(agree)
    verdict = SUPPORTED if n == len(agree) else (PARTLY if n else NOT_SUPPORTED)
    summary = "; ".join(f"{r['model']}: A3 prefill {r['A3 / G2 prefill']} G2 at {r['A3 / G2 cost']} the cost → "
                        f"{r['A3 prefill per $ (G2 = 1)']}× per $ (decode: {r['A3 decode per $ (G2 = 1)']}×)"
                        for r in rows) + "."
    return Verdict(4, source, verdict, summary, pd.DataFrame(rows))


def batching(d: pd.DataFrame, source: str, slo: Slo) -> Verdict:
    """Throughput and latency from the smallest to the largest static batch; best batch under the SLO."""
    rows, gains, lat_up = [], [], {}
    for stack in sorted(set(d["stack"])):
        w = _decode_workload(d, stack)
        s = sweep(d, stack, w) if w else pd.DataFrame()
        if len(s) < 2:
            continue
        lo, hi = s.iloc[0], s.iloc[-1]
        gain = ratio(hi["output_tok_s"], lo["output_tok_s"])
        lat = (hi["e2e_mean"] - lo["e2e_mean"]) * 1e3
        best = _best_under_slo(s, slo)
        plateau = _plateau(s)
        gains.append(gain)
        lat_up[stack] = (first(d, stack, "machine_family"), first(d, stack, "model"), lat)
        rows.append({
            "stack": stack, "batches": f"{lo['level']:g} → {hi['level']:g}", "output tok/s":
            f"{lo['output_tok_s']:.0f} → {hi['output_tok_s']:.0f}", "throughput gain": f"{gain:.1f}×",
            "mean e2e latency": f"{lo['e2e_mean'] * 1e3:.0f} → {hi['e2e_mean'] * 1e3:.0f} ms (+{lat:.0f} ms)",
            "best batch under SLO": _lvl(best), "$/M at best": _usd(best),
            "throughput stops improving at": plateau,
        })
    if not rows:
        return Verdict(5, source, NOT_EVALUATED, "No stack ran a static batch sweep with two or more levels "
                       "(run --mode batch --levels 16,32,64,128,256).")
    rises = all(g > 1.0 for g in gains)
    comparisons = [(f"{p.model} {p.precision}", lat_up[p.a][2], lat_up[p.b][2]) for p in guide_pairs(d)
                   if p.source == source and p.a in lat_up and p.b in lat_up]
    a3_lower = all(a3 < g2 for _, g2, a3 in comparisons)
    verdict = SUPPORTED if rises and a3_lower else (PARTLY if rises or a3_lower else NOT_SUPPORTED)
    parts = [f"throughput rises with batch on {sum(g > 1 for g in gains)}/{len(gains)} stacks "
             f"(gains {min(gains):.1f}× to {max(gains):.1f}×)"]
    parts += [f"{m}: latency +{g2:.0f} ms on G2 vs +{a3:.0f} ms on A3" for m, g2, a3 in comparisons]
    parts.append(f"best batch under the SLO ({slo}): "
                 + ", ".join(f"{r['stack']} {r['best batch under SLO']}" for r in rows))
    return Verdict(5, source, verdict, "; ".join(parts) + ".", pd.DataFrame(rows))


def _plateau(s: pd.DataFrame, min_gain: float = 1.10) -> str:
    """The first level after which the next level adds less than 10 % throughput."""
    tps = s["output_tok_s"].tolist()
    for k in range(len(tps) - 1):
        if tps[k + 1] < min_gain * tps[k]:
            return f"{s.iloc[k]['level']:g}"
    return "not reached"


def _lvl(row: pd.Series | None) -> str:
    return f"{row['level']:g}" if row is not None else "none"


def _usd(row: pd.Series | None) -> str:
    return f"{row['usd_per_m_output']:.3f}" if row is not None and pd.notna(row["usd_per_m_output"]) else "–"


def _f(v, fmt: str) -> str:
    return "–" if v is None or pd.isna(v) else format(v, fmt)
