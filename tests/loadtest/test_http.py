"""The HTTP transports as a load generator needs them: every request stands alone."""

from __future__ import annotations

import asyncio

from aiohttp import web

from loadtest.http import make_transport


def test_a_cookie_from_one_answer_is_not_sent_with_the_next_request() -> None:
    """A load balancer with cookie-based session affinity would pin every later request to the
    replica that answered first; the transports keep no cookies, so each request is a new client's."""
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Cookie"))
        resp = web.Response(text="data: [DONE]\n\n")
        resp.set_cookie("GCLB", "replica-1")
        return resp

    async def main(client: str) -> None:
        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        transport = make_transport(client)
        try:
            for _ in range(2):
                async with transport.stream(f"http://127.0.0.1:{port}/v1/completions", b"{}", {}) as resp:
                    assert resp.status == 200
                    assert b"[DONE]" in await resp.read()
        finally:
            await transport.aclose()
            await runner.cleanup()

    for client in ("aiohttp", "httpx"):
        seen.clear()
        asyncio.run(main(client))
        assert seen == [None, None], client
