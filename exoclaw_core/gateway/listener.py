"""Where the gateway listens, and what a connection may hold on to (issue 16, "slow clients").

:func:`listen` opens the gateway's sockets for an app built by ``build_app``
and serves it through aiohttp, with these guards in front of aiohttp's own
request handler (a :class:`_Guarded` protocol wraps each connection):

* **A cap** — ``[gateway] max_connections``; by default three quarters of the
  files the process may still open, less one accept burst (at most 10,000),
  so the gateway never runs out of descriptors for its store, its upstream
  calls, or the connections accepted in one go before any is shed. At the cap a
  new connection takes the place of the oldest one that is doing nothing
  (still sending its head, idle between keep-alive requests, or waiting for
  its client — a body, a WebSocket's token: :func:`waiting_for_client`); when
  every connection is busy, the new one is answered ``503`` with a JSON body
  and closed. So half-open connections cannot lock legitimate clients out,
  and the cap is never a wall for them.
* **Timeouts** — a connection must deliver its first request head within
  ``header_timeout_s``; an idle keep-alive connection is closed after
  ``idle_timeout_s`` (aiohttp's keep-alive timeout); a body must arrive within
  ``body_timeout_s`` (:func:`exoclaw_core.gateway.limits.read_body`).
* **Accept errors** — out of descriptors, CPython's accept loop (3.11) logs
  an error and schedules a retry for *every* attempt of a burst, and each
  retry does the same: 155,775 error lines in 10 s (issue 16). The listening
  socket reports only the first failure of a second to asyncio (which then
  pauses accepting for a second) and "would block" for the rest, and the
  loop's exception handler logs these once per interval.

Shed and timed-out connections are counted (``exoclaw_errors_total{kind}``)
and logged once per interval, never once per connection.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator

from aiohttp import web

from ..config.types import GatewayConfig

from ..logs import Every
from .keys import RUNTIME

log = logging.getLogger("exoclaw.listener")

#: the default cap never exceeds this many connections
MAX_DEFAULT_CONNECTIONS = 10_000
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: how often a repeated event (shed connections, accept errors) is logged
LOG_INTERVAL_S = 10.0


def free_descriptors() -> int | None:
    """How many more files this process may open (``None``: no known limit)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64
    return soft - in_use


def default_max_connections(backlog: int) -> int:
    """Three quarters of the free descriptors, less one accept burst of ``backlog`` (bounded).

    asyncio accepts up to ``backlog`` connections in one go before any of them
    is admitted (and another one shed), so that many must always be free.
    """
    free = free_descriptors()
    if free is None:
        return MAX_DEFAULT_CONNECTIONS
    return max(16, min(MAX_DEFAULT_CONNECTIONS, free * 3 // 4, free - backlog - 64))


def _busy_response(cap: int) -> bytes:
    body = json.dumps({"error": {
        "message": f"the gateway is serving its maximum of {cap} connections; retry shortly",
        "type": "server_error", "code": "too_many_connections", "param": None,
    }}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
    return head + body


class ConnectionGuard:
    """The open connections, oldest first, and what to do at the cap."""

    def __init__(self, gw: GatewayConfig, metrics: Any = None, *, backlog: int = 128):
        self.cap = gw.max_connections or default_max_connections(backlog)
        self.header_timeout_s = gw.header_timeout_s
        self.metrics = metrics
        self.conns: OrderedDict[_Guarded, None] = OrderedDict()
        #: aiohttp's handler of each connection -> its guard (a request knows only the former)
        self.by_handler: dict[Any, _Guarded] = {}
        self.busy_answer = _busy_response(self.cap)
        self._log = {kind: Every(log, LOG_INTERVAL_S) for kind in ("evicted", "refused", "header_timeout")}

    def _count(self, kind: str, level: int, text: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(f"connection_{kind}").inc()
        self._log[kind](level, "event=connection_%s open=%d cap=%d (%s)", kind, len(self.conns), self.cap, text)

    def admit(self, conn: _Guarded) -> bool:
        """Make room for ``conn`` (evicting the oldest idle connection at the cap); False: all are busy."""
        if len(self.conns) >= self.cap:
            victim = next((c for c in self.conns if not c.busy), None)
            if victim is None:
                self._count("refused", logging.WARNING, "every connection is busy: answered 503")
                return False
            self._count("evicted", logging.INFO, "the oldest idle connection made room for a new one")
            self.drop(victim)
        self.conns[conn] = None
        self.by_handler[conn.inner] = conn
        return True

    def drop(self, conn: _Guarded) -> None:
        self.forget(conn)
        conn.close()

    def header_timeout(self, conn: _Guarded) -> None:
        self._count("header_timeout", logging.INFO, "no request head within header_timeout_s")
        self.drop(conn)

    def forget(self, conn: _Guarded) -> None:
        self.conns.pop(conn, None)
        self.by_handler.pop(conn.inner, None)


#: the guard of the sockets :func:`listen` opened for an app (absent when the app is served otherwise)
GUARD = web.AppKey("exoclaw_connection_guard", ConnectionGuard)


@contextmanager
def waiting_for_client(request: web.Request) -> Iterator[None]:
    """While inside, ``request``'s connection counts as idle: it may be shed at the cap.

    For a handler that waits on its client (a request body, a WebSocket's
    token), so a client that never sends holds nothing a newcomer needs.
    """
    guard = request.app.get(GUARD)
    conn = guard.by_handler.get(request.protocol) if guard is not None else None
    if conn is None:
        yield
        return
    conn.waiting += 1
    try:
        yield
    finally:
        conn.waiting -= 1


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's request handler behind the guard's admission and header timer.

    Whether a connection is busy is read from three attributes of aiohttp's
    ``RequestHandler`` (``_request_in_progress``, ``_messages``,
    ``_request_count``: aiohttp has no public word for it);
    ``tests/core/gateway/test_listener.py`` fails if an aiohttp upgrade
    renames them (busy connections would be shed, silent ones kept).
    """

    __slots__ = ("guard", "inner", "transport", "timer", "refused", "waiting")

    def __init__(self, guard: ConnectionGuard, inner: Any):
        self.guard, self.inner = guard, inner
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.waiting = 0  # handlers inside waiting_for_client()

    @property
    def busy(self) -> bool:
        """A request is being handled (a WebSocket's whole life) or waits to be, and not on its client."""
        if self.waiting:
            return False
        inner = self.inner
        return bool(getattr(inner, "_request_in_progress", False) or getattr(inner, "_messages", None))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.guard.admit(self):
            self.refused = True
            transport.write(self.guard.busy_answer)  # type: ignore[attr-defined]
            transport.close()
            return
        self.inner.connection_made(transport)
        self.timer = asyncio.get_running_loop().call_later(self.guard.header_timeout_s, self._check_head)

    def _check_head(self) -> None:
        self.timer = None
        if getattr(self.inner, "_request_count", 1) == 0 and not self.busy:
            self.guard.header_timeout(self)

    def close(self) -> None:
        if not self.refused:
            self.inner.force_close()

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.refused else self.inner.eof_received()

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.guard.forget(self)
        if not self.refused:
            self.inner.connection_lost(exc)


class _ListeningSocket(socket.socket):
    """A listening socket that reports running out of descriptors at most once a second.

    asyncio pauses accepting for a second after the failure it sees; the
    rest of its burst sees "would block" and stops (see the module docstring).
    """

    __slots__ = ("quiet_until",)

    def accept(self) -> tuple[socket.socket, Any]:  # type: ignore[override]
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            now = time.monotonic()
            if now < getattr(self, "quiet_until", 0.0):
                raise BlockingIOError(errno.EAGAIN, "accept paused: out of resources") from None
            self.quiet_until = now + 0.5
            raise


def _sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening sockets for every address of ``host`` (one port for all of them)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen, socks = set(), []
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = _ListeningSocket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:  # the first socket's random port, for every address
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


class _Site(web.BaseSite):
    __slots__ = ("_sock", "_guard")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, guard: ConnectionGuard, backlog: int):
        super().__init__(runner, backlog=backlog)
        self._sock, self._guard = sock, guard

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server, guard = self._runner.server, self._guard
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Guarded(guard, server()), sock=self._sock, backlog=self._backlog)


class Listener:
    """The running sockets of one gateway; :meth:`close` stops them and the app (aiohttp's cleanup)."""

    def __init__(self, runner: web.AppRunner, sites: list[_Site], guard: ConnectionGuard, previous_handler: Any):
        self.runner, self.sites, self.guard = runner, sites, guard
        self._previous_handler = previous_handler

    @property
    def port(self) -> int:
        return self.sites[0]._sock.getsockname()[1]

    async def close(self) -> None:
        await self.runner.cleanup()
        asyncio.get_running_loop().set_exception_handler(self._previous_handler)


async def listen(app: web.Application, gw: GatewayConfig, *, backlog: int = 128) -> Listener:
    """Serve ``app`` on ``gw.bind``:``gw.port`` behind the connection guards; raises OSError."""
    loop = asyncio.get_running_loop()
    guard = ConnectionGuard(gw, app[RUNTIME].metrics, backlog=backlog)
    app[GUARD] = guard
    free = free_descriptors()
    if gw.max_connections and free is not None and gw.max_connections > free - backlog:
        log.warning("event=max_connections_high max_connections=%d free_descriptors=%d (the process may run out "
                    "of open files before the cap: raise the limit, ulimit -n, or lower the cap)",
                    gw.max_connections, free)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0,
                           keepalive_timeout=gw.idle_timeout_s)
    await runner.setup()
    try:
        socks = _sockets(gw.bind, gw.port, backlog)
    except OSError:
        await runner.cleanup()
        raise
    sites = [_Site(runner, sock, guard, backlog) for sock in socks]
    previous = loop.get_exception_handler()
    loop.set_exception_handler(_LoopErrors(previous))
    for site in sites:
        await site.start()
    log.info("event=listening bind=%s port=%d max_connections=%d header_timeout_s=%g idle_timeout_s=%g",
             gw.bind, sites[0]._sock.getsockname()[1], guard.cap, gw.header_timeout_s, gw.idle_timeout_s)
    return Listener(runner, sites, guard, previous)


class _LoopErrors:
    """The loop's exception handler while listening: accept failures once per interval."""

    def __init__(self, previous: Any):
        self.previous = previous
        self.accept_failed = Every(log, LOG_INTERVAL_S)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            self.accept_failed(logging.ERROR, "event=accept_failed error=%s (new connections wait in the "
                               "backlog; lower [gateway] max_connections or raise the open-files limit)",
                               context.get("exception"))
            return
        if "_start_serving" in repr(context.get("handle")) and isinstance(context.get("exception"), (OSError, ValueError)):
            return  # an accept retry that fired after its socket was closed (shutdown)
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)
