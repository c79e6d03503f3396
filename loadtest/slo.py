"""The SLO grammar every command speaks: ``ttft_p99=2s,tpot_p50=100ms,itl_p99=50ms,error_rate=1%``.

One parser for ``loadtest run --slo``, ``analysis compare --slo`` and ``analysis demo --slo``, so a
string is accepted or refused the same way everywhere. A term is ``<metric>_<stat>=<duration>`` with
a unit (``2s``, ``100ms``, ``1500us``, ``1min``; a bare number is refused, since ``2`` could be
seconds or milliseconds), or ``error_rate=<fraction>`` (``1%`` or ``0.01``; a bare number of 1 or
more is refused, since ``1`` could be 1 % or 100 %).

A *stage* meets the SLO when each term's statistic over the stage is within its limit; a *request*
counts toward goodput when its own value of each latency metric is within the limit (the statistic
does not apply to one request, as ``vllm bench serve --goodput`` counts). ITL and the error rate
have no per-request value: they are judged on the stage only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

METRICS = ("ttft", "tpot", "ntpot", "itl", "e2e", "e2e_sched")
STATS = ("mean", "p50", "p90", "p95", "p99", "max")
STAGE_ONLY = ("itl", "error_rate")  # no per-request value: judged on the stage as a whole
DEFAULT_SLO = "ttft_p99=2s,tpot_p50=100ms"
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}
_TERM = re.compile(r"^(?P<metric>[a-z0-9_]+?)_(?P<stat>mean|p50|p90|p95|p99|max)$")


class SloError(ValueError):
    """A bad ``--slo``: ``message`` names the term, ``fix`` says what to write instead."""

    def __init__(self, message: str, fix: str):
        super().__init__(f"{message} (fix: {fix})")
        self.message, self.fix = message, fix


@dataclass(frozen=True)
class SloTerm:
    metric: str  # one of METRICS, or "error_rate"
    stat: str  # one of STATS ("" for error_rate)
    limit: float  # seconds, or a fraction for error_rate

    @property
    def key(self) -> str:
        """``ttft_p99`` / ``error_rate``: the key in run.json's ``config.slo`` and the stage-table column."""
        return "error_rate" if self.metric == "error_rate" else f"{self.metric}_{self.stat}"

    @property
    def per_request(self) -> bool:
        return self.metric not in STAGE_ONLY

    def __str__(self) -> str:
        if self.metric == "error_rate":
            return f"error_rate ≤ {self.limit:.2%}"
        return f"{self.metric} {self.stat} ≤ {format_seconds(self.limit)}"


def format_seconds(seconds: float) -> str:
    return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1e3:g} ms"


def parse_terms(text: str | None) -> tuple[SloTerm, ...]:
    """Parse ``metric_stat=value,...``; an empty string is no SLO. Errors name the term and the fix."""
    terms: list[SloTerm] = []
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        if "=" not in part:
            raise SloError(f'term "{part}" has no "="', f"write it like {DEFAULT_SLO}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key == "error_rate":
            terms.append(SloTerm("error_rate", "", _fraction(part, value)))
            continue
        m = _TERM.match(key)
        if not m or m.group("metric") not in METRICS:
            raise SloError(f'unknown term "{key}"', f"use <metric>_<stat> with metric in {', '.join(METRICS)} and "
                           f"stat in {', '.join(STATS)} (e.g. ttft_p99), or error_rate")
        terms.append(SloTerm(m.group("metric"), m.group("stat"), _duration(part, value)))
    keys = [t.key for t in terms]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise SloError(f"{', '.join(dup)} given twice", "give each term once")
    return tuple(terms)


def as_limits(terms: tuple[SloTerm, ...]) -> dict[str, float]:
    """``{"ttft_p99": 2.0, "error_rate": 0.01}``: how run.json's ``config.slo`` records the terms."""
    return {t.key: t.limit for t in terms}


def from_limits(limits: dict[str, float]) -> tuple[SloTerm, ...]:
    """The terms back from ``as_limits``'s form (a run's recorded SLO)."""
    out = []
    for key, limit in limits.items():
        if key == "error_rate":
            out.append(SloTerm("error_rate", "", float(limit)))
            continue
        m = _TERM.match(key)
        if not m or m.group("metric") not in METRICS:
            raise SloError(f'unknown term "{key}"', "the run was written by another version")
        out.append(SloTerm(m.group("metric"), m.group("stat"), float(limit)))
    return tuple(out)


def _duration(part: str, value: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(s|ms|us|min)?", value)
    if not m:
        raise SloError(f'"{part}": "{value}" is not a duration', "use a number with s, ms or us, e.g. 2s or 100ms")
    if m.group(2) is None:
        raise SloError(f'"{part}": "{value}" has no unit', f"write {value}s or {value}ms")
    return float(m.group(1)) * UNITS[m.group(2)]


def _fraction(part: str, value: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%)?", value)
    if not m:
        raise SloError(f'"{part}": "{value}" is not a rate', "write e.g. error_rate=1% or error_rate=0.01")
    if m.group(2) is None and float(m.group(1)) >= 1:
        raise SloError(f'"{part}": "{value}" is ambiguous (1 % or 100 %?)', f"write error_rate={value}% or a fraction "
                       "below 1, e.g. 0.01")
    x = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 <= x <= 1:
        raise SloError(f'"{part}": error rate must be between 0 and 100 %', "e.g. error_rate=1%")
    return x
