"""Latency service-level objectives over the stage table: the grammar is ``loadtest/slo.py``'s (one
parser for every command); this module checks the terms against stages and requests (pandas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loadtest.slo import DEFAULT_SLO, METRICS, STATS, SloError, SloTerm, format_seconds, parse_terms

from .errors import AnalysisError

__all__ = ["DEFAULT_SLO", "METRICS", "STATS", "Slo", "SloTerm", "format_seconds", "parse_slo"]

@dataclass(frozen=True)
class Slo:
    terms: tuple[SloTerm, ...]
    text: str

    def __str__(self) -> str:
        return ", ".join(map(str, self.terms))

    def stage_meets(self, stages: pd.DataFrame) -> pd.Series:
        """True where every term holds for the stage (a stage with no completed request never meets it)."""
        ok = pd.Series(True, index=stages.index)
        for term in self.terms:
            # a statistic the stage table lacks (e.g. ITL p90: summaries keep ITL p50/p99) is not measured
            value = stages[term.key] if term.key in stages else pd.Series(np.nan, index=stages.index)
            ok &= value.notna() & (value <= term.limit)
        return ok & (stages["completed"] > 0)

    def request_meets(self, requests: pd.DataFrame) -> pd.Series:
        """Per-request check for goodput: each latency term's metric within its limit, and no error."""
        ok = requests["ok"].copy()
        for term in self.terms:
            if not term.per_request:
                continue
            value = requests[term.metric]
            # tpot is undefined for one-token answers: they cannot violate a tpot limit
            ok &= (value <= term.limit) | (value.isna() & (term.metric == "tpot"))
        return ok


def parse_slo(text: str) -> Slo:
    """The shared grammar (``loadtest/slo.py``); comparing needs at least one term."""
    try:
        terms = parse_terms(text)
    except SloError as exc:
        raise AnalysisError("--slo", exc.message, exc.fix) from None
    if not terms:
        raise AnalysisError("--slo", "has no terms", f"write it like {DEFAULT_SLO}")
    return Slo(terms, text)
