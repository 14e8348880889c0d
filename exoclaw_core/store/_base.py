"""The connection, the worker thread and the small helpers every area shares.

Threading model (why it looks like this):

* ONE SQLite connection (``check_same_thread=False``) guarded by one
  ``threading.Lock``. SQLite serialises writers anyway; one connection keeps
  the page cache warm and avoids ``SQLITE_BUSY`` between our own threads.
* The ``async`` methods run on ONE dedicated worker thread fed by a queue
  (``StoreBase._work``), so the event loop never waits for the disk, and the
  store's work for all sessions is applied in submission order.
* The blocking ``kv_*`` methods are called from WASM worker threads; they take
  the lock directly instead of going through the queue.

Durability: WAL with ``synchronous=NORMAL``. A committed transaction is in
the WAL file before ``COMMIT`` returns, so it survives the process being
killed (``kill -9``); only an OS crash or power loss may lose the last
transactions. Writes that must also survive that (a webhook reply recorded
as sent) use :meth:`StoreBase._tx` with ``durable=True`` (``synchronous=FULL``
for that one commit).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from exoclaw_hooks import iso_utc

from .migrations import check_index, migrate

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], _dt.datetime]

_UTC = _dt.timezone.utc


class StoreClosedError(RuntimeError):
    """The store was used after :meth:`StoreBase.close`."""


# --------------------------------------------------------------------------
# Time: ISO 8601 UTC with a ``Z`` and always six fractional digits, so that
# the strings sort exactly like the instants they name (``ts >= ?`` on an
# index is then a correct time comparison).
# --------------------------------------------------------------------------


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_UTC)


# --------------------------------------------------------------------------
# JSON: compact, UTF-8, and tolerant of the Mapping types frozen dataclasses
# carry (a stored turn must never be lost to a ``TypeError``).
# --------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return str(obj)


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)
dumps = _encoder.encode
loads = json.loads


# --------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------

_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA temp_store=MEMORY",
)


class StoreBase:
    """Owns the connection, the lock, the worker thread and the clock."""

    def __init__(self, path: str | Path | None = None, *, clock: Clock | None = None) -> None:
        """Open (creating if needed) the database at ``path`` and apply the migrations.

        ``path`` ``None`` or ``":memory:"`` makes an in-memory store with the
        same behaviour that keeps nothing. ``clock`` returns the current time
        as an aware UTC datetime (tests inject a fixed one).
        Raises ``sqlite3.Error`` or ``OSError`` when the file cannot be used;
        :func:`~exoclaw_core.store.open_store` turns that into a fallback.
        """
        memory = path is None or str(path) == ":memory:"
        self._path: Path | None = None if memory else Path(path)  # type: ignore[arg-type]
        self._clock: Clock = clock or utc_now
        self._lock = threading.Lock()
        self._closed = False
        if self._path is not None and not self._path.exists():
            # Conversations are private: create the file owner-only (SQLite
            # gives its -wal and -shm files the same permissions).
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(
            ":memory:" if memory else str(self._path),
            timeout=5.0,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
            cached_statements=256,
        )
        try:
            for pragma in _PRAGMAS:
                conn.execute(pragma)
            if not memory:
                mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
                if mode == "wal":
                    conn.execute("PRAGMA synchronous=NORMAL")
                    # Checkpoint (the only fsyncs under NORMAL) every ~16 MB of
                    # WAL instead of 4 MB: fewer stalls on the hot path, and
                    # pages rewritten meanwhile are copied once.
                    conn.execute("PRAGMA wal_autocheckpoint=4000")
                    conn.execute("PRAGMA journal_size_limit=33554432")
                else:
                    # A file system without shared memory (some network mounts):
                    # keep the data, with a rollback journal synced on every commit.
                    logger.warning("cannot use WAL for %s (journal mode %s); commits will be slower", path, mode)
                    conn.execute("PRAGMA synchronous=FULL")
            migrate(conn, now=self._now)
            check_index(conn)  # a damaged full-text index is rebuilt from the stored rows
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection = conn
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="exoclaw-store", daemon=True)
        self._worker.start()

    # -- identity -------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The database file, ``None`` for an in-memory store."""
        return self._path

    @property
    def persistent(self) -> bool:
        """Whether what is stored outlives the process."""
        return self._path is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        where = str(self._path) if self._path else ":memory:"
        return f"<{type(self).__name__} {where}{' closed' if self._closed else ''}>"

    def describe(self) -> dict[str, Any]:
        """What ``status`` shows: the kind, where (the file), whether it outlives the process; ``shared``:
        False (one gateway owns a SQLite file, so plugins may keep their counters in memory)."""
        return {"kind": "sqlite", "url": str(self._path) if self._path else ":memory:",
                "persistent": self.persistent, "shared": False}

    async def ping(self) -> None:
        """A round trip through the store's thread (a closed store raises)."""
        await self._run(_ping)

    # -- time -----------------------------------------------------------

    def _now(self) -> str:
        return iso_utc(self._clock())

    # -- running work ---------------------------------------------------

    def _locked(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._lock:
            if self._closed:
                raise StoreClosedError("the store is closed")
            return fn(self._conn, *args)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the store's thread, holding the lock."""
        if self._closed or self._stopping:
            raise StoreClosedError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn, args))
        return await future

    def _work(self) -> None:
        """The store's thread: run queued work in order; answer each batch with one wake-up.

        A dedicated thread and queue instead of ``run_in_executor``: what piled
        up while one call ran is taken at once and its results are handed back
        to the event loop in a single ``call_soon_threadsafe`` (the hop was a
        large part of a small write's cost). Work whose caller was cancelled
        before it started is skipped, so nothing is written for it.
        """
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done: dict[Any, list[tuple[Any, bool, Any]]] = {}
            stop = False
            for item in batch:
                if item is None:
                    stop = True
                    continue
                loop, future, fn, args = item
                if future.cancelled():
                    continue
                try:
                    outcome = (future, True, self._locked(fn, args))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    outcome = (future, False, exc)
                done.setdefault(loop, []).append(outcome)
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(_settle, outcomes)
                except RuntimeError:  # that event loop is closed: nobody is waiting
                    pass
            if stop:
                return

    _stopping = False

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in the calling thread, holding the lock (blocking API)."""
        return self._locked(fn, args)

    @staticmethod
    def _tx(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any, durable: bool = False) -> T:
        """``fn(conn, *args)`` in one write transaction; rolled back if it raises.

        ``durable`` makes this commit fsync the WAL (``synchronous=FULL``), so
        it survives a power loss too, not only a killed process.
        """
        if durable:
            previous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # also when COMMIT itself failed (busy, disk full)
                    conn.execute("ROLLBACK")
                raise
            return result
        finally:
            if durable:
                conn.execute(f"PRAGMA synchronous={previous}")

    # -- closing --------------------------------------------------------

    def close(self) -> None:
        """Finish queued work, stop the worker thread and close the database. Idempotent."""
        if self._closed:
            return
        # Let queued async work finish before the connection goes away.
        self._stopping = True
        self._queue.put(None)
        if self._worker is not threading.current_thread():
            self._worker.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._conn.in_transaction:  # pragma: no cover - defensive
                    self._conn.execute("ROLLBACK")
                self._conn.execute("PRAGMA optimize")
            except sqlite3.Error:  # pragma: no cover - closing anyway
                pass
            finally:
                self._conn.close()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop while queued work finishes."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> "StoreBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def _settle(outcomes: list[tuple[Any, bool, Any]]) -> None:
    """On the event loop: give each caller its result (unless it stopped waiting)."""
    for future, ok, value in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
