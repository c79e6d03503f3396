"""The run's clock: ``time.perf_counter`` seconds since the run's origin (monotonic, sub-microsecond).

Every time in every record is read from one ``Clock`` so that scheduled, sent, first-token and end
times are directly comparable, and ``wall_origin`` ties them to UTC for correlation with anything
outside the run (server logs).
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self, origin: float | None = None, wall_origin: float | None = None) -> None:
        """A fresh origin, or a given one (worker processes share the parent's: perf_counter is
        CLOCK_MONOTONIC on Linux, one clock for every process on the host)."""
        self.origin = time.perf_counter() if origin is None else origin
        self.wall_origin = time.time() if wall_origin is None else wall_origin

    def now(self) -> float:
        return time.perf_counter() - self.origin
