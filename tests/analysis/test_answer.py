"""The answer table: cheapest stack under the SLO, runner-up, margin, interval, ties and lower bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.answer import _binding_term, _bootstrap_price, answer_table
from analysis.loader import load_runs
from analysis.report import analyse
from analysis.slo import parse_slo

from .resultsgen import Curve, write_run

SLO = parse_slo("ttft_p99=2s,tpot_p50=100ms")
# ttft(L) = 0.05 + 0.01 L: the SLO's 2 s TTFT breaks above level 195, so of 16…256 the best is 128
STEEP = Curve(ttft0=0.05, ttft_slope=0.01, tpot0=0.02, tpot_slope=0.0002)


def _answer(root: Path, slo=SLO):
    a = analyse(load_runs([str(root)]), slo)
    assert len(a.answers) == 1
    return a.answers[0]


def _usd_per_m(usd_h: float, curve: Curve, level: float, out_len: int = 64) -> float:
    tok_s = level * out_len / curve.e2e(level, out_len)
    return usd_h / (tok_s * 3600) * 1e6


def test_cheapest_runner_up_and_margin_follow_the_formula(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=STEEP, usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-a3", curve=STEEP, usd_per_hour=1.5)
    ans = _answer(tmp_path)
    w, r = ans.winner, ans.runner_up
    assert (w.stack, w.mode, w.level) == ("llama2-7b-g2", "batch", 128)
    assert w.usd_per_m == pytest.approx(_usd_per_m(1.0, STEEP, 128))
    assert r.stack == "llama2-7b-a3" and r.usd_per_m == pytest.approx(_usd_per_m(1.5, STEEP, 128))
    assert ans.margin == pytest.approx(0.5)
    assert not w.lower_bound and w.next_run() == ""  # batch 256 was tested and broke the TTFT term
    assert w.n == 256  # two closed-loop waves of 128
    assert w.tok_s_per_usd_h == pytest.approx(128 * 64 / STEEP.e2e(128, 64) / 1.0)
    # every request of a generated stage has the same latency: the interval is the point itself
    assert w.ci.low == pytest.approx(w.usd_per_m) and w.ci.high == pytest.approx(w.usd_per_m)
    assert not ans.tie and ans.verdict.startswith("cheapest")
    row = answer_table([ans]).iloc[0]
    assert row["cheapest meeting the SLO"] == "llama2-7b-g2" and row["margin"] == "+50%"
    assert row["verdict"] == "cheapest" and row["n"] == 256


def test_equal_stacks_tie_and_the_top_level_is_a_lower_bound(tmp_path: Path) -> None:
    flat = Curve(ttft_slope=0.001, tpot_slope=0.0001)  # meets the SLO at every level up to 256
    write_run(tmp_path, "llama2-7b-g2", curve=flat, usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-g2-fp8", curve=flat, usd_per_hour=1.0)
    ans = _answer(tmp_path)
    assert ans.tie and "tie" in ans.verdict
    w = ans.winner
    assert w.level == 256 and w.lower_bound and w.load == "≥ batch 256"
    assert "--levels 512" in w.next_run()
    row = answer_table([ans]).iloc[0]
    assert row["$/M tokens"].startswith("≤ $") and row["verdict"] == "**tie**"


def test_a_stack_that_never_meets_the_slo_says_why(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=STEEP, usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-a3", curve=Curve(ttft0=3.0), usd_per_hour=0.5)
    ans = _answer(tmp_path)
    assert [p.stack for p in ans.ranked] == ["llama2-7b-g2"]
    assert ans.never["llama2-7b-a3"].startswith("at batch 16: ttft p99")
    assert ans.verdict == "only stack meeting the SLO"


def test_the_rate_and_batch_modes_compete_for_one_answer(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=STEEP, usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-g2", curve=STEEP, usd_per_hour=1.0, mode="rate", levels=(1, 2))
    ans = _answer(tmp_path)
    assert len(ans.ranked) == 1 and ans.winner.mode == "batch"  # batch 128 carries more tokens per $


def test_repeated_runs_give_a_t_interval_across_them(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=STEEP, usd_per_hour=1.0, levels=(16,), run_id="a")
    write_run(tmp_path, "llama2-7b-g2", curve=Curve(ttft0=0.06, ttft_slope=0.01, tpot0=0.022, tpot_slope=0.0002),
              usd_per_hour=1.0, levels=(16,), run_id="b")
    w = _answer(tmp_path).winner
    assert w.repeats == 2 and w.ci.method == "t over 2 runs"
    assert w.ci.low < w.usd_per_m < w.ci.high


def test_bootstrap_interval_is_deterministic_and_narrows_with_more_requests() -> None:
    def frame(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"outputTokens": rng.integers(20, 200, n), "e2e": rng.uniform(1.0, 5.0, n)})

    small, large = frame(30, 1), frame(3000, 1)
    a = _bootstrap_price(2.0, 500.0, small, "output", seed=7)
    assert a == _bootstrap_price(2.0, 500.0, small, "output", seed=7)
    point = 2.0 / (500.0 * 3600) * 1e6
    assert a.low < point < a.high
    b = _bootstrap_price(2.0, 500.0, large, "output", seed=7)
    assert (b.high - b.low) < (a.high - a.low) / 4  # ~1/√100 of the width
    assert _bootstrap_price(2.0, 500.0, small.iloc[:1], "output", seed=7).method == "none"


def test_a_term_whose_interval_crosses_its_limit_is_marginal() -> None:
    slo = parse_slo("ttft_p90=1s")
    ttft = np.r_[np.full(85, 0.5), np.full(15, 1.2)]  # p90 is 1.2 s in some resamples and 0.5 s in others
    requests = pd.DataFrame({"ttft": ttft})
    row = pd.Series({"ttft_p90": float(np.quantile(ttft, 0.9))})
    text, marginal = _binding_term(row, requests, slo, seed=3)
    assert text.startswith("ttft p90") and marginal
    text, marginal = _binding_term(pd.Series({"ttft_p90": 0.5}), pd.DataFrame({"ttft": np.full(100, 0.5)}), slo, 3)
    assert not marginal and text == "ttft p90 500 ms (500 ms–500 ms) ≤ 1.00 s"


def test_large_samples_use_normal_intervals_that_agree_with_the_bootstrap() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    frame = pd.DataFrame({"outputTokens": rng.integers(20, 200, n), "e2e": rng.uniform(1.0, 5.0, n)})
    normal = _bootstrap_price(2.0, 500.0, frame, "output", seed=1)
    assert normal.method.startswith("normal approximation")
    boot = _bootstrap_price(2.0, 500.0, frame.iloc[:5_000], "output", seed=1)  # the resampling, at the limit
    # the same estimator: widths scale as 1/√n between the two sample sizes
    assert (normal.high - normal.low) == pytest.approx((boot.high - boot.low) * (5_000 / n) ** 0.5, rel=0.15)
    ttft = rng.exponential(0.5, n)
    text, marginal = _binding_term(pd.Series({"ttft_p99": float(np.quantile(ttft, 0.99))}),
                                   pd.DataFrame({"ttft": ttft}), parse_slo("ttft_p99=10s"), seed=0)
    lo, hi = (float(x.split()[0]) for x in text.split("(")[1].split(")")[0].split("–"))
    assert lo < np.quantile(ttft, 0.99) < hi and not marginal
