"""A small Prometheus text-format writer with exact metric names.

The simulated endpoint must expose each server's *own* metric names and types: vLLM writes through
prometheus_client (counters end in ``_total``), TGI through the Rust ``metrics`` crate (no
``_total`` suffix), Triton and JetStream their own. A generic client library would rename some of
them, so the text is written here, line by line, exactly as each server writes it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def _num(v: float) -> str:
    if v == float("inf"):
        return "+Inf"
    return repr(float(v))


class Histogram:
    """Cumulative-bucket histogram (one label set)."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: Sequence[float]):
        self.buckets = list(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, v)] += 1
        self.sum += v
        self.count += 1

    def lines(self, name: str, labels: dict[str, str], le_format=_num) -> Iterable[str]:
        acc = 0
        for bound, c in zip([*self.buckets, float("inf")], self.counts, strict=True):
            acc += c
            yield f"{name}_bucket{_labels({**labels, 'le': le_format(bound)})} {_num(acc)}"
        yield f"{name}_sum{_labels(labels)} {_num(self.sum)}"
        yield f"{name}_count{_labels(labels)} {_num(self.count)}"


class Text:
    """Accumulates HELP/TYPE blocks and samples."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def metric(self, name: str, kind: str, help_: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.out.append(f"# HELP {name} {help_}")
        self.out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.out.append(f"{name}{_labels(labels)} {_num(value)}")

    def histogram(self, name: str, help_: str, series: Iterable[tuple[dict[str, str], Histogram]],
                  le_format=_num) -> None:
        self.out.append(f"# HELP {name} {help_}")
        self.out.append(f"# TYPE {name} histogram")
        for labels, h in series:
            self.out.extend(h.lines(name, labels, le_format))

    def render(self) -> str:
        return "\n".join(self.out) + "\n"
