"""The tidy stage table: one row per (run, stage), every column the comparison and the verdicts need.

Columns come from three places, joined here and nowhere else:
- the run's spec summary (hardware, precision, server, $/h, sizing) — ``run_columns``;
- the stage's identity (mode, level, arrival) from ``summary.json``, or from the run's load config
  when the summary is missing (an interrupted run) — ``_stage_identity``;
- statistics recomputed from the requests (``stats``) and the scraped server metrics.
The load tester's own figures are compared with the recomputed ones (``xcheck``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loadtest.aggregate import DISPATCH_DELAY_LIMIT
from loadtest.model_check import agreement
from loadtest.model_check import judge as judge_host

from .loader import Run
from .slo import Slo
from .stats import request_metrics, server_stage_stats, stage_stats

INPUT_HEAVY_RATIO = 4.0  # input tokens ≥ 4 × output tokens: an input-heavy (prefill-bound) workload
XCHECK_RTOL = 0.05
# stage-table column ← key of the load tester's ``serverMetrics`` in summary.json
SUMMARY_SERVER_KEYS = {"server_running_mean": "runningMean", "server_running_max": "runningMax",
                       "server_queue_max": "waitingMax", "server_kv_max": "kvCacheUsageMax",
                       "server_preemptions": "preemptions", "server_replicas_mean": "replicasMean",
                       "server_replicas_max": "replicasMax"}


def _get(d: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def _cfg(config: dict[str, Any], *names: str) -> Any:
    for n in names:
        if config.get(n) is not None:
            return config[n]
    return None


def machine_family(machine: str | None) -> str | None:
    """GCE machine family as the guide names it: g2-standard-8 → G2, a3-highgpu-8g → A3."""
    return machine.split("-", 1)[0].upper() if machine else None


def run_columns(run: Run) -> dict[str, Any]:
    """The per-run columns: what was served on what, at what price, and how it was sized."""
    s = run.spec
    acc = s.get("accelerator") or {}
    per_node, nodes = acc.get("perNode"), acc.get("nodeCount") or 1
    chips = per_node * nodes if per_node else None
    model = s.get("model") or {}
    sizing = s.get("sizing") or {}
    c = run.config
    return {
        "run_id": run.run_id, "run_dir": str(run.path), "stack": run.stack, "target": run.target,
        "source": run.source, "partial": run.partial, "tool_version": run.tool_version,
        "model": model.get("alias") or model.get("hfId"), "model_params": model.get("params"),
        "precision": s.get("precision"), "accelerator": acc.get("type"), "accelerator_name": acc.get("name"),
        "chips": chips, "machine": acc.get("machineType"), "machine_family": machine_family(acc.get("machineType")),
        "memory_gb_per_chip": acc.get("memoryGB"), "server": _get(s, "server", "kind"),
        "tp": _get(s, "server", "tensorParallel"), "replicas": _get(s, "server", "replicas"),
        "max_batch": _get(s, "server", "maxBatch"),
        "usd_per_hour": _get(s, "cost", "usdPerHour"), "usd_per_replica_hour": _get(s, "cost", "usdPerReplicaHour"),
        "usd_per_hour_all_in": _get(s, "cost", "usdPerHourAllIn"),
        "spot": _get(s, "cost", "spot"),
        "weight_gb": sizing.get("weightGB"), "weight_share": sizing.get("weightShare"),
        "kv_share": sizing.get("kvShare"), "kv_gib": sizing.get("kvCacheGiB"), "kv_tokens": sizing.get("kvTokens"),
        "fits": sizing.get("fits"),
        "input_len": _cfg(c, "inputLen", "input_len"), "output_len": _cfg(c, "outputLen", "output_len"),
        "dataset": _cfg(c, "dataset"),
    }


def _stage_identity(run: Run, stage_ids: list[str]) -> pd.DataFrame:
    """mode / level / arrival / requested rate and the tester's own figures for each stage id."""
    rows: dict[str, dict[str, Any]] = {}
    for st in (run.summary or {}).get("stages") or []:
        sid = str(st.get("id"))
        rows[sid] = {
            "stage": sid, "mode": st.get("mode"), "level": st.get("level"), "arrival": st.get("arrival"),
            "requested_rate": st.get("requestedRate"), "client_bottleneck": st.get("clientBottleneck"),
            "summary_completed": st.get("completed"), "summary_output_tok_s": st.get("outputTokensPerS"),
            "summary_ttft_p50": _get(st, "ttft", "p50"), "summary_tpot_p50": _get(st, "tpot", "p50"),
            "summary_e2e_p50": _get(st, "e2e", "p50"), "itl_p50": _get(st, "itl", "p50"),
            "itl_p99": _get(st, "itl", "p99"),
            **{f"summary_sm_{k}": v for k, v in (st.get("serverMetrics") or {}).items()},
        }
    missing = [s for s in stage_ids if s not in rows]
    if missing:
        # No summary for these stages (interrupted run): the k-th stage seen is the k-th configured level.
        mode = _cfg(run.config, "mode")
        levels = _cfg(run.config, "levels") or []
        if isinstance(levels, str):
            levels = [float(x) for x in levels.split(",") if x.strip()]
        known = len(rows)
        for k, sid in enumerate(missing):
            idx = known + k
            level = levels[idx] if idx < len(levels) else None
            stage_mode = mode if mode in ("batch", "rate") else None
            rows[sid] = {"stage": sid, "mode": stage_mode, "level": level,
                         "arrival": "closed" if stage_mode == "batch" else _cfg(run.config, "arrival"),
                         "requested_rate": level if stage_mode == "rate" else None}
    return pd.DataFrame(list(rows.values())) if rows else pd.DataFrame(columns=["stage"])


def workload_class(mean_in: float, mean_out: float) -> str:
    if not (mean_in > 0 and mean_out > 0):
        return "unknown"
    if mean_in >= INPUT_HEAVY_RATIO * mean_out:
        return "input-heavy"
    if mean_out >= INPUT_HEAVY_RATIO * mean_in:
        return "output-heavy"
    return "balanced"


# the figures shown side by side for the model check (measured_<c>, predicted_<c>)
CHECK_FIGURES = ("output_tok_s", "ttft_p50", "tpot_p50")


BATCH_ROWS = 1_000_000  # records per vectorized statistics pass (see _all_stats)


def _all_stats(frames: dict[str, pd.DataFrame], slo: Slo | None) -> dict[str, pd.DataFrame]:
    """Per-stage statistics of many runs' records, keyed by run directory.

    Small runs are computed together, up to ``BATCH_ROWS`` records a pass: pandas' fixed cost per
    call, paid per run, was most of a 56-run comparison. A large run gets a pass of its own, since
    copying millions of records into one frame costs more time and memory than it saves.
    """
    batches: list[dict[str, pd.DataFrame]] = [{}]
    rows = 0
    for key, frame in frames.items():
        if frame.empty:
            continue
        if batches[-1] and rows + len(frame) > BATCH_ROWS:
            batches.append({})
            rows = 0
        batches[-1][key] = frame
        rows += len(frame)
    out: dict[str, pd.DataFrame] = {}
    for batch in filter(None, batches):
        req = request_metrics(pd.concat(batch.values(), keys=list(batch), names=["run_id", None]).reset_index(0))
        stats = stage_stats(req, slo)
        stats["stage"] = stats["stage"].astype(str)
        out.update({str(k): g.reset_index(drop=True) for k, g in stats.groupby("run_id", sort=False)})
    return out


def _model_check(run: Run, measured: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """Per stage: the measured and predicted figures side by side, the model's error and ``basis``.

    ``basis`` says which of the two the stage's other columns hold (``Run.predicted_stages``).
    """
    cols = ["stage", "completed", "e2e_p50", *CHECK_FIGURES]
    out = measured[[c for c in cols if c in measured]].rename(columns=lambda c: c if c == "stage" else f"measured_{c}")
    if predicted.empty:
        for c in CHECK_FIGURES:
            out[f"predicted_{c}"] = np.nan
    else:
        pred = predicted[["stage", *CHECK_FIGURES]].rename(columns=lambda c: c if c == "stage" else f"predicted_{c}")
        out = out.merge(pred, on="stage", how="outer")
    out["basis"] = np.where(out["stage"].isin(run.predicted_stages), "predicted", "measured")
    return out


def _judge(df: pd.DataFrame) -> pd.DataFrame:
    """``model_error_*``, ``model_agrees``, ``host_bound`` and ``decides`` (feeds verdicts) per stage.

    The tolerance and the judgement are ``loadtest.model_check``'s, the same the load tester wrote
    into summary.json, recomputed here so runs without a summary are judged alike.
    """
    agrees, host, err_tput, err_ttft = [], [], [], []
    for _, row in df.iterrows():  # one row per stage
        fig = {c: (None if pd.isna(row.get(c)) else float(row[c])) for c in
               ("measured_output_tok_s", "predicted_output_tok_s", "measured_ttft_p50", "predicted_ttft_p50")}
        if fig["measured_output_tok_s"] is None or fig["predicted_output_tok_s"] is None:
            agrees.append(pd.NA)
            host.append(pd.NA)
            err_tput.append(np.nan)
            err_ttft.append(np.nan)
            continue
        a = agreement(fig["measured_output_tok_s"], fig["predicted_output_tok_s"], fig["measured_ttft_p50"],
                      fig["predicted_ttft_p50"])
        agrees.append(a.agrees)
        host.append(judge_host(row.get("client_bottleneck") is True, a.agrees, row["source"] == "modelled"))
        err_tput.append(np.nan if a.error_tok_s is None else a.error_tok_s)
        err_ttft.append(np.nan if a.error_ttft_p50 is None else a.error_ttft_p50)
    df["model_error_tok_s"] = pd.Series(err_tput, index=df.index, dtype="float64")
    df["model_error_ttft_p50"] = pd.Series(err_ttft, index=df.index, dtype="float64")
    df["model_agrees"] = pd.Series(agrees, index=df.index, dtype="boolean")
    df["host_bound"] = pd.Series(host, index=df.index, dtype="boolean")
    # What decides verdicts: the model's replay always may (it is the model alone); a measurement may
    # unless the load generator fell behind (its latencies include client delay) or the host did.
    measured_basis = df["basis"] == "measured"
    df["decides"] = ~(measured_basis & ((df["client_bottleneck"] == True)  # noqa: E712 (object column)
                                        | df["host_bound"].fillna(False).astype(bool)))
    return df


def stage_frame(runs: list[Run], slo: Slo | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Build the stage table for ``runs``; also return the warnings (partial runs, cross-check misses)."""
    warnings: list[str] = [w for run in runs for w in run.warnings]
    frames: list[pd.DataFrame] = []
    # statistics are per stage, so the deciding ones (Run.deciding_requests) are the replay's rows for
    # the replayed stages and the measurement's for the rest: each set is computed once, for all runs
    all_measured = _all_stats({str(r.path): r.requests for r in runs}, slo)
    all_predicted = _all_stats({str(r.path): r.predicted for r in runs}, slo)
    for run in runs:
        empty = pd.DataFrame(columns=["run_id", "stage", "start"])
        measured = all_measured.get(str(run.path), empty).assign(run_id=run.run_id)
        predicted = all_predicted.get(str(run.path), pd.DataFrame())
        if not predicted.empty:
            predicted = predicted.assign(run_id=run.run_id)
        replayed = run.predicted_stages
        stats = pd.concat([predicted.loc[predicted["stage"].isin(replayed)] if replayed else None,
                           measured.loc[~measured["stage"].isin(replayed)]], ignore_index=True)
        if stats.empty:
            warnings.append(f"{run.path}: no completed non-warmup request; the run is left out")
            continue
        order = stats.sort_values("start")["stage"].astype(str).tolist()
        ident = _stage_identity(run, order)
        ident["stage"] = ident["stage"].astype(str)
        df = stats.merge(ident, on="stage", how="left").merge(_model_check(run, measured, predicted), on="stage",
                                                                 how="left")
        server = server_stage_stats(run.server_metrics)
        server["stage"] = server["stage"].astype(str)
        df = df.merge(server, on="stage", how="left")
        for col, value in run_columns(run).items():
            if col != "run_id":
                df[col] = value
        frames.append(df)
    if not frames:
        return pd.DataFrame(), warnings
    df = pd.concat(frames, ignore_index=True)
    # Without scraped samples (e.g. --no-metrics with a server that reports its own), use the summary's.
    for mine, theirs in SUMMARY_SERVER_KEYS.items():
        if f"summary_sm_{theirs}" in df:
            df[mine] = df[mine].fillna(pd.to_numeric(df[f"summary_sm_{theirs}"], errors="coerce"))
    df["level"] = pd.to_numeric(df["level"], errors="coerce")
    df["mode"] = df["mode"].fillna("unknown")
    # per run directory: a run id is unique within its stack only (the demo names every stack's runs alike)
    mean_in = df.groupby("run_dir")["mean_input_tokens"].transform("mean")
    mean_out = df.groupby("run_dir")["mean_output_tokens"].transform("mean")
    df["workload"] = [workload_class(a, b) for a, b in zip(mean_in, mean_out, strict=True)]
    df["workload_label"] = (mean_in.round().astype("Int64").astype(str) + "→"
                            + mean_out.round().astype("Int64").astype(str))
    if "client_bottleneck" not in df:
        df["client_bottleneck"] = np.nan
    # a stage without the load tester's verdict (no summary) is judged by the same dispatch-delay limit
    df["client_bottleneck"] = df["client_bottleneck"].astype("object").where(
        df["client_bottleneck"].notna(), df["dispatch_p99"] > DISPATCH_DELAY_LIMIT)
    df = _judge(df)
    df["xcheck"] = _xcheck(df)
    for _, row in df.loc[(df["client_bottleneck"] == True) & (df["basis"] == "measured")].iterrows():  # noqa: E712
        warnings.append(f"{row['stack']} {row['mode']} level {row['level']:g} ({row['run_dir']}): the load generator "
                        f"could not keep its schedule (dispatch delay p99 {row['dispatch_p99'] * 1e3:.1f} ms); "
                        "its latencies include client delay, so it decides no verdict")
    for _, row in df.loc[df["xcheck"].str.startswith("differs")].iterrows():
        warnings.append(f"{row['run_dir']} stage {row['stage']}: recomputed figures {row['xcheck']}")
    df = df.sort_values(["source", "stack", "workload_label", "mode", "level", "run_id"], kind="stable")
    return df.reset_index(drop=True), warnings


def _xcheck(df: pd.DataFrame) -> pd.Series:
    """Compare recomputed figures with the load tester's summary: ``ok``, ``no summary`` or what differs."""
    # the summary holds the load tester's measured figures: compare them with the measured columns
    pairs = [("measured_completed", "summary_completed", 0.0),
             ("measured_output_tok_s", "summary_output_tok_s", XCHECK_RTOL),
             ("measured_ttft_p50", "summary_ttft_p50", XCHECK_RTOL),
             ("measured_tpot_p50", "summary_tpot_p50", XCHECK_RTOL),
             ("measured_e2e_p50", "summary_e2e_p50", XCHECK_RTOL)]
    out = []
    for _, row in df.iterrows():  # one row per stage: tens to hundreds, not per request
        seen, diffs = 0, []
        for mine, theirs, rtol in pairs:
            a, b = row.get(mine), row.get(theirs)
            if b is None or (isinstance(b, float) and math.isnan(b)) or a is None or pd.isna(a):
                continue
            seen += 1
            if not math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-3):
                diffs.append(f"{mine.removeprefix('measured_')} {float(a):.4g} vs {float(b):.4g}")
        out.append("no summary" if not seen else ("ok" if not diffs else "differs: " + "; ".join(diffs)))
    return pd.Series(out, index=df.index, dtype="object")
