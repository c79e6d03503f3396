"""An autoscaled server: replicas behind one Service, scaled by an emulated HorizontalPodAutoscaler.

For a stack with ``server.autoscaling`` the simulated endpoint is a ``Fleet``: replica 0 is the
``Runtime`` itself, further replicas are Runtimes of their own (each its own engine and clock, all
on one event loop). The Service's load balancing is round robin over ready replicas. Every
``sync_s`` seconds the HPA reads the metric it is configured with from every ready replica (the
queue or the running batch, as the server's own gauge would show it), and applies Kubernetes'
rule (``AutoscaleSpec.desired``: ceil(current x average / target), 10 % tolerance, clamped):
a scale-up starts new replicas that take ``start_s`` to become ready (image pull, weight load; a
node the pool must add first is not modelled); a scale-down takes the highest recommendation of the
stabilization window, and the removed replicas take no new requests and leave once idle.

The Deployment's state (spec and ready replicas) is served where the Kubernetes API has it
(``kube.deployment_path``), so the load tester records replicas over time exactly as it does
against a cluster. A scrape of ``/metrics`` reaches replica 0, as a scrape through a Service
reaches one pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from stacks.autoscale import HPA_SYNC_S, AutoscaleSpec
from stacks.spec import StackSpec

from .engine import Engine, Sequence
from .runtime import Observer, Runtime, Stream

DEFAULT_START_S = 60.0  # a new replica's start to ready: container start and weight load (no node scale-up)


class Fleet(Runtime):
    def __init__(self, spec: StackSpec, *, make: Callable[[], Runtime], sync_s: float = HPA_SYNC_S,
                 start_s: float = DEFAULT_START_S, **kwargs: Any):
        super().__init__(spec, **kwargs)
        assert spec.autoscale is not None
        self.autoscale: AutoscaleSpec = spec.autoscale
        self.make, self.sync_s, self.start_s = make, sync_s, start_s
        self.extra: list[Runtime] = []  # replicas 1..n-1
        self.ready_at: dict[int, float] = {}  # id(runtime) -> simulated time it becomes ready
        self.draining: set[int] = set()
        self.owner: dict[int, tuple[Sequence, Runtime]] = {}  # id(sequence) -> it and the replica serving it
        self.desired_replicas = 1
        self.history: list[tuple[float, int]] = []  # (time, recommendation): the scale-down window
        self.timeline: list[tuple[float, int, int]] = []  # (time, desired, ready)
        self._rr = itertools.count()
        self._hpa: asyncio.Task[None] | None = None
        self._observer = self.observer

    # -- the replicas --------------------------------------------------------------------------
    @property
    def replicas(self) -> list[Runtime]:
        return [self, *self.extra]

    def is_ready(self, r: Runtime) -> bool:
        return r is self or self.now() >= self.ready_at.get(id(r), 0.0)

    def serving(self) -> list[Runtime]:
        return [r for r in self.replicas if self.is_ready(r) and id(r) not in self.draining]

    def start(self) -> None:
        super().start()
        for _ in range(self.autoscale.min_replicas - 1):
            self._add(ready_now=True)
        self.desired_replicas = self.autoscale.min_replicas
        self._hpa = asyncio.get_running_loop().create_task(self._hpa_loop())

    async def aclose(self) -> None:
        if self._hpa is not None:
            self._hpa.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hpa

    def _add(self, ready_now: bool = False) -> None:
        r = self.make()
        r.observer = self._observer
        r.start()
        self.extra.append(r)
        self.ready_at[id(r)] = self.now() + (0.0 if ready_now else self.start_s)

    # -- requests: round robin over the ready replicas ----------------------------------------------
    def submit(self, prompt_len: int, max_new: int, stream: Stream, adapter: str | None = None) -> Sequence:
        ready = self.serving()
        r = ready[next(self._rr) % len(ready)]
        seq = Runtime.submit(r, prompt_len, max_new, stream, adapter)
        self.owner[id(seq)] = (seq, r)
        return seq

    def cancel(self, seq: Sequence) -> None:
        _, r = self.owner.get(id(seq), (seq, self))
        Runtime.cancel(r, seq)

    # -- the HPA ------------------------------------------------------------------------------------
    def metric(self, engine: Engine) -> float:
        """The per-replica value of the configured metric, as that replica's own gauge reports it."""
        if self.autoscale.role == "waiting":
            return float(engine.num_waiting)
        if self.spec.server.name == "jetstream":  # jetstream_slots_used_percentage
            return 100.0 * engine.num_running / max(self.spec.max_batch, 1)
        return float(engine.num_running)

    def sync(self) -> None:
        """One HPA sync: recommend, stabilize scale-down, act; forget replicas that have drained."""
        now = self.now()
        self.owner = {k: (q, r) for k, (q, r) in self.owner.items() if not (q.done or q.cancelled)}
        for r in [r for r in self.extra if id(r) in self.draining and r.engine.num_running + r.engine.num_waiting == 0]:
            self.extra.remove(r)
            self.draining.discard(id(r))
        ready = self.serving()
        current = len([r for r in self.replicas if id(r) not in self.draining])
        if ready:
            value = sum(self.metric(r.engine) for r in ready) / len(ready)
            recommendation = self.autoscale.desired(current, value)
        else:
            recommendation = current
        self.history = [(t, d) for t, d in self.history if now - t <= self.autoscale.scale_down_window]
        self.history.append((now, recommendation))
        desired = recommendation if recommendation >= current else max(d for _, d in self.history)
        for _ in range(desired - current):
            self._add()
        for r in reversed(self.extra):
            if current <= desired:
                break
            if id(r) not in self.draining:
                self.draining.add(id(r))
                current -= 1
        self.desired_replicas = desired
        self.timeline.append((round(now, 3), desired, self.ready_count()))

    def ready_count(self) -> int:
        return len(self.serving())

    async def _hpa_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_s)
            self.sync()

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment as the Kubernetes API shows it (the fields the load tester reads)."""
        live = len([r for r in self.replicas if id(r) not in self.draining])
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": self.desired_replicas},
                "status": {"replicas": live + len(self.draining), "readyReplicas": self.ready_count(),
                           "availableReplicas": self.ready_count()}}

    def stats(self) -> dict[str, object]:
        out = super().stats()
        out["autoscaling"] = {"desired": self.desired_replicas, "ready": self.ready_count(),
                              "timeline": [{"t": t, "desired": d, "ready": n} for t, d, n in self.timeline[-200:]]}
        return out


def set_observer(runtime: Runtime, observer: Observer) -> None:
    """The dialect's metrics observer, on every replica (request counters are the Service's)."""
    runtime.observer = observer
    if isinstance(runtime, Fleet):
        runtime._observer = observer
        for r in runtime.extra:
            r.observer = observer
