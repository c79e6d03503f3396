"""One pod's share of a load test that N pods run together (a Kubernetes Indexed Job).

There is no coordinator. Every pod knows N (``--pods``), its index k (``JOB_COMPLETION_INDEX``, set
by the Job controller), the seed and one shared start time. From those alone it computes what the
run asks of it:

- a stage's share is ``schedule.share_of(spec, k, N)``: the one seeded schedule, arrivals g with
  g mod N == k, prompt g; the union of the pods' requests is exactly the requested process;
- stage 0 starts at ``--start-at``; stage s+1 at stage s's start + its planned span (the seeded
  schedule's last send, or its duration) + ``--cooldown`` + ``--stage-gap``. A pod still draining
  then starts late, and its dispatch delay says so;
- ``--start-at job+S``: the Job's ``metadata.creationTimestamp`` plus S seconds, read from the
  Kubernetes API with the pod's own service-account token (its Role may get that one Job and
  nothing else). The time is set by the API server when the Job is created, so the Job spec needs
  no timestamp that would change on every ``pulumi up``.

Clocks: times in a pod's records are its own monotonic clock, tied to UTC by its ``clockOrigin``.
The merge puts every pod on pod 0's origin through those wall-clock origins, so cross-pod offsets
are the nodes' clock differences. GKE nodes keep time with NTP against Google's time servers; each
pod records its kernel's own estimate of its clock error (``adjtimex``), and the merge reports the
bound it implies.
"""

from __future__ import annotations

import ctypes
import os
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from .errors import BadInput, Unreachable
from .kube import SERVICE_ACCOUNT_DIR, KubeApi

JOB_NAME_ENV = "JOB_NAME"
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by the Job controller in an Indexed Job's pods


def pod_index(given: int | None, env: dict[str, str] | None = None) -> int:
    """``--pod-index``, or the Indexed Job's ``JOB_COMPLETION_INDEX``."""
    if given is not None:
        return given
    raw = (os.environ if env is None else env).get(INDEX_ENV)
    if raw is None:
        raise BadInput(f"--pods needs this pod's index: --pod-index K, or {INDEX_ENV} in the environment",
                       "a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX; elsewhere give --pod-index")
    try:
        return int(raw)
    except ValueError:
        raise BadInput(f"{INDEX_ENV}={raw!r} is not an integer", "the Job controller sets it; do not override it") \
            from None


def parse_start_at(text: str) -> tuple[str, float]:
    """``("at", epoch)`` for epoch seconds or ISO-8601 UTC; ``("job", delay)`` for ``job+SECONDS``."""
    text = text.strip()
    if text.startswith("job"):
        rest = text[3:].strip() or "+0"
        try:
            delay = float(rest.removeprefix("+"))
        except ValueError:
            delay = -1.0
        if not rest.startswith("+") or delay < 0:
            raise BadInput(f"--start-at {text}: not job+SECONDS", "e.g. --start-at job+120")
        return "job", delay
    try:
        return "at", float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--start-at {text}: not a time", "give epoch seconds, 2026-12-03T10:00:00Z or job+120") \
            from None
    if when.tzinfo is None:
        raise BadInput(f"--start-at {text}: no time zone", "write it in UTC with a Z, e.g. 2026-12-03T10:00:00Z")
    return "at", when.timestamp()


def start_wall(text: str, timeout: float = 60.0) -> float:
    """The shared start of stage 0, in UNIX seconds."""
    kind, value = parse_start_at(text)
    return value if kind == "at" else job_created_at(timeout) + value


def job_created_at(timeout: float = 60.0) -> float:
    """The creation time of this pod's Job, from the Kubernetes API (retried while it is unreachable)."""
    name = os.environ.get(JOB_NAME_ENV)
    if not name:
        raise BadInput(f"--start-at job+S needs the Job's name in {JOB_NAME_ENV}",
                       "the load generator's Job sets it; elsewhere give --start-at a time")
    api = KubeApi.locate()
    if api is None:
        raise BadInput("--start-at job+S: not inside a Kubernetes pod (no KUBERNETES_SERVICE_HOST)",
                       "give --start-at a time instead")
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    namespace = os.environ.get("POD_NAMESPACE") or (namespace_file.read_text().strip()
                                                    if namespace_file.exists() else "default")
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
    deadline, wait, last = time.monotonic() + timeout, 0.5, ""
    with api.client() as client:
        while True:
            try:
                response = client.get(path)
                if response.status_code == 200:
                    stamp = response.json()["metadata"]["creationTimestamp"]
                    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                last = f"HTTP {response.status_code}"
                if response.status_code in (401, 403, 404):
                    break  # not transient: the Role or the name is wrong
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
            wait = min(wait * 2, 5.0)
    raise Unreachable(f"reading Job {namespace}/{name} from the Kubernetes API failed ({last})",
                      "the pod's service account needs `get` on its own Job (the load generator's Role grants it)")


class Timetable:
    """When each stage starts on the run's clock: the same answer in every pod."""

    def __init__(self, first: float, cooldown: float, gap: float):
        self.next, self.cooldown, self.gap = first, cooldown, gap

    def advance(self, span: float) -> None:
        """After a stage whose last scheduled send was ``span`` seconds after its start."""
        self.next += span + self.cooldown + self.gap


class _Timex(ctypes.Structure):
    """``struct timex`` (Linux, 64-bit): the fields read here, then room for the rest."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("_rest", ctypes.c_char * 256)]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def clock_sync() -> dict[str, Any]:
    """The kernel's view of this node's clock (``adjtimex`` with no change requested): whether NTP
    keeps it synchronized, and its estimated and maximum error in microseconds. None fields where
    the call is unavailable."""
    tx = _Timex()
    try:
        rc = ctypes.CDLL("libc.so.6", use_errno=True).adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return {"synchronized": None, "estErrorUs": None, "maxErrorUs": None}
    if rc < 0:
        return {"synchronized": None, "estErrorUs": None, "maxErrorUs": None}
    return {"synchronized": rc != TIME_ERROR and not tx.status & STA_UNSYNC,
            "estErrorUs": int(tx.esterror), "maxErrorUs": int(tx.maxerror)}


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
