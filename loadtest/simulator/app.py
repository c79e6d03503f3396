"""Assemble the simulated endpoint for a spec: runtime + dialect routes + metrics site(s).

``SimulatedEndpoint`` is the library entry (tests and the demo start one in-process):

    async with SimulatedEndpoint(spec, port=0) as ep:
        print(ep.url, ep.metrics_url)

Ports and paths come from ``spec.server`` (the catalog's servers.yaml). With ``port=0`` free ports
are chosen; with an explicit port the metrics port keeps the real server's offset from the HTTP
port (Triton 8000 -> 8002, JetStream 8000 -> 9100) unless ``metrics_port`` is given.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from stacks.autoscale import HPA_SYNC_S
from stacks.outputs import service_name
from stacks.spec import StackSpec

from ..kube import deployment_path
from .faults import Faults
from .fleet import DEFAULT_START_S, Fleet, set_observer
from .runtime import Runtime
from .servers import SimContext, builder

SIM_STATS_PATH = "/sim/stats"  # the simulator's own figures (emission lag, engine state); not a server API


class SimulatedEndpoint:
    def __init__(self, spec: StackSpec, *, host: str = "127.0.0.1", port: int = 0, metrics_port: int | None = None,
                 seed: int = 0, static_batch: bool = False, faults: Faults | None = None,
                 static_wait_s: float = 0.05, api_key: str | None = None, hpa_sync_s: float = HPA_SYNC_S,
                 replica_start_s: float = DEFAULT_START_S):
        self.spec = spec
        self.host = host
        self.port = port
        self.metrics_port = metrics_port
        options: dict[str, Any] = {"seed": seed, "static_batch": static_batch, "faults": faults,
                                   "static_wait_s": static_wait_s}
        # an autoscaled server is a fleet of replicas with the HPA that scales it (fleet.py)
        self.runtime = (Fleet(spec, make=lambda: Runtime(spec, **options), sync_s=hpa_sync_s,
                              start_s=replica_start_s, **options)
                        if spec.autoscale is not None else Runtime(spec, **options))
        self.ctx = SimContext(spec, self.runtime, seed)
        self.dialect = builder(spec.server.dialect)(self.ctx)
        set_observer(self.runtime, self.dialect.observer)
        if api_key is not None and self.dialect.guard is None:
            raise ValueError(f"{spec.server.name} has no authentication, so an API key cannot be enforced; "
                             "serve it without one (keep it in-cluster, as the stack's exposure rules require)")
        self._api_key = api_key
        self._runners: list[web.AppRunner] = []
        self.bound_port = 0
        self.bound_metrics_port = 0

    def _app(self, routes: list[web.RouteDef]) -> web.Application:
        middlewares = []
        guard, key = self.dialect.guard, self._api_key
        if key is not None and guard is not None:
            @web.middleware
            async def check_key(request: web.Request, handler: Any) -> web.StreamResponse:
                refusal = guard(request, key)
                return refusal if refusal is not None else await handler(request)

            middlewares.append(check_key)
        app = web.Application(client_max_size=64 * 2**20, middlewares=middlewares)
        app.add_routes(routes)
        app.router.add_get(SIM_STATS_PATH, self._stats)
        if isinstance(self.runtime, Fleet):
            app.router.add_get(deployment_path(self.spec.namespace, service_name(self.spec)), self._deployment)
        return app

    async def _deployment(self, request: web.Request) -> web.Response:
        assert isinstance(self.runtime, Fleet)
        return web.json_response(self.runtime.deployment(self.spec.namespace, service_name(self.spec)))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats(), dumps=lambda o: json.dumps(o, indent=1))

    def stats(self) -> dict[str, Any]:
        return self.runtime.stats()

    async def _site(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port, reuse_address=True, backlog=2048)
        await site.start()
        self._runners.append(runner)
        server = site._server  # the bound asyncio server: the only way to learn the port chosen for 0
        assert isinstance(server, asyncio.Server) and server.sockets
        return int(server.sockets[0].getsockname()[1])

    async def start(self) -> SimulatedEndpoint:
        self.runtime.start()
        self.bound_port = await self._site(self._app(self.dialect.routes), self.port)
        if self.dialect.separate_metrics_port:
            mport = self.metrics_port
            if mport is None:
                offset = self.spec.server.metrics_port - self.spec.server.http_port
                mport = self.port + offset if self.port else 0
            metrics_app = self._app([web.get(self.dialect.metrics_path, self._metrics)])
            self.bound_metrics_port = await self._site(metrics_app, mport)
        else:
            self.bound_metrics_port = self.bound_port
        return self

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.dialect.render_metrics(), content_type="text/plain", charset="utf-8")

    async def stop(self) -> None:
        if isinstance(self.runtime, Fleet):
            await self.runtime.aclose()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> SimulatedEndpoint:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.bound_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.bound_metrics_port}{self.dialect.metrics_path}"

    @property
    def health_url(self) -> str:
        return self.url + self.dialect.health_path
