"""The figures: drawn from the data the answer uses, one colour per stack, nothing drawn from nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.loader import load_runs
from analysis.plots import _pareto, cost_latency, per_dollar, stack_colors
from analysis.report import analyse
from analysis.slo import parse_slo

from .resultsgen import Curve, write_run


def test_pareto_front_keeps_only_points_nothing_beats_on_both_axes() -> None:
    pts = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4, 0.5], "y": [5.0, 6.0, 3.0, 3.5, 1.0]})
    assert _pareto(pts)[["x", "y"]].values.tolist() == [[0.1, 5.0], [0.3, 3.0], [0.5, 1.0]]


def test_a_stack_keeps_its_colour_whatever_else_is_in_the_figure() -> None:
    a = stack_colors({"llama2-7b-a3", "llama2-7b-g2"})
    b = stack_colors(["llama2-7b-g2", "llama2-7b-a3"])
    assert a == b and len(set(a.values())) == 2


def test_cost_latency_and_per_dollar_figures_from_the_answer(tmp_path: Path) -> None:
    write_run(tmp_path / "r", "llama2-7b-g2", curve=Curve(ttft0=0.05, ttft_slope=0.01), usd_per_hour=1.0)
    write_run(tmp_path / "r", "llama2-7b-a3", curve=Curve(ttft0=3.0), usd_per_hour=5.0)  # never meets the SLO
    slo = parse_slo("ttft_p99=2s,tpot_p50=100ms")
    a = analyse(load_runs([str(tmp_path / "r")]), slo)
    colors = stack_colors(set(a.stages["stack"]))
    path = cost_latency(a.stages, tmp_path, slo, colors)
    assert path is not None and path.stat().st_size > 10_000
    path = per_dollar(a.answers, tmp_path, slo, colors)
    assert path is not None and path.name == "per_dollar.png"
    # an SLO of the error rate alone has no latency axis to draw cost against
    assert cost_latency(a.stages, tmp_path / "none", parse_slo("error_rate=1%"), colors) is None
