"""Latency service-level objectives: ``ttft_p99=2s,tpot_p50=100ms,error_rate=1%``.

An SLO is a list of terms, each a metric's statistic with a limit. A *stage* meets the SLO when each
term's statistic over the stage is within its limit; a *request* counts toward goodput when its own
value of each metric is within the limit (the statistic does not apply to one request; this is how
``vllm bench serve --goodput`` counts). Limits are kept in seconds (fractions for ``error_rate``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from .errors import AnalysisError

METRICS = ("ttft", "tpot", "ntpot", "e2e", "e2e_sched")
STATS = ("mean", "p50", "p90", "p95", "p99", "max")
DEFAULT_SLO = "ttft_p99=2s,tpot_p50=100ms"
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}
_TERM = re.compile(r"^(?P<metric>[a-z0-9_]+?)_(?P<stat>mean|p50|p90|p95|p99|max)$")


@dataclass(frozen=True)
class SloTerm:
    metric: str  # one of METRICS, or "error_rate"
    stat: str  # one of STATS ("" for error_rate)
    limit: float  # seconds, or a fraction for error_rate

    @property
    def column(self) -> str:
        """The stage-table column this term is checked against."""
        return "error_rate" if self.metric == "error_rate" else f"{self.metric}_{self.stat}"

    def __str__(self) -> str:
        if self.metric == "error_rate":
            return f"error_rate ≤ {self.limit:.2%}"
        return f"{self.metric} {self.stat} ≤ {format_seconds(self.limit)}"


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
            value = stages[term.column]
            ok &= value.notna() & (value <= term.limit)
        return ok & (stages["completed"] > 0)

    def request_meets(self, requests: pd.DataFrame) -> pd.Series:
        """Per-request check for goodput: each latency term's metric within its limit, and no error."""
        ok = requests["ok"].copy()
        for term in self.terms:
            if term.metric == "error_rate":
                continue
            value = requests[term.metric]
            # tpot is undefined for one-token answers: they cannot violate a tpot limit
            ok &= (value <= term.limit) | (value.isna() & (term.metric == "tpot"))
        return ok


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:g} s"
    return f"{seconds * 1e3:g} ms"


def parse_slo(text: str) -> Slo:
    """Parse ``metric_stat=value[unit],...``; every error names the term and lists what is allowed."""
    terms: list[SloTerm] = []
    if not text or not text.strip():
        raise AnalysisError("--slo", "is empty", f"write it like {DEFAULT_SLO}")
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "=" not in part:
            raise AnalysisError("--slo", f'term "{part}" has no "="', f"write it like {DEFAULT_SLO}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key == "error_rate":
            terms.append(SloTerm("error_rate", "", _parse_fraction(part, value)))
            continue
        m = _TERM.match(key)
        if not m or m.group("metric") not in METRICS:
            raise AnalysisError("--slo", f'unknown term "{key}"',
                                f"use <metric>_<stat> with metric in {', '.join(METRICS)} and stat in "
                                f"{', '.join(STATS)} (e.g. ttft_p99), or error_rate")
        terms.append(SloTerm(m.group("metric"), m.group("stat"), _parse_duration(part, value)))
    if not terms:
        raise AnalysisError("--slo", "has no terms", f"write it like {DEFAULT_SLO}")
    return Slo(tuple(terms), text)


def _parse_duration(part: str, value: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(s|ms|us|min)?", value)
    if not m:
        raise AnalysisError("--slo", f'"{part}": "{value}" is not a duration', "use a number with s, ms or us, "
                            "e.g. 2s or 100ms")
    if m.group(2) is None:
        raise AnalysisError("--slo", f'"{part}": "{value}" has no unit', f"write {value}s or {value}ms")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _parse_fraction(part: str, value: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%)?", value)
    if not m:
        raise AnalysisError("--slo", f'"{part}": "{value}" is not a rate', "write e.g. error_rate=1% or 0.01")
    x = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 <= x <= 1:
        raise AnalysisError("--slo", f'"{part}": error rate must be between 0 and 100 %', "e.g. error_rate=1%")
    return x
