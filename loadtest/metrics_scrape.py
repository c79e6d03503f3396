"""Scrapes the server's Prometheus ``/metrics`` during the run: how the guide "monitors the batch size".

Every ``interval`` seconds one GET, parsed with prometheus_client's text parser; gauges and
counters are kept whole, histograms and summaries only as ``_sum`` / ``_count`` (buckets would
multiply the file size by ~20 and the per-stage summary does not use them). Each scrape is one line
of ``server_metrics.jsonl``: ``{"t", "stage", "samples": {"name{labels}": value}}``.

A failing scrape never stops the load: it is counted and reported in the stage summary.

With a Deployment to watch (an autoscaled server: ``kube.py``), every scrape also reads its replica
counts from the Kubernetes API, added to the same line under kube-state-metrics' names
(``kube_deployment_status_replicas_available{...}``), so a stage's throughput can be read against
the replicas that served it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .clock import Clock
from .http import Transport, TransportError
from .kube import KubeApi, replica_samples
from .protocols import METRIC_ROLES

# Per-stage summary: which series mean "running batch", "queue", "KV-cache usage", "preemptions".
# Each protocol module names its server's series; the first selector present in a scrape wins
# (servers and versions name them differently).
RUNNING = METRIC_ROLES["running"]
WAITING = METRIC_ROLES["waiting"]
KV_USAGE = METRIC_ROLES["kv_usage"]
PREEMPTIONS = METRIC_ROLES["preemptions"]
#: the ready replicas of the server's Deployment (read from the Kubernetes API, not the server)
REPLICAS = ("kube_deployment_status_replicas_available",)


def _matches(key: str, selector: str) -> bool:
    name, _, label = selector.partition("{")
    label = label.rstrip("}")
    return (key == name or key.startswith(name + "{")) and (not label or label in key)


def metric_role(key: str) -> str | None:
    """The role of one scraped series (``name{labels}``), or None: what analysis keeps and how it
    labels it, by the same selectors the per-stage summary uses."""
    for role, selectors in (*METRIC_ROLES.items(), ("replicas", REPLICAS)):
        if any(_matches(key, sel) for sel in selectors):
            return role
    return None


def parse_samples(text: str) -> dict[str, float]:
    """Prometheus text -> {"name{k=v,...}": value}; buckets and quantiles dropped."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        histogram_like = family.type in ("histogram", "gaugehistogram", "summary")
        for s in family.samples:
            if histogram_like and not (s.name.endswith("_sum") or s.name.endswith("_count")):
                continue
            if isinstance(s.value, float) and math.isnan(s.value):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
    return out


def _series(samples: dict[str, float], names: tuple[str, ...]) -> float | None:
    """Sum of every series of the first selector present (e.g. across engines or models)."""
    for selector in names:
        values = [v for k, v in samples.items() if _matches(k, selector)]
        if values:
            return sum(values)
    return None


def summarize(scrapes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-stage server summary from that stage's scrapes (docs/metrics.md)."""
    running = [v for s in scrapes if (v := _series(s["samples"], RUNNING)) is not None]
    waiting = [v for s in scrapes if (v := _series(s["samples"], WAITING)) is not None]
    kv = [v for s in scrapes if (v := _series(s["samples"], KV_USAGE)) is not None]
    pre = [v for s in scrapes if (v := _series(s["samples"], PREEMPTIONS)) is not None]
    replicas = [v for s in scrapes if (v := _series(s["samples"], REPLICAS)) is not None]
    return {
        "scrapes": len(scrapes),
        "runningMean": round(sum(running) / len(running), 3) if running else None,
        "runningMax": max(running) if running else None,
        "waitingMax": max(waiting) if waiting else None,
        "kvCacheUsageMax": max(kv) if kv else None,
        "preemptions": (pre[-1] - pre[0]) if len(pre) >= 2 else (0.0 if pre else None),
        **({"replicasMean": round(sum(replicas) / len(replicas), 3), "replicasMin": min(replicas),
            "replicasMax": max(replicas)} if replicas else {}),
    }


class Scraper:
    def __init__(self, url: str, transport: Transport, clock: Clock, interval: float,
                 sink: Callable[[dict[str, Any]], None], headers: dict[str, str] | None = None,
                 deployment: tuple[KubeApi, str] | None = None):
        self.url = url
        self.transport = transport
        self.clock = clock
        self.interval = interval
        self.sink = sink
        self.headers = headers
        self.stage: str | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.scrapes: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.deployment = deployment  # (the API, the Deployment's path): replica counts with each scrape
        self._kube: httpx.AsyncClient | None = deployment[0].async_client() if deployment else None
        self.replica_failures = 0

    async def scrape_once(self) -> dict[str, Any] | None:
        t = self.clock.now()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the inner call completes, and the scrape loop would never stop
            async with asyncio.timeout(10):
                status, body = await self.transport.get(self.url, self.headers)
            if status != 200:
                raise TransportError("http", f"HTTP {status}")
            samples = parse_samples(body.decode("utf-8", "replace"))
        except (TransportError, TimeoutError, ValueError) as exc:
            self.failures += 1
            self.last_error = f"{self.url}: {exc}"
            return None
        samples.update(await self._replicas())
        entry = {"t": round(t, 6), "stage": self.stage, "samples": samples}
        self.scrapes.append(entry)
        self.sink(entry)
        return entry

    async def _replicas(self) -> dict[str, float]:
        if self._kube is None or self.deployment is None:
            return {}
        try:
            response = await self._kube.get(self.deployment[1])
            if response.status_code == 200:
                return replica_samples(response.json())
            self.last_error = f"Kubernetes API: {self.deployment[1]}: HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            self.last_error = f"Kubernetes API: {type(exc).__name__}: {exc}"
        self.replica_failures += 1
        return {}

    async def _loop(self) -> None:
        while not self._stopping:
            started = self.clock.now()
            await self.scrape_once()
            await asyncio.sleep(max(0.0, self.interval - (self.clock.now() - started)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop; never hangs (a lost cancellation is re-sent, the flag ends the loop anyway)."""
        self._stopping = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                task.exception()
        if self._kube is not None:
            await self._kube.aclose()

    def for_stage(self, stage_id: str) -> list[dict[str, Any]]:
        return [s for s in self.scrapes if s["stage"] == stage_id]
