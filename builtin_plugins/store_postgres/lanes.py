"""Session lanes across gateways: a session's turns run one at a time, in the order they asked, on every gateway.

The mechanism is PostgreSQL's own lock queue: a session-level advisory lock
``hashtextextended(session_key, …)`` held for the whole turn (nothing is held
open in a transaction: no "idle in transaction") and released when the turn
is stored. A turn at the head of its gateway's in-process lane first tries
the lock without waiting (``pg_try_advisory_lock``) on the gateway's one
*holder* connection, which holds the locks of every session it won that way:
the common, uncontended case costs no connection of its own. When another
gateway holds the session, the turn takes a connection of its own and waits
there (``pg_advisory_lock``). PostgreSQL grants a contended exclusive lock to
its waiters in the order they asked, and hands a released lock straight to
the first waiter (so a try never jumps the queue): across gateways the
session's turns run one at a time in the order they reached the database;
within a gateway the in-process lane keeps arrival order and sends one
request per session at a time.

A gateway that dies releases its sessions with its connections: a killed
process's sockets are closed by its kernel, so the server ends those
backends (and drops their locks) at once; a gateway cut off by the network
is found dead by TCP keepalives, asked of the server for these connections
(``tcp_keepalives_idle`` 10 s, then 3 probes 5 s apart: about 25 s). Its
acknowledged turns are committed: a turn's reply is sent only after its
commit. Nothing is left behind to reap, since the queue lives in the
server's lock table, not in rows.

A waiting connection whose lock request was interrupted (a cancelled turn, a
lost database) is closed rather than returned to the pool, so a lock granted
at the last moment can never stay behind on a pooled connection; a try on
the holder that a cancelled turn stopped waiting for is finished and, if it
won, released.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exoclaw_hooks import StoreUnavailable

#: seed of the lock keys (hashtextextended(session_key, LANE_SEED)): apart from the migrations' key
LANE_SEED = 0x6C616E65
#: while a turn waits for a lane connection, it checks this often that the database is there at all
CHECK_EVERY_S = 3.0
#: server-side keepalives on lane connections: a vanished gateway's locks go within ~25 s
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


class PostgresLanes:
    """``hold(session_key)``: the session's cross-gateway lane (see the module docstring)."""

    def __init__(self, store: Any, max_connections: int = 32) -> None:
        self._store = store
        self._max = max_connections
        self._pool: AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future[Any] | None = None
        self._holder: Any = None
        self._holder_loop: asyncio.AbstractEventLoop | None = None
        self._holder_lock: asyncio.Lock | None = None
        self.held = 0
        #: turns that had to wait for another gateway (on a connection of their own)
        self.contended = 0

    def _conn_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self._store._kwargs)
        if "options=" not in self._store._url:
            kwargs["options"] = SERVER_KEEPALIVES
        return kwargs

    async def _on_holder(self, sql: str, session_key: str) -> tuple[Any, Any]:
        """Run ``sql`` for the session on the holder connection (connecting it if needed): (result, connection)."""
        loop = asyncio.get_running_loop()
        if self._holder_loop is not loop:
            self._holder_loop, self._holder, self._holder_lock = loop, None, asyncio.Lock()
        assert self._holder_lock is not None
        async with self._holder_lock:
            conn = self._holder
            try:
                if conn is None or conn.closed:
                    conn = self._holder = await psycopg.AsyncConnection.connect(self._store._url, **self._conn_kwargs())
                cur = await conn.execute(sql, (session_key, LANE_SEED))
                return (await cur.fetchone())[0], conn
            except Exception as exc:  # noqa: BLE001 - a lost database, in one sentence; its locks died with it
                self._holder = None
                if conn is not None:
                    await _discard(conn)
                raise self._store._unavailable(exc) from None

    async def _release_on_holder(self, session_key: str, conn: Any) -> None:
        if self._holder is conn and not conn.closed:  # else the lock went with the connection
            try:
                await self._on_holder("SELECT pg_advisory_unlock(hashtextextended(%s, %s))", session_key)
            except Exception:  # noqa: BLE001 - the holder is dropped: its locks go with it
                pass

    def _release_if_won(self, session_key: str, tried: asyncio.Task[Any]) -> None:
        """A try whose turn was cancelled meanwhile: give the lock back if it was won."""
        if not tried.cancelled() and tried.exception() is None and tried.result()[0]:
            asyncio.get_running_loop().create_task(self._release_on_holder(session_key, tried.result()[1]))

    async def _lane_pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._pool = AsyncConnectionPool(
                self._store._url, min_size=0, max_size=self._max, kwargs=self._conn_kwargs(), open=False,
                check=AsyncConnectionPool.check_connection, timeout=CHECK_EVERY_S,
                reconnect_timeout=5, name="exoclaw-lanes")
            self._ready = loop.create_task(self._pool.open(wait=False))
        assert self._pool is not None and self._ready is not None
        await self._ready
        return self._pool

    @asynccontextmanager
    async def hold(self, session_key: str) -> AsyncIterator[None]:
        tried = asyncio.ensure_future(
            self._on_holder("SELECT pg_try_advisory_lock(hashtextextended(%s, %s))", session_key))
        try:
            won, holder = await asyncio.shield(tried)
        except asyncio.CancelledError:
            tried.add_done_callback(lambda t: self._release_if_won(session_key, t))
            raise
        if won:
            self.held += 1
            try:
                yield
            finally:
                self.held -= 1
                await asyncio.shield(self._release_on_holder(session_key, holder))
            return
        self.contended += 1
        async with self._wait_for(session_key):
            yield

    @asynccontextmanager
    async def _wait_for(self, session_key: str) -> AsyncIterator[None]:
        """Queue for the session on a connection of its own (another gateway holds it)."""
        store = self._store
        try:
            pool = await self._lane_pool()
            while True:
                try:
                    conn = await pool.getconn(timeout=CHECK_EVERY_S)
                    break
                except PoolTimeout:
                    await store.ping()  # a database gone: StoreUnavailable; else the pool is full: wait on
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a lost database, in one sentence
            raise store._unavailable(exc) from None
        locked = False
        try:
            try:
                await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, %s))", (session_key, LANE_SEED))
            except Exception as exc:  # noqa: BLE001 - a lost database, in one sentence
                raise store._unavailable(exc) from None
            locked = True
            self.held += 1
            try:
                yield
            finally:
                self.held -= 1
        finally:
            # interrupted before the lock was surely ours, or the unlock failed: the connection goes
            if not (locked and await _unlock(conn, session_key)):
                await _discard(conn)
            await pool.putconn(conn)

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = self._loop = None
        holder, self._holder = self._holder, None
        if holder is not None and self._holder_loop is asyncio.get_running_loop():
            await _discard(holder)


async def _unlock(conn: Any, session_key: str) -> bool:
    try:
        await asyncio.shield(conn.execute(
            "SELECT pg_advisory_unlock(hashtextextended(%s, %s))", (session_key, LANE_SEED)))
        return True
    except BaseException:  # noqa: BLE001 - the lock goes with the connection instead
        return False


async def _discard(conn: Any) -> None:
    """Close the connection (its locks die with its backend); the pool then drops it."""
    try:
        await conn.close()
    except BaseException:  # noqa: BLE001 - it is going away regardless
        pass
