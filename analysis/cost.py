"""What the throughput costs: $ per million output tokens and tokens/s per dollar, normalized.

The price is all-in by default: the stack's ``spec.cost.usdPerHourAllIn`` — the accelerator pool the
measured endpoint ran on (spot price if spot) plus a whole GKE cluster's management fee and CPU
system pool (``stacks/catalog/cluster.yaml``; every stack is charged one, as it would run alone) —
carried in every run directory. ``pool`` prices the accelerators only (``usdPerHour``, the basis of
the guide's own per-dollar charts); runs written before the all-in price existed fall back to it.

An autoscaled stack (``server.autoscaling``) is priced by the replicas that actually served each
stage: its pool grows and shrinks with them, so the accelerator part of the price is the per-replica
$/h times the stage's mean ready replicas (recorded by the load tester from the Deployment), plus the
cluster's own cost for the all-in basis. Without recorded replicas it falls back to the pool at its
maximum, what a scaled-out hour costs.

Per-dollar throughput is normalized the way the guide's chart is: a baseline stack = 1, others
relative to it at the same model, workload, mode and load level. By default the baseline is, for
each model, its first G2 stack (the guide sets G2 to 1); ``--baseline`` names one stack for all.
Modelled and measured rows are normalized separately: a simulated number is never divided by a
measured one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import AnalysisError

SECONDS_PER_HOUR = 3600.0
MATCH = ["source", "model", "workload_label", "mode", "level"]


PRICE_BASES = ("all-in", "pool", "replicas")


def add_cost(df: pd.DataFrame, baseline: str | None = None, price: str = "all-in") -> pd.DataFrame:
    """Add ``usd_per_m_output`` / ``_input`` / ``_tokens`` (+ ``cost_basis``), ``output_tok_per_usd``,
    ``input_tok_per_usd``, ``norm_per_usd``, ``norm_input_per_usd`` and ``baseline``.

    ``price`` ``all-in`` (default) charges the accelerator pool and a cluster's own cost
    (``usdPerHourAllIn``); ``pool`` the whole accelerator pool only (``usdPerHour``: the guide's
    basis); ``replicas`` only the chips the server's replicas occupy (``usdPerReplicaHour`` ×
    replicas: the price if the rest of the node served something else). ``usd_per_hour`` is replaced
    by the chosen price; the accelerator pool's price stays in ``usd_per_hour_pool``.
    """
    if price not in PRICE_BASES:
        raise AnalysisError("--price", f'unknown price basis "{price}"', f"use one of: {', '.join(PRICE_BASES)}")
    df = df.copy()
    _price_autoscaled_by_replicas(df)
    df["usd_per_hour_pool"] = df["usd_per_hour"]
    if price == "all-in":
        all_in = pd.to_numeric(df.get("usd_per_hour_all_in", pd.Series(np.nan, index=df.index)), errors="coerce")
        df["usd_per_hour"] = all_in.fillna(df["usd_per_hour"])
    elif price == "replicas":
        per_replica = pd.to_numeric(df["usd_per_replica_hour"], errors="coerce")
        replicas = pd.to_numeric(df["replicas"], errors="coerce").fillna(1)
        df["usd_per_hour"] = (per_replica * replicas).fillna(df["usd_per_hour"])
    df["price_basis"] = price
    usd_h = pd.to_numeric(df["usd_per_hour"], errors="coerce").where(lambda x: x > 0)
    out_h = df["output_tok_s"] * SECONDS_PER_HOUR
    in_h = df["input_tok_s"] * SECONDS_PER_HOUR
    df["usd_per_m_output"] = usd_h / out_h.where(out_h > 0) * 1e6
    df["usd_per_m_input"] = usd_h / in_h.where(in_h > 0) * 1e6
    # What a workload's tokens cost: prompt (prefill) tokens for input-heavy work, output tokens otherwise.
    input_heavy = df["workload"] == "input-heavy"
    df["cost_basis"] = input_heavy.map({True: "input", False: "output"})
    df["usd_per_m_tokens"] = df["usd_per_m_input"].where(input_heavy, df["usd_per_m_output"])
    df["output_tok_per_usd"] = out_h / usd_h
    df["input_tok_per_usd"] = df["input_tok_s"] * SECONDS_PER_HOUR / usd_h
    df["baseline"] = baselines(df, baseline)
    ref = df.loc[df["stack"] == df["baseline"], [*MATCH, "stack", "output_tok_per_usd", "input_tok_per_usd"]]
    ref = ref.groupby([*MATCH, "stack"], dropna=False, as_index=False).mean(numeric_only=True)
    ref = ref.rename(columns={"stack": "baseline", "output_tok_per_usd": "_ref_out", "input_tok_per_usd": "_ref_in"})
    merged = df.merge(ref, on=[*MATCH, "baseline"], how="left")
    merged.index = df.index
    df["norm_per_usd"] = merged["output_tok_per_usd"] / merged["_ref_out"]
    df["norm_input_per_usd"] = merged["input_tok_per_usd"] / merged["_ref_in"]
    return df


def _price_autoscaled_by_replicas(df: pd.DataFrame) -> None:
    """Autoscaled stages with recorded replicas: the pool's price follows the replicas (in place)."""
    nan = pd.Series(np.nan, index=df.index)
    observed = pd.to_numeric(df.get("server_replicas_mean", nan), errors="coerce")
    per_replica = pd.to_numeric(df.get("usd_per_replica_hour", nan), errors="coerce")
    scaled = (per_replica * observed).where(observed > 0)
    rows = scaled.notna()
    if not rows.any():
        return
    pool = pd.to_numeric(df["usd_per_hour"], errors="coerce").astype(float)
    all_in = pd.to_numeric(df.get("usd_per_hour_all_in", nan), errors="coerce").astype(float)
    df["usd_per_hour_all_in"] = all_in.where(~rows, scaled + (all_in - pool).fillna(0.0))
    df["usd_per_hour"] = pool.where(~rows, scaled)
    df["replicas"] = pd.to_numeric(df.get("replicas", nan), errors="coerce").astype(float).where(~rows, observed)


def baselines(df: pd.DataFrame, baseline: str | None) -> pd.Series:
    """The baseline stack of each row (see the module docstring)."""
    if baseline is not None:
        if baseline not in set(df["stack"]):
            known = ", ".join(sorted(set(df["stack"])))
            raise AnalysisError("--baseline", f'stack "{baseline}" is not among the results', f"use one of: {known}")
        return pd.Series(baseline, index=df.index, dtype="object")
    out = pd.Series(np.nan, index=df.index, dtype="object")
    for (_source, _model), idx in df.groupby(["source", "model"], dropna=False).groups.items():
        stacks = sorted(set(df.loc[idx, "stack"]))
        g2 = sorted(set(df.loc[idx].loc[df.loc[idx, "machine_family"] == "G2", "stack"]))
        out.loc[idx] = (g2 or stacks)[0]
    return out
