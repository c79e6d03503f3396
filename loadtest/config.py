"""The load configuration: every knob of a run, validated once, written into run.json verbatim.

Command-line strings are parsed here (levels, SLOs, length distributions) so that bad input fails
before anything is sent, with a message naming the flag and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import BadInput
from .protocols.base import Sampling
from .slo import SloError, as_limits, parse_terms

MODES = ("batch", "rate", "sweep")
ARRIVALS = ("constant", "poisson", "gamma")


@dataclass(frozen=True)
class LengthSpec:
    """Fixed (``lo == hi``) or uniformly distributed token lengths, drawn with the run's seed."""

    lo: int
    hi: int

    @property
    def fixed(self) -> bool:
        return self.lo == self.hi

    def __str__(self) -> str:
        return str(self.lo) if self.fixed else f"{self.lo}:{self.hi}"


def parse_length(flag: str, text: str) -> LengthSpec:
    """``128`` (fixed) or ``64:256`` (uniform, inclusive)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+)\s*)?", str(text))
    if not m:
        raise BadInput(f"{flag} {text!r}: not a token count", f"write {flag} 128 or {flag} 64:256 (uniform range)")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if lo < 1 or hi < lo:
        raise BadInput(f"{flag} {text!r}: lengths must be >= 1 and low <= high", f"e.g. {flag} 64:256")
    return LengthSpec(lo, hi)


def parse_levels(text: str, mode: str) -> list[float]:
    """``16,32,64`` -> [16, 32, 64]. Batch levels are integers; rates may be fractional."""
    out: list[float] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise BadInput(f"--levels: {part!r} is not a number", "write e.g. --levels 16,32,64") from None
        if value <= 0:
            raise BadInput(f"--levels: {part} must be > 0", "write e.g. --levels 16,32,64")
        if mode == "batch" and value != int(value):
            raise BadInput(f"--levels: batch sizes are whole numbers, got {part}", "write e.g. --levels 16,32")
        out.append(int(value) if mode == "batch" else value)
    if not out:
        raise BadInput("--levels is empty", "write e.g. --levels 16,32,64")
    return out


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")


def parse_seconds(flag: str, text: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise BadInput(f"{flag}: {text!r} is not a duration", "write e.g. 2s or 100ms")
    value = float(m.group(1))
    return value / 1000.0 if m.group(2) == "ms" else value


def parse_extra_body(text: str | None) -> dict[str, Any]:
    """``--extra-body '{"key": value}'``: a JSON object merged into every request body."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--extra-body is not valid JSON ({exc.msg} at character {exc.pos})",
                       """write a JSON object, e.g. --extra-body '{"repetition_penalty": 1.1}'""") from None
    if not isinstance(value, dict):
        raise BadInput("--extra-body must be a JSON object", """e.g. --extra-body '{"repetition_penalty": 1.1}'""")
    return value


def parse_headers(items: list[str] | None) -> dict[str, str]:
    """``--header K:V`` (repeatable): extra HTTP headers on every request."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name.strip()):
            raise BadInput(f"--header {name.strip() or item[:20]!r}...: not NAME:VALUE",
                           "write e.g. --header X-Request-Source:bench")
        out[name.strip()] = value.strip()
    return out


def parse_slo(text: str | None) -> dict[str, float]:
    """``ttft_p99=2s,tpot_p50=100ms`` -> {"ttft_p99": 2.0, "tpot_p50": 0.1} (seconds; loadtest/slo.py)."""
    try:
        return as_limits(parse_terms(text))
    except SloError as exc:
        raise BadInput(f"--slo: {exc.message}", exc.fix) from None


@dataclass
class LoadConfig:
    mode: str
    levels: list[float]
    arrival: str = "constant"
    requests_per_level: int | None = None
    duration: float | None = None
    warmup: float = 0.0
    cooldown: float = 0.0
    input_len: LengthSpec = field(default_factory=lambda: LengthSpec(128, 128))
    output_len: LengthSpec = field(default_factory=lambda: LengthSpec(64, 64))
    dataset: str | None = None
    tokenizer: str | None = None  # a local tokenizer.json for servers without a token counter (local_tokenizer.py)
    lora_mix: dict[str, float] = field(default_factory=dict)  # LoRA adapter -> share of requests (lora_mix.py)
    prefix_len: int = 0
    prefix_groups: int = 1
    seed: int = 0
    slo: dict[str, float] = field(default_factory=dict)
    api: str = "completions"
    ignore_eos: bool = True
    request_timeout: float = 600.0
    read_timeout: float = 120.0
    grace: float = 5.0
    scrape_interval: float = 1.0
    http_client: str = "aiohttp"
    sweep_of: str = "rate"
    sweep_max_stages: int = 8
    workers: int = 1
    burstiness: float = 1.0
    normalize_arrivals: bool = False
    ramp_up: float = 0.0
    max_concurrency: int | None = None
    # sampling: None leaves each to the server's default (as vllm bench serve and guidellm do)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    sampling_seed: int | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    setup_timeout: float = 30.0
    model_check: bool = True  # replay each stage on the stack's performance model (model_check.py)
    # one share of a run split over load-generator pods (loadtest/pods.py); None: the whole run
    pods: int | None = None
    pod_index: int = 0
    start_at: str | None = None  # when stage 0 starts: epoch seconds, ISO-8601 UTC, or job+SECONDS
    stage_gap: float = 15.0  # pods: seconds between one stage's last scheduled send and the next stage

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.top_k, self.sampling_seed)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise BadInput(f"--mode {self.mode}: unknown", f"use one of: {', '.join(MODES)}")
        if self.arrival not in ARRIVALS:
            raise BadInput(f"--arrival {self.arrival}: unknown", f"use one of: {', '.join(ARRIVALS)}")
        if self.requests_per_level is not None and self.duration is not None:
            raise BadInput("--requests-per-level and --duration bound a stage twice", "give only one of them")
        if self.requests_per_level is not None and self.requests_per_level < 1:
            raise BadInput("--requests-per-level must be >= 1", "e.g. --requests-per-level 200")
        if self.duration is not None and self.duration <= 0:
            raise BadInput("--duration must be > 0 seconds", "e.g. --duration 60")
        if self.warmup < 0 or self.cooldown < 0:
            raise BadInput("--warmup/--cooldown must be >= 0 seconds", "e.g. --warmup 10")
        if self.prefix_len < 0 or self.prefix_groups < 1:
            raise BadInput("--prefix-len must be >= 0 and --prefix-groups >= 1",
                           "e.g. --prefix-len 512 --prefix-groups 4")
        if self.read_timeout <= 0 or self.request_timeout <= 0:
            raise BadInput("--request-timeout/--read-timeout must be > 0", "e.g. --request-timeout 600")
        if self.workers < 1 or self.workers > 64:
            raise BadInput(f"--workers {self.workers}: must be 1..64", "e.g. --workers 2 (one per core)")
        if self.sweep_of not in ("rate", "batch"):
            raise BadInput(f"--sweep-of {self.sweep_of}: unknown", "use rate or batch")
        if not self.burstiness > 0 or (self.burstiness != 1.0 and self.arrival != "gamma"):
            raise BadInput(f"--burstiness {self.burstiness:g}: must be > 0, and shapes only --arrival gamma",
                           "e.g. --arrival gamma --burstiness 0.5 (burstier than Poisson)")
        if self.normalize_arrivals and (self.duration is not None or self.warmup > 0):
            raise BadInput("--normalize-arrivals scales a known number of requests to span N/R",
                           "bound each stage by --requests-per-level (not --duration) and drop --warmup")
        if not self.setup_timeout > 0:
            raise BadInput("--setup-timeout must be > 0 seconds", "e.g. --setup-timeout 60")
        if self.ramp_up < 0:
            raise BadInput("--ramp-up must be >= 0 seconds", "e.g. --ramp-up 30")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise BadInput("--max-concurrency must be >= 1", "e.g. --max-concurrency 64")
        if self.temperature is not None and self.temperature < 0:
            raise BadInput("--temperature must be >= 0", "e.g. --temperature 0.7")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise BadInput("--top-p must be in (0, 1]", "e.g. --top-p 0.9")
        if self.top_k is not None and self.top_k < 1 and self.top_k != -1:
            raise BadInput("--top-k must be >= 1 (or -1: all tokens)", "e.g. --top-k 50")
        if self.pods is not None:
            self._validate_pods()

    def _validate_pods(self) -> None:
        """A pod's share must be computable without talking to the other pods."""
        assert self.pods is not None
        if not 1 <= self.pods <= 1024:
            raise BadInput(f"--pods {self.pods}: must be 1..1024", "e.g. --pods 8")
        if not 0 <= self.pod_index < self.pods:
            raise BadInput(f"--pod-index {self.pod_index}: must be 0..{self.pods - 1}",
                           "leave it out in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is read)")
        if self.mode == "sweep":
            raise BadInput("--pods: --mode sweep picks each level from the last one's results, which pods cannot "
                           "share", "list the levels: --mode rate --levels 8,16,32 (or batch)")
        if self.workers != 1:
            raise BadInput("--pods and --workers both split the load", "give more pods instead of --workers")
        if not self.start_at:
            raise BadInput("--pods needs --start-at: the moment every pod starts stage 0",
                           "e.g. --start-at job+120 (the Job's creation + 120 s) or --start-at 2026-12-03T10:00:00Z")
        if self.mode == "batch" and self.duration is None and len(self.levels) > 1:
            raise BadInput("--pods with several batch levels needs --duration: a closed loop's pace is the "
                           "server's, so pods could not agree when the next level starts", "e.g. --duration 60")
        if self.stage_gap < 0:
            raise BadInput("--stage-gap must be >= 0 seconds", "e.g. --stage-gap 15")

    def stage_bound(self, mode: str, level: float) -> tuple[int | None, float | None]:
        """(count, duration) bounding one stage; a default when the user gave neither."""
        if self.requests_per_level is not None or self.duration is not None:
            return self.requests_per_level, self.duration
        if mode == "batch":
            return max(64, 4 * int(level)), None
        return max(50, round(20 * level)), None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_len"] = str(self.input_len)
        d["output_len"] = str(self.output_len)
        # header values may carry credentials: only their names are recorded
        d["headers"] = {k: "<redacted>" for k in self.headers}
        d["sampling"] = self.sampling.as_dict() or "server default"
        return {_camel(k): v for k, v in d.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
