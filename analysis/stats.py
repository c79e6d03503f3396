"""Per-stage statistics recomputed from the request records, vectorized (no per-row Python).

Why recompute rather than read ``summary.json``: an interrupted run has requests but no summary, and
recomputing with one set of definitions makes runs from different tool versions comparable. The
load tester's own figures are kept as a cross-check (``xcheck`` column).

Definitions (all in seconds, over non-warmup requests of the stage; docs/analysis.md):
- ``ttft`` = first − sent (first chunk carrying content); ``e2e`` = end − sent;
  ``e2e_sched`` = end − scheduled (includes any client dispatch delay: no coordinated omission);
- ``tpot`` = (end − first) / (outputTokens − 1), requests with more than one output token;
- ``ntpot`` = e2e / outputTokens (TTFT included, what some tools call TPOT);
- stage window = last end − first send (as the load tester's summary); throughputs = totals of
  completed requests / window; achieved rate = (sends − 1) / (last send − first send).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .slo import Slo

KEYS = ["run_id", "stage"]
LATENCY_METRICS = ("ttft", "tpot", "ntpot", "e2e", "e2e_sched")
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def request_metrics(requests: pd.DataFrame) -> pd.DataFrame:
    """Add the per-request latency columns and ``ok``; drop warmup requests."""
    r = requests.loc[~requests["warmup"]].copy()
    r["ok"] = r["error"].isna() & r["end"].notna()
    out = r["outputTokens"]
    r["ttft"] = (r["first"] - r["sent"]).where(r["ok"])
    r["e2e"] = (r["end"] - r["sent"]).where(r["ok"])
    r["e2e_sched"] = (r["end"] - r["scheduled"]).where(r["ok"])
    r["tpot"] = ((r["end"] - r["first"]) / (out - 1)).where(r["ok"] & (out > 1))
    r["ntpot"] = (r["e2e"] / out).where(r["ok"] & (out > 0))
    r["dispatch"] = r["sent"] - r["scheduled"]
    return r


def stage_stats(r: pd.DataFrame, slo: Slo | None = None) -> pd.DataFrame:
    """One row per (run_id, stage) from the output of ``request_metrics`` (with a ``run_id`` column)."""
    if r.empty:
        return pd.DataFrame(columns=[*KEYS, "requests", "completed"])
    r = r.assign(
        ok_in=r["inputTokens"].where(r["ok"], 0.0).fillna(0.0),
        ok_out=r["outputTokens"].where(r["ok"], 0.0).fillna(0.0),
        good=slo.request_meets(r) if slo is not None else r["ok"],
    )
    g = r.groupby(KEYS, sort=False, observed=True)
    base = g.agg(
        requests=("ok", "size"), completed=("ok", "sum"), good=("good", "sum"),
        input_tokens=("ok_in", "sum"), output_tokens=("ok_out", "sum"),
        start=("sent", "min"), stop=("end", "max"), first_sent=("sent", "min"), last_sent=("sent", "max"),
        mean_input_tokens=("inputTokens", "mean"), mean_output_tokens=("ok_out", "mean"),
    )
    base["mean_output_tokens"] = base["output_tokens"] / base["completed"].where(base["completed"] > 0)
    base["errors"] = base["requests"] - base["completed"]
    base["error_rate"] = base["errors"] / base["requests"]
    window = (base["stop"] - base["start"]).where(lambda w: w > 0)
    base["duration_s"] = window
    base["request_throughput"] = base["completed"] / window
    base["input_tok_s"] = base["input_tokens"] / window
    base["output_tok_s"] = base["output_tokens"] / window
    base["total_tok_s"] = base["input_tok_s"] + base["output_tok_s"]
    base["goodput"] = base["good"] / window
    sent_span = (base["last_sent"] - base["first_sent"]).where(lambda w: w > 1e-3)
    base["achieved_rate"] = (base["requests"] - 1) / sent_span  # meaningful for open-loop (rate) stages

    lat = r[[*KEYS, *LATENCY_METRICS, "dispatch"]]
    gl = lat.groupby(KEYS, sort=False, observed=True)
    cols = [*LATENCY_METRICS, "dispatch"]
    parts = {"mean": gl[cols].mean(), "max": gl[cols].max()}
    # every percentile in one call: the groups are sorted once, not once per percentile
    qs = gl[cols].quantile(list(QUANTILES.values()))
    level = qs.index.nlevels - 1
    for name, q in QUANTILES.items():
        parts[name] = qs.xs(q, level=level)
    for stat, frame in parts.items():
        frame = frame.rename(columns={c: f"{c}_{stat}" for c in cols})
        base = base.join(frame)
    base["errors_by_class"] = _errors_by_class(r)
    return base.reset_index().drop(columns=["good", "first_sent", "last_sent"], errors="ignore")


def _errors_by_class(r: pd.DataFrame) -> pd.Series:
    """``{"http_5xx": 3, ...}`` per stage, as a short text (only stages with errors get one)."""
    err = r.loc[r["error"].notna(), [*KEYS, "error"]]
    if err.empty:
        return pd.Series(dtype="object")
    counts = err.groupby([*KEYS, "error"], observed=True).size()
    text = counts.rename("n").reset_index()
    text["t"] = text["error"].astype(str) + ":" + text["n"].astype(str)
    return text.groupby(KEYS, sort=False)["t"].agg(" ".join)


def server_stage_stats(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per-stage server-side figures from the scraped metrics: running batch, queue, KV use, preemptions,
    and the ready replicas of an autoscaled server (so throughput can be read against them)."""
    cols = ["stage", "server_running_mean", "server_running_max", "server_queue_max", "server_kv_max",
            "server_preemptions", "server_replicas_mean", "server_replicas_max"]
    if metrics.empty:
        return pd.DataFrame(columns=cols)
    m = metrics.groupby(["stage", "role"], sort=False)["value"]
    agg = m.agg(["mean", "max", "min"]).unstack("role")
    out = pd.DataFrame(index=agg.index)
    pick = {
        "server_running_mean": ("mean", "running"), "server_running_max": ("max", "running"),
        "server_queue_max": ("max", "waiting"), "server_kv_max": ("max", "kv_usage"),
        "server_replicas_mean": ("mean", "replicas"), "server_replicas_max": ("max", "replicas"),
    }
    for col, key in pick.items():
        out[col] = agg[key] if key in agg.columns else np.nan
    if ("max", "preemptions") in agg.columns:
        out["server_preemptions"] = agg[("max", "preemptions")] - agg[("min", "preemptions")]
    else:
        out["server_preemptions"] = np.nan
    return out.reset_index()[cols]
