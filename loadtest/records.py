"""The per-request record: what one request did, in seconds since the run started.

Every request the schedule sends produces exactly one record, whatever happens to it (success,
HTTP error, broken stream, timeout, Ctrl-C). Times come from ``time.perf_counter`` relative to the
run's origin, so intervals are monotonic and comparable across stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Error classes (docs/results-format.md). Each fault a user can meet has its own class.
ERROR_CLASSES = (
    "http_4xx",  # 4xx other than 429
    "http_429",  # rate limited
    "http_5xx",  # server error status
    "connect",  # connection refused / unreachable / DNS
    "reset",  # transport broke mid-response (reset, incomplete chunked body)
    "truncated",  # the body ended cleanly but without the protocol's end marker
    "invalid_json",  # a stream event that is not the JSON the protocol promises
    "server_error",  # the server reported an error inside a 200 stream (e.g. TGI/Triton `error` event)
    "timeout",  # the per-request deadline passed while the server was still sending
    "stalled",  # the server sent nothing for the read timeout (hung server)
    "cancelled",  # interrupted by the user (Ctrl-C) after the grace period
)


def error_for_status(status: int) -> str:
    if status == 429:
        return "http_429"
    if 400 <= status < 500:
        return "http_4xx"
    return "http_5xx"


def round_time(t: float | None) -> float | None:
    """A time as the results record it: to the microsecond (the JSONL and its columnar copy alike)."""
    return None if t is None else round(t, 6)


@dataclass
class RequestRecord:
    stage: str
    i: int
    scheduled: float
    warmup: bool
    inputTokensExpected: int | None = None
    outputTokensRequested: int | None = None
    sent: float | None = None
    first: float | None = None
    end: float | None = None
    # (t, tokens): the content tokens that arrived in one read; tuples of numbers are not tracked by the GC
    chunks: list[tuple[float, int]] = field(default_factory=list)
    inputTokens: int | None = None
    outputTokens: int | None = None
    tokenSource: str | None = None
    status: int | None = None
    error: str | None = None
    errorDetail: str | None = None
    inputTokensEstimated: bool = False  # inputTokens is the workload's estimate: no exact count existed
    adapter: str | None = None  # the LoRA adapter the request asked for (--lora-mix); None: the base model

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["chunks"] = [[round_time(t), n] for t, n in self.chunks]
        for key in ("scheduled", "sent", "first", "end"):
            d[key] = round_time(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)
