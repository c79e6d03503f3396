"""The comparison table and the SLO verdicts: the answer to "which setup meets my latency target for
the least money?".

A *series* is one stack's sweep of one workload in one mode (one run, or one run per level): its
levels are the batch sizes or request rates. For each series the verdict is the highest level whose stage meets the
SLO, with its throughput and cost; for each (source, model, workload, mode) the cheapest stack is the
one with the lowest $ per million tokens at its best level — output tokens, or prompt tokens for an
input-heavy workload (what such a workload is bought for).
"""

from __future__ import annotations

import pandas as pd

from .slo import Slo

SERIES = ["source", "model", "workload", "workload_label", "mode", "stack"]

# (column in the stage frame, header in the table)
TABLE_COLUMNS: list[tuple[str, str]] = [
    ("source", "source"), ("stack", "stack"), ("accel", "accelerator × count"), ("machine", "machine"),
    ("precision", "precision"), ("server", "server"), ("usd_per_hour", "$/h"),
    ("usd_per_hour_pool", "$/h accelerators"), ("workload_label", "in→out"),
    ("mode", "mode"), ("level", "level"), ("achieved_rate", "achieved req/s"), ("output_tok_s", "output tok/s"),
    ("ttft_p50", "TTFT p50 s"), ("ttft_p99", "TTFT p99 s"), ("tpot_p50", "TPOT p50 s"), ("tpot_p99", "TPOT p99 s"),
    ("e2e_p50", "e2e p50 s"), ("e2e_p99", "e2e p99 s"), ("goodput", "goodput req/s"), ("errors", "errors"),
    ("usd_per_m_output", "$/M output tok"), ("norm_per_usd", "tok/s per $ (norm.)"), ("baseline", "baseline"),
    ("meets_slo", "meets SLO"),
]


def accel_label(df: pd.DataFrame) -> pd.Series:
    name = df["accelerator_name"].fillna(df["accelerator"]).fillna("?")
    chips = df["chips"].astype("Int64").astype(str).replace("<NA>", "?")
    return chips + "× " + name.astype(str)


def comparison_table(df: pd.DataFrame, slo: Slo | None) -> pd.DataFrame:
    """The table as a DataFrame with human headers (units in the header, values unformatted)."""
    t = df.copy()
    t["accel"] = accel_label(t)
    t["meets_slo"] = slo.stage_meets(t).map({True: "yes", False: "no"}) if slo is not None else ""
    t["achieved_rate"] = t["achieved_rate"].where(t["mode"] == "rate")  # a static batch is sent all at once
    t["mode"] = t["mode"].astype(str) + t["arrival"].map(lambda a: f" ({a})" if isinstance(a, str) else "")
    out = t[[c for c, _ in TABLE_COLUMNS]].rename(columns=dict(TABLE_COLUMNS))
    return out


def slo_verdicts(df: pd.DataFrame, slo: Slo) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per series: the highest level meeting ``slo``; per (source, model, workload, mode): the cheapest stack.

    Returns (series verdicts, cheapest per group). A series where no level meets the SLO gets
    ``best_level`` NaN and is never the cheapest.
    """
    d = df.assign(meets=slo.stage_meets(df))
    rows = []
    for key, g in d.groupby(SERIES, sort=False, dropna=False):
        ok = g.loc[g["meets"] & g["level"].notna()].sort_values("level")
        first = g.iloc[0]
        row = dict(zip(SERIES, key, strict=True))
        row.update({"levels_tested": len(g), "levels_meeting": len(ok), "usd_per_hour": first["usd_per_hour"],
                    "max_level_tested": g["level"].max()})
        if ok.empty:
            worst = g.sort_values("level").iloc[0]
            row.update({"best_level": float("nan"), "output_tok_s": float("nan"), "input_tok_s": float("nan"),
                        "usd_per_m_output": float("nan"), "usd_per_m_tokens": float("nan"),
                        "cost_basis": first["cost_basis"], "norm_per_usd": float("nan"),
                        "why_not": _violation(worst, slo)})
        else:
            best = ok.iloc[-1]
            row.update({"best_level": best["level"], "output_tok_s": best["output_tok_s"],
                        "input_tok_s": best["input_tok_s"], "usd_per_m_output": best["usd_per_m_output"],
                        "usd_per_m_tokens": best["usd_per_m_tokens"], "cost_basis": best["cost_basis"],
                        "norm_per_usd": best["norm_per_usd"],
                        "ttft_p99": best["ttft_p99"], "tpot_p50": best["tpot_p50"], "why_not": ""})
            above = g.loc[g["level"] > best["level"]].sort_values("level")
            if not above.empty:
                row["why_not"] = f"level {above.iloc[0]['level']:g}: {_violation(above.iloc[0], slo)}"
        rows.append(row)
    series = pd.DataFrame(rows)
    if series.empty:
        return series, series
    meets = series.dropna(subset=["best_level", "usd_per_m_tokens"])
    group = ["source", "model", "workload", "workload_label", "mode"]
    cheapest = (meets.sort_values("usd_per_m_tokens").groupby(group, sort=False, dropna=False).head(1)
                .sort_values(group).reset_index(drop=True))
    return series, cheapest


def _violation(row: pd.Series, slo: Slo) -> str:
    """Which SLO terms a stage breaks, with the measured value."""
    broken = []
    for term in slo.terms:
        v = row.get(term.key)
        if v is None or pd.isna(v):
            broken.append(f"{term.key} not measured")
        elif v > term.limit:
            shown = f"{v:.2%}" if term.metric == "error_rate" else f"{v * 1e3:.0f} ms"
            broken.append(f"{term.key} {shown} > {term}")
    if row.get("completed", 1) == 0:
        broken.append("no completed request")
    return "; ".join(broken) or "meets"
