"""``compare``'s outputs: report.md (tables, verdicts, findings, plots, provenance), CSVs and a JSON
of the verdicts for scripts. One function, ``write_report``, builds everything from one ``Analysis``.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loadtest.model_check import TOLERANCE, TTFT_FLOOR_S

from . import __version__
from .adapters import adapter_table
from .answer import Answer, answer_table, answers, console_lines
from .compare import comparison_table, slo_verdicts
from .cost import add_cost
from .findings import Finding
from .findings import evaluate as evaluate_findings
from .frame import stage_frame
from .html import write_html
from .loader import Run
from .plots import all_plots
from .recommendations import Verdict
from .recommendations import evaluate as evaluate_recommendations
from .slo import Slo

SHORT_TITLES = {1: "quantize", 2: "weights ≤ 80 % of memory", 3: "G2 for ≤ 7B, A3 for larger models",
                4: "A3 for input-heavy work", 5: "batch up to the latency limit"}


PRICE_TEXT = {"all-in": "each stack's all-in $/h: its accelerator pool plus a GKE cluster's management fee and CPU "
                        "system pool (`spec.cost.usdPerHourAllIn`; every stack is charged a whole cluster, as it "
                        "would run alone)",
              "pool": "each stack's $/h for its whole accelerator pool only (`spec.cost.usdPerHour`, the guide's "
                      "basis)",
              "replicas": "the $/h of the chips the server's replicas occupy (`spec.cost.usdPerReplicaHour` × "
                          "replicas)"}


@dataclass
class Analysis:
    """Everything ``compare`` computes, before rendering."""

    runs: list[Run]
    slo: Slo
    stages: pd.DataFrame
    table: pd.DataFrame
    series: pd.DataFrame
    cheapest: pd.DataFrame
    recommendations: list[Verdict]
    findings: list[Finding]
    answers: list[Answer] = field(default_factory=list)
    # the guide's findings on the other price basis (accelerators only when the report is all-in, and
    # the reverse): the guide's per-$ ratios are accelerator prices, so both readings are shown
    findings_other: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    baseline: str | None = None
    price: str = "all-in"

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.stages["source"]))


def analyse(runs: list[Run], slo: Slo, baseline: str | None = None, price: str = "all-in") -> Analysis:
    """Runs → stage table → cost → table, SLO verdicts, recommendations and findings."""
    stages, warnings = stage_frame(runs, slo)
    if stages.empty:
        from .errors import AnalysisError

        raise AnalysisError("RESULTS", "no run holds a completed request", "run a load test first")
    other = "pool" if price != "pool" else "all-in"
    other_stages = add_cost(stages, baseline, other)
    stages = add_cost(stages, baseline, price)
    deciding = stages.loc[stages["decides"]]  # frame.py: no host- or client-bound measurement decides
    series, cheapest = slo_verdicts(deciding, slo)
    return Analysis(runs=runs, slo=slo, stages=stages, table=comparison_table(stages, slo), series=series,
                    cheapest=cheapest, recommendations=evaluate_recommendations(deciding, slo),
                    findings=evaluate_findings(deciding), answers=answers(stages, runs, slo),
                    findings_other=evaluate_findings(other_stages.loc[other_stages["decides"]]), warnings=warnings,
                    baseline=baseline, price=price)


# -- rendering -------------------------------------------------------------------------------------
def fmt(v: Any) -> str:
    """A table cell: numbers with sensible precision, missing values as an en dash."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        a = abs(v)
        if v.is_integer() and a < 1e6:
            return f"{v:,.0f}"
        if a == 0:
            return "0"
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 10:
            return f"{v:.1f}"
        if a >= 0.1:
            return f"{v:.3f}"
        return f"{v:.4f}"
    return str(v).replace("|", "\\|")


def md_table(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "_(none)_\n"
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v.item() if hasattr(v, "item") else v) for v in row) + " |"
            for row in df.itertuples(index=False, name=None)]
    return "\n".join([head, sep, *body]) + "\n"


def headline(a: Analysis) -> list[str]:
    """The few lines a reader (and the demo's last output) needs: cheapest per SLO, verdicts, findings."""
    lines = []
    for ans in a.answers:
        tag = " *(modelled)*" if ans.source == "modelled" else ""
        w = ans.winner
        if w is None:
            lines.append(f"{ans.model}, {ans.workload_label} tokens: no stack meets the SLO{tag}")
            continue
        lines.append(f"{ans.model}, {ans.workload_label} tokens: **{w.stack}** at "
                     f"{'≤ ' if w.lower_bound else ''}${w.usd_per_m:.3f} per million {ans.cost_basis} tokens "
                     f"({w.load}, n={w.n}): {ans.verdict}{tag}")
    return lines + verdict_lines(a)


def verdict_lines(a: Analysis) -> list[str]:
    """The guide's recommendations and findings, a line each (the headline's second half)."""
    lines = []
    for v in a.recommendations:
        tag = " *(modelled)*" if v.source == "modelled" else ""
        lines.append(f"Recommendation {v.number} ({SHORT_TITLES[v.number]}): **{v.verdict}**{tag}")
    counts = {k: sum(f.verdict == k for f in a.findings) for k in ("reproduced", "direction only", "not reproduced")}
    line = (f"Guide's findings: {counts['reproduced']} reproduced, {counts['direction only']} in direction only, "
            f"{counts['not reproduced']} not reproduced, of {len(a.findings)}")
    missed = [f"{f.claim} (guide: {f.guide}; here: {f.measured})" for f in a.findings if f.verdict == "not reproduced"]
    lines.append(line + (". Not reproduced: " + "; ".join(missed) if missed else ""))
    return lines


def write_report(a: Analysis, out: Path, *, plots: bool = True) -> Path:
    """Write report.md, report.html, answer.csv, comparison.csv, stages.csv, slo.csv, verdicts.json (+ PNGs)
    under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    a.table.to_csv(out / "comparison.csv", index=False)
    a.stages.to_csv(out / "stages.csv", index=False)
    a.series.to_csv(out / "slo.csv", index=False)
    figures = all_plots(a.runs, a.stages, out, a.slo, a.answers) if plots else {}
    answer_table(a.answers).to_csv(out / "answer.csv", index=False)
    adapters = adapter_table(a.runs)
    if not adapters.empty:
        adapters.to_csv(out / "adapters.csv", index=False)
    (out / "verdicts.json").write_text(json.dumps(_verdicts_doc(a), indent=1, default=_json_default))
    path = out / "report.md"
    path.write_text(_markdown(a, figures, out))
    write_html(path)
    return path


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def _verdicts_doc(a: Analysis) -> dict[str, Any]:
    return {
        "slo": str(a.slo), "sources": a.sources,
        "answer": answer_table(a.answers).to_dict(orient="records"),
        "cheapest": a.cheapest.to_dict(orient="records"),
        "recommendations": [{"number": v.number, "title": v.title, "source": v.source, "verdict": v.verdict,
                             "summary": v.summary, "evidence": v.evidence.to_dict(orient="records")}
                            for v in a.recommendations],
        "findings": [asdict(f) for f in a.findings],
        "headline": headline(a),
    }


def model_check_table(stages: pd.DataFrame) -> pd.DataFrame:
    """Per stage: measured and predicted throughput and TTFT p50, the model's error, host-bound."""
    d = stages.loc[stages["predicted_output_tok_s"].notna()]
    return pd.DataFrame({
        "source": d["source"], "stack": d["stack"], "in→out": d["workload_label"], "mode": d["mode"],
        "level": d["level"], "measured tok/s": d["measured_output_tok_s"],
        "predicted tok/s": d["predicted_output_tok_s"], "error tok/s": d["model_error_tok_s"].map(_pct),
        "measured TTFT p50 s": d["measured_ttft_p50"], "predicted TTFT p50 s": d["predicted_ttft_p50"],
        "error TTFT p50": d["model_error_ttft_p50"].map(_pct),
        "decided on": d["basis"], "host-bound": d["host_bound"].map({True: "**yes**", False: "no"}).fillna("–"),
    })


def _pct(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:+.0%}"


def _model_check_section(a: Analysis) -> list[str]:
    """Predict → measure → the model's error, per stage (``loadtest/model_check.py``)."""
    table = model_check_table(a.stages)
    if table.empty:
        return []
    s = ["## Model check: measured against predicted\n"]
    s.append(f"Each stage was replayed on the stack's performance model: the same requests, lengths and schedule, "
             f"in simulated time. Error = (measured − predicted) / predicted. On a real endpoint it is the model's "
             f"error; on a simulated endpoint the two should agree, and a stage beyond the tolerance (throughput "
             f"±{TOLERANCE:.0%}, TTFT p50 ±{TOLERANCE:.0%} or {TTFT_FLOOR_S * 1e3:.0f} ms) or whose load generator "
             "fell behind is **host-bound**: the machine could not serve the simulation in real time. A host-bound "
             "measurement decides nothing; a simulated stage is decided on its prediction.\n")
    bound = int(a.stages["host_bound"].fillna(False).astype(bool).sum())
    errs = a.stages.loc[a.stages["source"] == "measured", "model_error_tok_s"].dropna()
    if bound:
        s.append(f"**{bound} stage(s) host-bound** (their served numbers are shown, not used).\n")
    if len(errs):
        s.append(f"On the measured (real) runs the model's throughput error is {errs.abs().median():.0%} median "
                 f"|error| over {len(errs)} stage(s), at most {errs.abs().max():.0%}.\n")
    s.append(md_table(table))
    return s


def _adapter_section(a: Analysis) -> list[str]:
    """Per LoRA adapter, for the runs that mixed adapters (``--lora-mix``); nothing otherwise."""
    table = adapter_table(a.runs)
    if table.empty:
        return []
    return ["## Per LoRA adapter\n",
            "Stages that split their requests across LoRA adapters (`--lora-mix`; `base` is the base model): each "
            "adapter's share of the requests, its latency and its output tokens per second over the stage. Also in "
            "`adapters.csv`.\n", md_table(table)]


def _answer_section(a: Analysis) -> list[str]:
    """The first screen: per model and workload, the cheapest stack meeting the SLO (``answer.py``)."""
    s = [f"## The answer: cheapest stack meeting the SLO ({a.slo})\n"]
    s.append("Per model and workload, each stack's cheapest load level that meets every SLO term, in any mode "
             "(static batch or request rate), ranked by $ per million tokens (output tokens; prompt tokens for "
             "input-heavy work). The 95 % interval is a bootstrap over the stage's `n` requests (its normal "
             "approximation above 5,000; across the runs when a level was run several times); a winner whose "
             "interval overlaps the runner-up's is a **tie**. "
             "`≥` marks the highest level tested: the stack may do better (its $/M is an upper bound), and the "
             "next runs below say how to find out. `margin`: how much more the runner-up's tokens cost. The "
             "closest SLO term is shown with its own interval (*marginal* when it crosses the limit).\n")
    table = answer_table(a.answers)
    if table.empty:
        return [*s, "_No stage has a load level to compare (run a batch or rate sweep)._\n"]
    shown = table.drop(columns=["next run"] + (["source"] if table["source"].nunique() == 1 else []))
    s.append(md_table(shown))
    nexts = [f"- {row['model']} {row['in→out']}: {row['next run']}" for _, row in table.iterrows() if row["next run"]]
    if nexts:
        s.append("Next runs for the `≥` answers:\n")
        s += [*nexts, ""]
    never = [f"- {ans.model} {ans.workload_label}: **{stack}** never meets it ({why})"
             for ans in a.answers for stack, why in ans.never.items()]
    if never:
        s.append("Stacks that meet the SLO at no tested level:\n")
        s += [*never, ""]
    return s


def print_summary(a: Analysis, width: int = 100) -> None:
    """What ``compare`` and ``demo`` print: the answer, then the guide's verdicts, wrapped to ``width``
    (a pipe gets the same short lines as a terminal; the wide table is in comparison.csv)."""
    print(f"Cheapest stack meeting the SLO ({a.slo}):")
    for line in console_lines(a.answers, width):
        print(line)
    print("The guide's recommendations and findings:")
    for line in verdict_lines(a):
        print(textwrap.fill(line.replace("**", "").replace("*", ""), width=width, initial_indent="  ",
                            subsequent_indent="    "))


def _markdown(a: Analysis, figures: dict[str, Path | None], out: Path) -> str:
    modelled = "modelled" in a.sources
    measured = "measured" in a.sources
    s: list[str] = ["# Stack comparison\n"]
    basis = f"stack {a.baseline}" if a.baseline else "per model: its first G2 stack"
    s.append(f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by gke-llm-bench analysis {__version__} from "
             f"{len(a.runs)} run(s) of {a.stages['stack'].nunique()} stack(s). SLO: **{a.slo}**. "
             f"Per-dollar figures use {PRICE_TEXT[a.price]}; normalized per-dollar "
             f"throughput has the baseline = 1 ({basis}).\n")
    if modelled and not measured:
        s.append("> **Every number in this report is *modelled*:** the runs used the simulated endpoint "
                 "(`--target sim`), whose timing comes from a calibrated performance model, not from GPUs. "
                 "The figures that decide are the model's replay of each stage (simulated time: the same on a "
                 "busy or an idle machine); the served measurement checks it (see *Model check*). "
                 "They show what the model predicts; measure on real hardware before buying it.\n")
    elif modelled:
        s.append("> This report holds both *modelled* (simulated endpoint) and *measured* runs. They are kept "
                 "apart: every table has a `source` column, and comparisons, baselines and verdicts are made "
                 "within one source only.\n")
    s += _answer_section(a)
    s.append("## Headline\n")
    s += [f"- {line}" for line in headline(a)]
    s.append("")
    s.append("## The guide's findings, reproduced?\n")
    other = "accelerators only" if a.price != "pool" else "all-in"
    s.append("A finding is *reproduced* when the direction holds and the magnitude is within 2× of the guide's "
             f"figure, *direction only* when only the direction holds. Verdicts use {a.price} prices (this "
             f"report's basis); the guide's per-$ figures price the accelerators alone, so each finding is also "
             f"read with {other} prices in the last column.\n")
    others = {(f.source, f.key, f.claim.split(":")[0]): f for f in a.findings_other}

    def reread(f: Finding) -> str:
        o = others.get((f.source, f.key, f.claim.split(":")[0]))
        if o is None:
            return "–"
        return "same" if (o.measured, o.verdict) == (f.measured, f.verdict) else f"{o.measured} → {o.verdict}"

    s.append(md_table(pd.DataFrame([{"source": f.source, "finding": f.claim, "guide": f.guide,
                                     "this data": f.measured, "verdict": f.verdict, f"with {other} prices": reread(f)}
                                    for f in a.findings])))
    s.append("## The guide's five recommendations, on this data\n")
    for v in a.recommendations:
        tag = " *(modelled)*" if v.source == "modelled" else ""
        s.append(f"### {v.number}. {v.title}{tag}\n")
        s.append(f"**Verdict: {v.verdict}.** {v.summary}\n")
        if not v.evidence.empty:
            s.append(md_table(v.evidence))
    s.append(f"## Best load level under the SLO ({a.slo})\n")
    s.append("For each stack's sweep: the highest level whose stage meets every SLO term, and what it costs; "
             "`why not higher` names the first level above it that fails and the term it breaks.\n")
    if not a.series.empty:
        cols = {"source": "source", "stack": "stack", "model": "model", "workload_label": "in→out", "mode": "mode",
                "best_level": "best level", "output_tok_s": "output tok/s", "input_tok_s": "input tok/s",
                "usd_per_m_tokens": "$/M tokens", "cost_basis": "tokens priced",
                "norm_per_usd": "tok/s per $ (norm.)", "why_not": "why not higher"}
        s.append(md_table(a.series[list(cols)].rename(columns=cols)))
    s.append("### Cheapest stack meeting the SLO\n")
    if not a.cheapest.empty:
        cols = {"source": "source", "model": "model", "workload_label": "in→out", "mode": "mode", "stack": "stack",
                "best_level": "level", "usd_per_m_tokens": "$/M tokens", "cost_basis": "tokens priced",
                "output_tok_s": "output tok/s", "input_tok_s": "input tok/s"}
        s.append(md_table(a.cheapest[list(cols)].rename(columns=cols)))
    else:
        s.append("_No stack meets the SLO at any tested level._\n")
    s.append("## Figures\n")
    captions = {
        "cost_latency": ("Cost against latency: $ per million tokens against each SLO term, one line per stack "
                         "through its load levels (labelled), the SLO limit dotted red, the Pareto front grey"),
        "per_dollar": "Output tokens per dollar at each stack's best load meeting the SLO (the answer table's points)",
        "latency_throughput": "Latency–throughput curves (TTFT p99 and TPOT p50 against output tokens/s)",
        "batch_effect": ("Batch-size effect: throughput and mean latency per output token (NTPOT, the guide's latency) "
                         "against static batch size"),
        "prefill": "Prefill throughput and prefill tokens per dollar on the input-heavy workload",
        "server_timeline": ("Server running batch, queue and KV-cache usage over time, per batch size (the server's "
                            "own metrics)"),
    }
    for key, caption in captions.items():
        p = figures.get(key)
        if p is not None:
            s.append(f"**{caption}**{' *(modelled)*' if modelled else ''}\n\n![{caption}]({os.path.relpath(p, out)})\n")
        elif figures:
            s.append(f"_{caption}: no data in these runs._\n")
    s += _model_check_section(a)
    s += _adapter_section(a)
    s.append("## Comparison table\n")
    s.append("All latencies in seconds. Levels are concurrent requests (batch) or requests/s (rate). "
             "`tok/s per $ (norm.)` is relative to the `baseline` stack at the same model, workload and level. "
             "Also in `comparison.csv`; every statistic of every stage is in `stages.csv`.\n")
    s.append(md_table(a.table))
    s.append("## Provenance\n")
    prov = pd.DataFrame([{
        "stack": r.stack, "run": r.run_id, "target": r.target, "source": r.source, "partial": r.partial,
        "requests": len(r.requests), "tool version": r.tool_version, "directory": str(r.path),
    } for r in a.runs])
    s.append(md_table(prov))
    checks = a.stages["xcheck"].value_counts().to_dict()
    s.append("Statistics are recomputed from `requests.jsonl` (metric definitions: docs/analysis.md) and "
             "cross-checked against each run's `summary.json`: "
             + ", ".join(f"{n} stage(s) {k}" for k, n in checks.items()) + ".\n")
    if a.warnings:
        s.append("Warnings:\n")
        s += [f"- {w}" for w in a.warnings]
        s.append("")
    return "\n".join(s) + "\n"
