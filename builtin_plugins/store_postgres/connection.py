"""The pools, the way every call reaches the database, and the small helpers the areas share.

Two pools on one URL: an async one (``psycopg_pool.AsyncConnectionPool``)
for the ``async`` methods, and a small blocking one for ``kv_*``, which WASM
host functions call from worker threads. An async pool belongs to the event
loop it was opened on; a call from another loop (a CLI command's second
``asyncio.run``) opens a new one.

Each call takes a connection, runs in ONE transaction (PostgreSQL commits
durably by default: what returned is on disk) and gives the connection
back. Every connection is checked when taken, so after the database comes
back the pool hands out only live ones; a lost connection or a database
that does not answer becomes :class:`~exoclaw_hooks.StoreUnavailable`, one
sentence naming the URL without its password. TCP keepalives make a dead
peer (a killed gateway, a cut network) noticed within about half a minute,
so the server drops its connection and the locks it held.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from exoclaw_hooks import StoreUnavailable, iso_utc, safe_url

from .schema import migrate

log = logging.getLogger("exoclaw.store.postgres")

T = TypeVar("T")
Clock = Callable[[], _dt.datetime]
_UTC = _dt.timezone.utc

#: seconds to connect, and to wait for a free connection of the pool (a lost database fails a call this fast)
CONNECT_TIMEOUT_S = 3
#: seconds the pool retries a failed connection (backing off) before giving the slot up; the next call starts
#: afresh, so a database that comes back is used again within about this long, however long it was away
RECONNECT_S = 5
#: a connection given back less than this many seconds ago is not pinged before its next use
FRESH_S = 1.0
#: libpq keepalives: a silent peer is given up after idle + interval x count seconds (~25 s)
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
_LOST = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


class StoreClosedError(RuntimeError):
    """The store was used after it was closed."""


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return str(obj)


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)
dumps = _encoder.encode
loads = json.loads


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class PostgresBase:
    """Owns the pools, the clock and the URL (shown only without its password)."""

    def __init__(self, url: str, *, clock: Clock | None = None, max_connections: int = 20) -> None:
        self._url = url
        self.safe_url = safe_url(url)
        self._clock = clock or (lambda: _dt.datetime.now(_UTC))
        self._max = max_connections
        self._kwargs: dict[str, Any] = {
            "autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "exoclaw", **KEEPALIVES}
        self._sync: ConnectionPool | None = None
        self._pool: AsyncConnectionPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._pool_ready: asyncio.Future[Any] | None = None
        self._lanes: Any = None
        #: when each connection was last given back: one used a moment ago is not pinged again
        self._used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._closed = False

    # -- opening ----------------------------------------------------------

    def open(self) -> "PostgresBase":
        """Connect, apply the migrations (under the advisory lock), open the blocking pool. Blocking."""
        try:
            with psycopg.connect(self._url, **self._kwargs) as conn:
                applied = migrate(conn, self._now())
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot reach the PostgreSQL store {self.safe_url}: {one_line(exc)}") from None
        if applied:
            log.info("event=store_migrated url=%s applied=%s", self.safe_url, ",".join(applied))
        self._sync = ConnectionPool(self._url, min_size=1, max_size=4, kwargs=self._kwargs, open=False,
                                    check=ConnectionPool.check_connection, timeout=CONNECT_TIMEOUT_S,
                                    reconnect_timeout=RECONNECT_S,
                                    name="exoclaw-kv")
        self._sync.open(wait=False)
        return self

    async def _check(self, conn: Any) -> None:
        """Ping a connection before use unless it was in use a moment ago (a round trip saved per call on a
        busy gateway); a dead one is dropped and another taken, so a database that came back is used again."""
        if time.monotonic() - self._used.get(conn, 0.0) > FRESH_S:
            await AsyncConnectionPool.check_connection(conn)

    async def _apool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._pool_loop is not loop:
            # a pool belongs to the loop it was opened on: another loop gets its own
            self._pool_loop = loop
            self._pool = AsyncConnectionPool(
                self._url, min_size=2, max_size=self._max, kwargs=self._kwargs, open=False,
                check=self._check, timeout=CONNECT_TIMEOUT_S, reconnect_timeout=RECONNECT_S, name="exoclaw")
            self._pool_ready = loop.create_task(self._pool.open(wait=False))
        assert self._pool is not None and self._pool_ready is not None
        await self._pool_ready
        return self._pool

    def lanes(self) -> Any:
        """The session lanes shared by every gateway on this database (see :mod:`.lanes`)."""
        if self._lanes is None:
            from .lanes import PostgresLanes

            self._lanes = PostgresLanes(self)
        return self._lanes

    # -- identity ---------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        # shared: several gateways may use this database at once (budgets then count in its counters)
        return {"kind": "postgresql", "url": self.safe_url, "persistent": True, "shared": True}

    @property
    def persistent(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.safe_url}{' closed' if self._closed else ''}>"

    def _now(self) -> str:
        return iso_utc(self._clock())

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the PostgreSQL store {self.safe_url} cannot be reached: {one_line(exc)}")

    # -- running work -----------------------------------------------------

    async def _run(self, fn: Callable[..., Any], *args: Any, tx: bool = False) -> Any:
        """``await fn(conn, *args)`` on a pooled connection: in one transaction when ``tx`` (several
        statements that stand or fall together), else each statement its own (one round trip less twice)."""
        if self._closed:
            raise StoreClosedError("the store is closed")
        try:
            pool = await self._apool()
            async with pool.connection() as conn:
                try:
                    if not tx:
                        return await fn(conn, *args)
                    async with conn.transaction():
                        return await fn(conn, *args)
                finally:
                    self._used[conn] = time.monotonic()
        except _LOST as exc:
            raise self._unavailable(exc) from None

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` in one transaction on the blocking pool (the ``kv_*`` methods)."""
        if self._closed or self._sync is None:
            raise StoreClosedError("the store is closed")
        try:
            with self._sync.connection() as conn:
                return fn(conn, *args)  # each kv call is one statement: its own transaction
        except _LOST as exc:
            raise self._unavailable(exc) from None

    async def ping(self) -> None:
        async def one(conn: Any) -> None:
            await conn.execute("SELECT 1")

        await self._run(one)

    # -- closing ----------------------------------------------------------

    def close(self) -> None:
        """Close the pools (an async pool whose loop is gone is left to drop its sockets). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._sync is not None:
            self._sync.close()
        pool, loop = self._pool, self._pool_loop
        self._pool = self._pool_loop = None
        if pool is not None and loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                loop.create_task(pool.close())
            elif not loop.is_running():
                loop.run_until_complete(pool.close())

    async def aclose(self) -> None:
        """Close the pools, the async ones on this loop (where they were opened). Idempotent."""
        pool = self._pool if self._pool_loop is asyncio.get_running_loop() else None
        self._pool = self._pool_loop = None
        self.close()
        if pool is not None:
            await pool.close()
        if self._lanes is not None:
            await self._lanes.close()

    def __enter__(self) -> "PostgresBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
