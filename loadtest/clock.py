"""The run's clock: ``time.perf_counter`` seconds since the run's origin (monotonic, sub-microsecond).

Every time in every record is read from one ``Clock`` so that scheduled, sent, first-token and end
times are directly comparable, and ``wall_origin`` ties them to UTC for correlation with anything
outside the run (server logs).
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self.wall_origin = time.time()

    def now(self) -> float:
        return time.perf_counter() - self.origin
