"""Fault injection: what goes wrong in real serving, on demand and seeded.

``--faults error_rate=0.05,statuses=429+500+503,disconnect_rate=0.01,slow_start=5,stall_rate=0.001,stall_s=2``

- error_rate: share of requests answered at once with an error status drawn from ``statuses``
  (with the server's own error body), as an overloaded or failing server answers;
- disconnect_rate: share of streamed requests whose connection is cut mid-stream (after a uniformly
  drawn token), as a crashed pod or a proxy timeout does;
- slow_start: seconds after start during which the health path and every API path answer 503,
  as a server loading weights does;
- stall_rate / stall_s: per engine step, the chance that the engine stalls for ``stall_s`` seconds
  before the step (every running stream pauses), as a GC pause or a CUDA-graph capture does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ALLOWED_STATUSES = (408, 429, 500, 502, 503, 504)


class FaultSpecError(ValueError):
    """A --faults string that cannot be parsed; the message names the key and the fix."""


@dataclass(frozen=True)
class Faults:
    error_rate: float = 0.0
    statuses: tuple[int, ...] = (500,)
    disconnect_rate: float = 0.0
    slow_start_s: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 1.0

    @property
    def any(self) -> bool:
        return bool(self.error_rate or self.disconnect_rate or self.slow_start_s or self.stall_rate)


def _rate(key: str, value: str) -> float:
    try:
        r = float(value)
    except ValueError:
        raise FaultSpecError(f"--faults {key}={value}: not a number; write a share like {key}=0.05") from None
    if not 0.0 <= r <= 1.0:
        raise FaultSpecError(f"--faults {key}={value}: must be between 0 and 1 (a share of requests)")
    return r


def _seconds(key: str, value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise FaultSpecError(f"--faults {key}={value}: not a number of seconds") from None
    if s < 0:
        raise FaultSpecError(f"--faults {key}={value}: must be >= 0 seconds")
    return s


def parse_faults(text: str | None) -> Faults:
    """Parse ``key=value,key=value``; statuses are joined with ``+``."""
    if not text:
        return Faults()
    values: dict[str, object] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise FaultSpecError(f"--faults: `{part}` is not key=value (e.g. error_rate=0.05)")
        if key in ("error_rate", "disconnect_rate", "stall_rate"):
            values[key] = _rate(key, value)
        elif key in ("slow_start", "slow_start_s"):
            values["slow_start_s"] = _seconds(key, value)
        elif key == "stall_s":
            values["stall_s"] = _seconds(key, value)
        elif key == "statuses":
            try:
                statuses = tuple(int(s) for s in value.split("+") if s)
            except ValueError:
                raise FaultSpecError(f"--faults statuses={value}: write codes joined by + (429+500+503)") from None
            bad = [s for s in statuses if s not in ALLOWED_STATUSES]
            if bad or not statuses:
                allowed = "+".join(map(str, ALLOWED_STATUSES))
                raise FaultSpecError(f"--faults statuses={value}: use codes from {allowed}")
            values["statuses"] = statuses
        else:
            raise FaultSpecError(f"--faults: unknown key `{key}`; known: error_rate, statuses, disconnect_rate, "
                                 "slow_start, stall_rate, stall_s")
    return Faults(**values)  # type: ignore[arg-type]


class FaultPlan:
    """Seeded draws: the same seed and request order give the same faults."""

    def __init__(self, faults: Faults, seed: int):
        self.faults = faults
        self._rng = random.Random(f"faults-{seed}")
        self._step_rng = random.Random(f"stalls-{seed}")

    def error_status(self) -> int | None:
        f = self.faults
        if f.error_rate and self._rng.random() < f.error_rate:
            return self._rng.choice(f.statuses)
        return None

    def disconnect_after(self, max_new: int) -> int | None:
        """Token count after which the stream is cut, or None."""
        f = self.faults
        if f.disconnect_rate and max_new > 1 and self._rng.random() < f.disconnect_rate:
            return self._rng.randint(1, max_new - 1)
        return None

    def stall(self) -> float:
        f = self.faults
        if f.stall_rate and self._step_rng.random() < f.stall_rate:
            return f.stall_s
        return 0.0
