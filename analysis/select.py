"""Picking comparable rows out of the stage table: sweeps, G2/A3 pairs, common load levels.

Comparisons are only ever made within one ``source`` (modelled or measured), one model and one
workload class, at the same mode and load level: the guide's charts compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Pair:
    """Two stacks serving the same model at the same precision on different machine families."""

    source: str
    model: str
    precision: str
    a: str  # the guide's reference (G2)
    b: str  # the challenger (A3)


def sweep(df: pd.DataFrame, stack: str, workload: str, mode: str = "batch", source: str | None = None) -> pd.DataFrame:
    """One stack's stages of one workload class and mode, by level (the latest run wins a tie)."""
    sel = (df["stack"] == stack) & (df["workload"] == workload) & (df["mode"] == mode) & df["level"].notna()
    if source is not None:
        sel &= df["source"] == source
    rows = df.loc[sel].sort_values(["level", "run_id"])
    return rows.drop_duplicates("level", keep="last").reset_index(drop=True)


def common_top(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """The rows of ``a`` and ``b`` at the highest level both tested (the guide's "large batch")."""
    common = sorted(set(a["level"]) & set(b["level"]))
    if not common:
        return None
    top = common[-1]
    return a.loc[a["level"] == top].iloc[0], b.loc[b["level"] == top].iloc[0]


def family_pairs(df: pd.DataFrame, fam_a: str = "G2", fam_b: str = "A3") -> list[Pair]:
    """Every (source, model, precision) served by both families; the first stack by name of each."""
    pairs = []
    for (source, model, precision), g in df.groupby(["source", "model", "precision"], sort=True, dropna=True):
        a = sorted(set(g.loc[g["machine_family"] == fam_a, "stack"]))
        b = sorted(set(g.loc[g["machine_family"] == fam_b, "stack"]))
        if a and b:
            pairs.append(Pair(str(source), str(model), str(precision), a[0], b[0]))
    return pairs


def first(df: pd.DataFrame, stack: str, column: str):
    """A per-run column's value for a stack (the same on every row of that stack)."""
    values = df.loc[df["stack"] == stack, column]
    return values.iloc[0] if len(values) else None


def ratio(x: float | None, y: float | None) -> float:
    """x / y, NaN when either is missing or y is zero."""
    if x is None or y is None or pd.isna(x) or pd.isna(y) or y == 0:
        return float("nan")
    return float(x) / float(y)
