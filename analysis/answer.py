"""The answer, first: for each model and workload, the cheapest stack that meets the SLO, how sure we are,
and what is second.

For every stack, its *operating point* is the deciding stage (``frame.py``'s ``decides``) that meets
every SLO term at the lowest $ per million tokens, in any mode: a static batch and a request rate are
both loads the stack served within the latency target, so the one that delivered more tokens per
dollar is what the stack can do. The stacks are then ranked by that price.

How sure: a 95 % interval on each $/M figure.
- One run at that level: a bootstrap over its requests (above 5,000 requests, its normal
  approximation: the resampling would cost more than the comparison). Throughput is the stage's tokens over its
  window, which does not resample well (the window is set by the last request to end), so the bootstrap
  resamples the per-request token rate Σ tokens / Σ latency and keeps the stage's mean concurrency
  (Little's law: throughput = concurrency × tokens per second of request time), which the load level fixes.
- Several runs at that level (repeats): a t-interval across the runs' figures.
The winner and the runner-up *tie* when their intervals overlap. The SLO term closest to its limit is
reported with its own bootstrap interval: an interval that crosses the limit makes the pass marginal.

A point that is the highest level tested of its sweep is a lower bound on what the stack can do (its
$/M an upper bound): the table marks it "≥" and says which run would find the real limit.
Resampling uses a fixed seed per stage, so the same records give the same answer every time.
"""

from __future__ import annotations

import hashlib
import math
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .cost import SECONDS_PER_HOUR
from .loader import Run
from .slo import Slo, SloTerm
from .stats import QUANTILES, request_metrics

RESAMPLES = 1000
CONFIDENCE = 0.95
Z95 = 1.959964
LARGE_N = 5_000  # above this many requests, normal approximations instead of resampling (see _bootstrap_price)
# two-sided 95 % Student t quantiles by degrees of freedom (repeats − 1); beyond the table, the normal 1.96
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
GROUP = ["source", "model", "workload", "workload_label"]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str  # "bootstrap over N requests" / "t over K runs" / "none"

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class Point:
    """One stack's cheapest stage meeting the SLO."""

    stack: str
    mode: str
    level: float
    run_id: str
    stage: str
    usd_per_hour: float
    usd_per_m: float
    ci: Interval
    tok_s: float
    n: int  # completed requests behind the percentiles
    repeats: int
    lower_bound: bool  # the highest level its sweep tested: the stack may do better
    binding: str  # the SLO term nearest its limit, with its value and interval
    marginal: bool  # that term's interval crosses the limit

    @property
    def load(self) -> str:
        unit = "req/s" if self.mode == "rate" else ""
        return f"{'≥ ' if self.lower_bound else ''}{self.mode} {self.level:g}{(' ' + unit) if unit else ''}"

    @property
    def tok_s_per_usd_h(self) -> float:
        """Tokens/s per $/h: the guide's "throughput per dollar" (1e6 / 3600 / ($/M))."""
        return self.tok_s / self.usd_per_hour if self.usd_per_hour > 0 else math.nan

    def next_run(self) -> str:
        if not self.lower_bound:
            return ""
        if self.mode == "batch":
            return f"extend the batch sweep beyond {self.level:g} (e.g. --mode batch --levels {2 * self.level:g})"
        return f"extend the rate sweep beyond {self.level:g} req/s (e.g. --mode sweep --sweep-of rate)"


@dataclass
class Answer:
    """The answer for one (source, model, workload)."""

    source: str
    model: str
    workload: str
    workload_label: str
    cost_basis: str  # "output" or "input" tokens priced
    ranked: list[Point]
    never: dict[str, str] = field(default_factory=dict)  # stack → why it never meets the SLO

    @property
    def winner(self) -> Point | None:
        return self.ranked[0] if self.ranked else None

    @property
    def runner_up(self) -> Point | None:
        return self.ranked[1] if len(self.ranked) > 1 else None

    @property
    def margin(self) -> float:
        """How much more the runner-up's tokens cost than the winner's (0.12 = 12 %)."""
        w, r = self.winner, self.runner_up
        return r.usd_per_m / w.usd_per_m - 1 if w and r and w.usd_per_m > 0 else math.nan

    @property
    def tie(self) -> bool:
        w, r = self.winner, self.runner_up
        return bool(w and r and w.ci.overlaps(r.ci))

    @property
    def verdict(self) -> str:
        if self.winner is None:
            return "no stack meets the SLO"
        if self.runner_up is None:
            return "only stack meeting the SLO"
        if self.tie:
            return f"tie with {self.runner_up.stack} (intervals overlap)"
        return f"cheapest: the runner-up, {self.runner_up.stack}, costs {self.margin:.0%} more"


def answers(stages: pd.DataFrame, runs: list[Run], slo: Slo) -> list[Answer]:
    """One ``Answer`` per (source, model, workload) of the deciding stages of ``stages`` (with cost columns)."""
    by_dir = {str(r.path): r for r in runs}  # a run id is unique within its stack only
    d = stages.loc[stages["decides"] & stages["level"].notna()].copy()
    d["meets"] = slo.stage_meets(d)
    out = []
    for key, g in d.groupby(GROUP, sort=True, dropna=False):
        source, model, workload, label = (str(k) for k in key)
        points, never = [], {}
        for stack, s in g.groupby("stack", sort=True):
            ok = s.loc[s["meets"] & s["usd_per_m_tokens"].notna()]
            if ok.empty:
                never[str(stack)] = _why_never(s, slo)
                continue
            points.append(_point(ok, s, by_dir, slo))
        points.sort(key=lambda p: (p.usd_per_m, p.stack))
        out.append(Answer(source, model, workload, label, str(g["cost_basis"].iloc[0]), points, never))
    return out


def _point(ok: pd.DataFrame, all_stages: pd.DataFrame, by_dir: dict[str, Run], slo: Slo) -> Point:
    best = ok.sort_values(["usd_per_m_tokens", "run_id"]).iloc[0]
    same = ok.loc[(ok["mode"] == best["mode"]) & (ok["level"] == best["level"])]
    tokens_col = "input_tok_s" if best["cost_basis"] == "input" else "output_tok_s"
    usd_h = float(best["usd_per_hour"])
    sweep = all_stages.loc[all_stages["mode"] == best["mode"], "level"]
    lower_bound = bool(best["level"] >= sweep.max())
    requests = _stage_requests(by_dir.get(str(best["run_dir"])), str(best["stage"]))
    if len(same) > 1:
        ci = _t_interval(usd_h, same[tokens_col].astype(float).to_numpy())
    else:
        ci = _bootstrap_price(usd_h, float(best[tokens_col]), requests, best["cost_basis"], _seed(best))
    binding, marginal = _binding_term(best, requests, slo, _seed(best))
    return Point(stack=str(best["stack"]), mode=str(best["mode"]), level=float(best["level"]),
                 run_id=str(best["run_id"]), stage=str(best["stage"]), usd_per_hour=usd_h,
                 usd_per_m=float(best["usd_per_m_tokens"]), ci=ci, tok_s=float(best[tokens_col]),
                 n=int(best["completed"]), repeats=len(same), lower_bound=lower_bound, binding=binding,
                 marginal=marginal)


def _seed(row: pd.Series) -> int:
    key = f"{row['stack']}/{row['run_id']}/{row['stage']}"  # not the directory: the answer must not move with it
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def _stage_requests(run: Run | None, stage: str) -> pd.DataFrame:
    """The completed deciding records of one stage, with the per-request metrics."""
    if run is None:
        return pd.DataFrame()
    r = run.deciding_requests()
    r = request_metrics(r.loc[r["stage"].astype(str) == stage])
    return r.loc[r["ok"]]


def _usd_per_m(usd_h: float, tok_s: np.ndarray | float) -> np.ndarray | float:
    return usd_h / (np.asarray(tok_s) * SECONDS_PER_HOUR) * 1e6


def _bootstrap_price(usd_h: float, tok_s: float, r: pd.DataFrame, basis: str, seed: int) -> Interval:
    """$/M interval from resampling the requests' token rate Σ tokens / Σ latency (module docstring).

    Above ``LARGE_N`` requests the resampling (RESAMPLES × n draws) would cost more than the whole
    comparison, and the central limit theorem has long taken over: the interval is then the ratio
    estimator's normal approximation (delta method), which the bootstrap converges to.
    """
    if len(r) < 2:
        return Interval(math.nan, math.nan, "none")
    tokens = r["inputTokens" if basis == "input" else "outputTokens"].to_numpy(dtype=float)
    busy = r["e2e"].to_numpy(dtype=float)
    rate = tokens.sum() / busy.sum()
    if len(r) > LARGE_N:
        se = float(np.std(tokens - rate * busy, ddof=1) / (busy.mean() * math.sqrt(len(r))))
        lo, hi = tok_s * (rate - Z95 * se) / rate, tok_s * (rate + Z95 * se) / rate
        return Interval(float(_usd_per_m(usd_h, hi)), float(_usd_per_m(usd_h, lo)) if lo > 0 else math.inf,
                        f"normal approximation over {len(r):,} requests")
    idx = np.random.default_rng(seed).integers(0, len(r), size=(RESAMPLES, len(r)))
    tput = tok_s * (tokens[idx].sum(axis=1) / busy[idx].sum(axis=1)) / rate
    lo, hi = np.quantile(tput, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    # a higher throughput is a lower price: the bounds swap
    return Interval(float(_usd_per_m(usd_h, hi)), float(_usd_per_m(usd_h, lo)), f"bootstrap over {len(r)} requests")


def _t_interval(usd_h: float, tok_s: np.ndarray) -> Interval:
    """$/M interval across repeated runs of one level: Student t on their throughputs."""
    k = len(tok_s)
    mean, sd = float(tok_s.mean()), float(tok_s.std(ddof=1))
    half = T95.get(k - 1, 1.96) * sd / math.sqrt(k)
    lo, hi = mean - half, mean + half
    high_price = float(_usd_per_m(usd_h, lo)) if lo > 0 else math.inf
    return Interval(float(_usd_per_m(usd_h, hi)), high_price, f"t over {k} runs")


def _statistic(values: np.ndarray, stat: str) -> np.ndarray:
    """``stat`` along the last axis (the percentiles as ``stats.py`` computes them: linear interpolation)."""
    if stat == "mean":
        return values.mean(axis=-1)
    if stat == "max":
        return values.max(axis=-1)
    return np.quantile(values, QUANTILES[stat], axis=-1)


def _large_sample_interval(values: np.ndarray, stat: str) -> tuple[float, float]:
    """A statistic's 95 % interval for a large sample: the order statistics around a percentile's rank
    (the binomial interval for a quantile), the normal interval for a mean; a max has none."""
    n = len(values)
    if stat == "mean":
        half = Z95 * float(values.std(ddof=1)) / math.sqrt(n)
        return float(values.mean()) - half, float(values.mean()) + half
    if stat == "max":
        return float(values.max()), float(values.max())
    q = QUANTILES[stat]
    half = Z95 * math.sqrt(n * q * (1 - q))
    ranks = [max(0, math.floor(n * q - half)), min(n - 1, math.ceil(n * q + half))]
    lo, hi = np.partition(values, ranks)[ranks]
    return float(lo), float(hi)


def _binding_term(row: pd.Series, r: pd.DataFrame, slo: Slo, seed: int) -> tuple[str, bool]:
    """The term nearest its limit, as "ttft p99 1.53 s (1.20–1.91) ≤ 2 s", and whether its interval crosses it."""
    worst: tuple[float, SloTerm] | None = None
    for term in slo.terms:
        v = row.get(term.key)
        if v is not None and pd.notna(v) and term.limit > 0 and (worst is None or v / term.limit > worst[0]):
            worst = (float(v) / term.limit, term)
    if worst is None:
        return "", False
    term = worst[1]
    value = float(row[term.key])
    text = f"{term.key.replace('_', ' ')} {_fmt(term, value)}"
    if not term.per_request or term.metric not in r or r[term.metric].notna().sum() < 2:
        return f"{text} ≤ {_fmt(term, term.limit)}", False
    values = r[term.metric].dropna().to_numpy(dtype=float)
    if len(values) > LARGE_N:
        lo, hi = _large_sample_interval(values, term.stat)
    else:
        idx = np.random.default_rng(seed + 1).integers(0, len(values), size=(RESAMPLES, len(values)))
        lo, hi = np.quantile(_statistic(values[idx], term.stat), [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return f"{text} ({_fmt(term, lo)}–{_fmt(term, hi)}) ≤ {_fmt(term, term.limit)}", bool(hi > term.limit)


def _fmt(term: SloTerm, v: float) -> str:
    if term.metric == "error_rate":
        return f"{v:.1%}"
    return f"{v:.2f} s" if v >= 1 else f"{v * 1e3:.0f} ms"


def _why_never(s: pd.DataFrame, slo: Slo) -> str:
    """The lowest level tested and the term it breaks: the stack fails the SLO even there."""
    lowest = s.sort_values("level").iloc[0]
    broken = [f"{t.key.replace('_', ' ')} {_fmt(t, float(lowest[t.key]))} > {_fmt(t, t.limit)}"
              for t in slo.terms if t.key in lowest and pd.notna(lowest[t.key]) and lowest[t.key] > t.limit]
    return f"at {lowest['mode']} {lowest['level']:g}: " + ("; ".join(broken) or "no completed request")


# -- rendering -------------------------------------------------------------------------------------
def answer_table(items: list[Answer]) -> pd.DataFrame:
    """One row per (source, model, workload): winner, price and interval, runner-up, margin, verdict."""
    rows = []
    for a in items:
        w, r = a.winner, a.runner_up
        rows.append({
            "source": a.source, "model": a.model, "in→out": a.workload_label, "tokens priced": a.cost_basis,
            "cheapest meeting the SLO": w.stack if w else "none",
            "load": w.load if w else "–",
            "$/M tokens": _price(w) if w else "–",
            "95 % interval": _interval(w) if w else "–",
            "tok/s per $/h": round(w.tok_s_per_usd_h) if w else None,
            "n": w.n if w else 0,
            "runner-up": f"{r.stack} ({_price(r)})" if r else "–",
            "margin": f"+{a.margin:.0%}" if r else "–",
            "verdict": _short_verdict(a),
            "closest SLO term": (w.binding + (" — marginal" if w.marginal else "")) if w else "–",
            "next run": w.next_run() if w else "",
        })
    return pd.DataFrame(rows)


def _short_verdict(a: Answer) -> str:
    if a.winner is None:
        return "none meets it"
    if a.runner_up is None:
        return "only one meets it"
    return "**tie**" if a.tie else "cheapest"


def _price(p: Point) -> str:
    return f"{'≤ ' if p.lower_bound else ''}${p.usd_per_m:.3f}"


def _interval(p: Point) -> str:
    if math.isnan(p.ci.low):
        return "– (one request)"
    high = "∞" if math.isinf(p.ci.high) else f"{p.ci.high:.3f}"
    runs = f" ({p.repeats} runs)" if p.repeats > 1 else ""
    return f"{p.ci.low:.3f}–{high}{runs}"


def console_lines(items: list[Answer], width: int = 100) -> list[str]:
    """The answer as short lines for a terminal (never wider than ``width``, whatever the pipe)."""
    lines: list[str] = []
    for a in items:
        tag = " (modelled)" if a.source == "modelled" else ""
        lines.append(f"{a.model}, {a.workload_label} tokens{tag}:")
        w, r = a.winner, a.runner_up
        if w is None:
            lines.append("  no stack meets the SLO: " + "; ".join(f"{k} {v}" for k, v in a.never.items()))
            continue
        body = [f"{w.stack}: {_price(w)}/M {a.cost_basis} tokens (95 % interval {_interval(w)}), {w.load}, "
                f"n={w.n}; {a.verdict}."]
        if r is not None:
            body.append(f"Runner-up {r.stack}: {_price(r)}/M at {r.load}.")
        if w.next_run():
            body.append(f"Next: {w.next_run()}.")
        if a.never:
            body.append("Never meets it: " + ", ".join(sorted(a.never)) + ".")
        for text in body:
            lines += textwrap.wrap(text, width=width, initial_indent="  ", subsequent_indent="    ")
    return lines
