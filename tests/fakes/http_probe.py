"""A loopback HTTP server for sandbox tests: it counts who reached it and how many at once.

``async with start_probe() as probe:`` gives a running :class:`ProbeServer`
on 127.0.0.1 (a random port); ``probe.url("/hello")`` is an address on it
(``host="localhost"`` names the same server by another host, one a grant
of ``http:127.0.0.1`` does not cover). Routes:

* ``/hello`` — ``hello from loopback``
* ``/redirect?to=URL[&code=302]`` — a redirect to ``URL``
* ``/chain?n=N`` — a redirect to ``/chain?n=N-1``; ``/chain?n=0`` answers ``end of chain``
* ``/loop`` — a redirect to itself
* ``/together?key=K&n=N`` — waits until N requests of key K are in flight
  at once, then answers ``together``; after ``wait_s`` without that,
  ``alone``. ``probe.max_in_flight[K]`` is the most that were ever in
  flight together: a test of concurrency with no clock in its assertions.
* ``/trickle`` — headers, then a byte every 0.2 s, for ever
* ``/big?n=N`` — N bytes

Every request is recorded in ``probe.hits`` as ``(host header, path)``, and
its headers in ``probe.headers`` (same order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import AsyncIterator

from aiohttp import web


class ProbeServer:
    def __init__(self, wait_s: float = 3.0) -> None:
        self.wait_s = wait_s
        self.hits: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self._changed = asyncio.Condition()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits_on(self, host: str) -> list[str]:
        """Paths requested with this host name (the ``Host`` header, port removed)."""
        return [path for h, path in self.hits if h.rsplit(":", 1)[0] == host]

    @web.middleware
    async def _record(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.hits.append((request.headers.get("Host", ""), request.path_qs))
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        return await handler(request)

    async def _hello(self, request: web.Request) -> web.Response:
        return web.Response(text="hello from loopback")

    async def _redirect(self, request: web.Request) -> web.Response:
        code = int(request.query.get("code", "302"))
        return web.Response(status=code, headers={"Location": request.query["to"]})

    async def _chain(self, request: web.Request) -> web.Response:
        n = int(request.query["n"])
        if n <= 0:
            return web.Response(text="end of chain")
        return web.Response(status=302, headers={"Location": f"/chain?n={n - 1}"})

    async def _loop(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop"})

    async def _together(self, request: web.Request) -> web.Response:
        key, n = request.query["key"], int(request.query["n"])
        async with self._changed:
            self.in_flight[key] += 1
            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
            self._changed.notify_all()
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.max_in_flight[key] >= n), self.wait_s)
                answer = "together"
            except asyncio.TimeoutError:
                answer = "alone"
            finally:
                self.in_flight[key] -= 1
        return web.Response(text=answer)

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write(b"x")
            await asyncio.sleep(0.2)

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"y" * int(request.query["n"]))

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/hello", self._hello)
        app.router.add_route("*", "/redirect", self._redirect)
        app.router.add_get("/chain", self._chain)
        app.router.add_get("/loop", self._loop)
        app.router.add_get("/together", self._together)
        app.router.add_get("/trickle", self._trickle)
        app.router.add_get("/big", self._big)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.asynccontextmanager
async def start_probe(**kwargs: float) -> AsyncIterator[ProbeServer]:
    server = ProbeServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
