"""How far the performance model is from published measurements it was *not* fitted to, per engine
profile and chip: the error band a prediction carries.

``stacks recommend`` ranks setups by predictions, so a pick that meets the SLO by 5 % with a model
that is typically 20 % off must say so. The band comes from the held-out serving points: the
published vLLM / TGI / JetStream measurements (``data/calibration-serving.json``) that the efficiency
factors were not fitted to, as ``benchmarks/fidelity.py --points`` scores them. Its output is kept
in ``data/serving-errors.json`` (a test recomputes it, so it cannot go stale):

    .venv/bin/python benchmarks/fidelity.py --points loadtest/simulator/data/calibration-serving.json \\
        --json loadtest/simulator/data/serving-errors.json

A band is the median and the largest |error| of the held-out points of the profile on that chip
when there are at least ``MIN_POINTS`` of them, else of the profile on any chip. A profile with no
held-out point has no band: its predictions are unvalidated, and say so. So has a chip no published
serving measurement was taken on (fitted or held out, any engine: the B200, the RTX PRO 6000 and
the H200 today): another chip's band says nothing about a datasheet nobody has checked.
"""

from __future__ import annotations

import functools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .efficiency import DATA_DIR

ERRORS_FILE = DATA_DIR / "serving-errors.json"
MIN_POINTS = 2  # held-out points on one chip before the chip gets its own band


@dataclass(frozen=True)
class ErrorBand:
    """The model's typical (median) and worst |relative error| for one engine profile on one chip."""

    profile: str
    chip: str
    median: float | None
    worst: float | None
    n: int
    basis: str  # which points: "vllm on nvidia-l4", "vllm on any chip", or why there is none

    @property
    def validated(self) -> bool:
        return self.median is not None

    def __str__(self) -> str:
        if self.median is None or self.worst is None:
            return f"unvalidated ({self.basis})"
        return f"±{self.median:.0%} typical, ±{self.worst:.0%} worst ({self.n} held-out points, {self.basis})"


@functools.cache
def _held_out(path: Path = ERRORS_FILE) -> tuple[dict[str, Any], ...]:
    if not path.is_file():
        return ()
    return tuple(r for r in json.loads(path.read_text())["points"] if not r["fitted"])


@functools.cache
def _measured_chips(path: Path = ERRORS_FILE) -> frozenset[str]:
    """Chips with at least one published serving measurement, fitted or held out."""
    if not path.is_file():
        return frozenset()
    return frozenset(str(r["chip"]) for r in json.loads(path.read_text())["points"] if r.get("chip"))


def error_band(profile: str, chip: str, path: Path = ERRORS_FILE) -> ErrorBand:
    """The band for predictions of ``profile`` (an efficiency profile, ``efficiency.profile_for``) on ``chip``."""
    if chip not in _measured_chips(path):
        return ErrorBand(profile, chip, None, None, 0, f"no published serving measurement on {chip}")
    rows = [r for r in _held_out(path) if r["profile"] == profile]
    on_chip = [r for r in rows if r.get("chip") == chip]
    if len(on_chip) >= MIN_POINTS:
        chosen, basis = on_chip, f"{profile} on {chip}"
    elif rows:
        chosen, basis = rows, f"{profile} on any chip"
    else:
        return ErrorBand(profile, chip, None, None, 0, f"no published measurement of {profile} held out from its fit")
    errors = [abs(float(r["error"])) for r in chosen]
    return ErrorBand(profile, chip, statistics.median(errors), max(errors), len(errors), basis)
