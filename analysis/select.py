"""Picking comparable rows out of the stage table: sweeps, G2/A3 pairs, common load levels.

Comparisons are only ever made within one ``source`` (modelled or measured), one model and one
workload class, at the same mode and load level: the guide's charts compare like with like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

GUIDE_COST_RATIO = 5.5  # the guide: A3 costs 5.5× G2 "for the compared shapes"


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


def guide_pairs(d: pd.DataFrame) -> list[Pair]:
    """G2/A3 pairs in the guide's shapes: per (source, model, precision), the first A3 stack by name and,
    of the G2 stacks, the one whose $/h ratio to it is nearest the guide's 5.5× (on a log scale; ties
    by name). With one G2 stack per model this is ``family_pairs``."""
    out = []
    for p in family_pairs(d):
        g = d.loc[(d["source"] == p.source) & (d["model"] == p.model) & (d["precision"] == p.precision)
                  & (d["machine_family"] == "G2")]
        a3_cost = first(d, p.b, "usd_per_hour")
        costs = {st: _off_guide_cost(a3_cost, first(g, st, "usd_per_hour")) for st in sorted(set(g["stack"]))}
        g2 = min(costs, key=costs.__getitem__)
        out.append(Pair(p.source, p.model, p.precision, g2, p.b))
    return out


def _off_guide_cost(a3_usd: float | None, g2_usd: float | None) -> float:
    """How far an A3/G2 price ratio is from the guide's 5.5× (|log|; infinite when a price is missing)."""
    r = ratio(a3_usd, g2_usd)
    return abs(math.log(r / GUIDE_COST_RATIO)) if r > 0 else math.inf


def first(df: pd.DataFrame, stack: str, column: str):
    """A per-run column's value for a stack (the same on every row of that stack)."""
    values = df.loc[df["stack"] == stack, column]
    return values.iloc[0] if len(values) else None


def ratio(x: float | None, y: float | None) -> float:
    """x / y, NaN when either is missing or y is zero."""
    if x is None or y is None or pd.isna(x) or pd.isna(y) or y == 0:
        return float("nan")
    return float(x) / float(y)
