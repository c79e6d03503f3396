"""Result directories written by ``resultsgen`` from its stated latency formula."""

from __future__ import annotations

from pathlib import Path

import pytest

from .resultsgen import Curve, write_run

# Curves chosen so the guide's pattern holds by construction: A3 is much faster; for 7B its speed does
# not make up for its price, for 70B it does.
G2_7B = Curve(0.08, 0.002, 0.03, 0.0004)
A3_7B = Curve(0.02, 0.0002, 0.008, 0.00003)
G2_70B = Curve(0.5, 0.01, 0.12, 0.002)
A3_70B = Curve(0.05, 0.0005, 0.02, 0.00002)
G2_70B_FP8 = Curve(0.3, 0.006, 0.07, 0.001)
GUIDE_STACKS = {"llama2-7b-g2": G2_7B, "llama2-7b-a3": A3_7B, "llama2-70b-g2": G2_70B, "llama2-70b-a3": A3_70B,
                "llama2-70b-g2-fp8": G2_70B_FP8}


def prefill_curve(c: Curve) -> Curve:
    """Input-heavy (2048 → 8): TTFT 8 × longer, decode unchanged."""
    return Curve(c.ttft0 * 8, c.ttft_slope * 8, c.tpot0, c.tpot_slope)


def write_guide_runs(root: Path, *, modelled: bool = True) -> Path:
    """For each demo stack: a batch sweep 16→256 (128→64), a rate sweep and an input-heavy run (2048→8)."""
    for stack, curve in GUIDE_STACKS.items():
        write_run(root, stack, curve=curve, modelled=modelled)
        write_run(root, stack, curve=curve, mode="rate", levels=(1, 2, 4, 8), modelled=modelled)
        write_run(root, stack, curve=prefill_curve(curve), input_len=2048, output_len=8, levels=(8, 32),
                  modelled=modelled)
    return root


@pytest.fixture(scope="session")
def guide_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_guide_runs(tmp_path_factory.mktemp("guide-results"))
