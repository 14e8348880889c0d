"""Opening, durability, the in-memory fallback, migrations, threading and the protocol."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from exoclaw_core.store import DB_FILENAME, SQLiteStore, StoreClosedError, open_store
from exoclaw_core.store import migrations
from exoclaw_hooks import Fact, Message, Store, UsageRecord

ROOT = Path(__file__).resolve().parents[3]


def fallback_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "using in-memory storage" in r.getMessage()]


# -- opening ---------------------------------------------------------------


def test_open_store_creates_the_directory_and_uses_wal(tmp_path):
    data = tmp_path / "deep" / "data"
    store = open_store(data)
    try:
        assert store.path == data / DB_FILENAME
        assert store.persistent
        assert (data / DB_FILENAME).exists()
        pragma = store._conn.execute
        assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert pragma("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1
        assert pragma("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert pragma("PRAGMA wal_autocheckpoint").fetchone()[0] == 4000
        assert (data / DB_FILENAME).stat().st_mode & 0o777 == 0o600  # private conversations
        assert data.stat().st_mode & 0o777 == 0o700
    finally:
        store.close()


def test_open_store_none_is_memory(caplog):
    store = open_store(None)
    try:
        assert store.path is None and not store.persistent
        assert fallback_warnings(caplog) == []
    finally:
        store.close()


def test_a_directory_in_the_way_falls_back_to_memory(tmp_path, caplog):
    (tmp_path / DB_FILENAME).mkdir()
    store = open_store(tmp_path)
    try:
        assert store.path is None and not store.persistent
        (warning,) = fallback_warnings(caplog)
        assert warning.startswith(f"cannot open database {tmp_path / DB_FILENAME}: ")
        assert warning.endswith("; using in-memory storage, nothing will be kept")
        assert all(r.levelno == logging.WARNING for r in caplog.records if "in-memory" in r.getMessage())
        asyncio.run(store.append_turn("s", "a", [Message("user", "still works")], 1))
        assert len(asyncio.run(store.load_turns("s", 5))) == 1
    finally:
        store.close()


def test_a_corrupt_file_falls_back_to_memory(tmp_path, caplog):
    (tmp_path / DB_FILENAME).write_bytes(b"this is not a database, just text " * 200)
    store = open_store(tmp_path)
    try:
        assert not store.persistent
        (warning,) = fallback_warnings(caplog)
        assert "not a database" in warning
    finally:
        store.close()
    # the file was left alone for the owner to look at
    assert (tmp_path / DB_FILENAME).read_bytes().startswith(b"this is not a database")


def test_a_file_where_the_data_dir_should_be_falls_back(tmp_path, caplog):
    blocker = tmp_path / "data"
    blocker.write_text("a file, not a directory")
    store = open_store(blocker)
    try:
        assert not store.persistent
        assert len(fallback_warnings(caplog)) == 1
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_falls_back_to_memory(tmp_path, caplog):
    path = tmp_path / DB_FILENAME
    open_store(tmp_path).close()
    path.chmod(0)
    try:
        store = open_store(tmp_path)
        try:
            assert not store.persistent
            assert len(fallback_warnings(caplog)) == 1
        finally:
            store.close()
    finally:
        path.chmod(0o600)


def test_the_custom_logger_is_used(tmp_path):
    (tmp_path / DB_FILENAME).mkdir()
    seen: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    log = logging.getLogger("test.store.custom")
    log.addHandler(Recorder())
    log.propagate = False
    open_store(tmp_path, log=log).close()
    assert len(seen) == 1 and "using in-memory storage" in seen[0]


# -- persistence -------------------------------------------------------------


def test_everything_survives_close_and_reopen(tmp_path):
    async def write(store: SQLiteStore) -> None:
        await store.append_turn("s", "a", [Message("user", "hello"), Message("assistant", "hi")], 7)
        await store.record_usage(UsageRecord("2026-11-25T10:00:00Z", "s", "a", "echo", "echo", 3, 4))
        await store.add_fact("p", Fact("user", "lives in", "Paris"))
        store.kv_set("ns", "k", "v")

    async def read(store: SQLiteStore) -> None:
        (turn,) = await store.load_turns("s", 5)
        assert [m.content for m in turn.messages] == ["hello", "hi"]
        assert await store.sum_tokens("2026-11-25") == 7
        assert [f.object for f, _ in await store.search_facts("p", "live")] == ["Paris"]
        assert store.kv_get("ns", "k") == "v"
        assert await store.count_sessions() == 1

    store = open_store(tmp_path)
    asyncio.run(write(store))
    store.close()
    store = open_store(tmp_path)
    try:
        asyncio.run(read(store))
    finally:
        store.close()


KILLED_WRITER = """
import asyncio, sys, time
from exoclaw_core.store import open_store
from exoclaw_hooks import Message, UsageRecord

async def main():
    store = open_store(sys.argv[1])
    await store.append_turn("s", "a", [Message("user", "before the kill"), Message("assistant", "ok")], 11)
    await store.record_usage(UsageRecord("2026-11-25T10:00:00Z", "s", "a", "echo", "echo", 5, 6))
    store.kv_set("ns", "k", "v")
    print("committed", flush=True)
    time.sleep(60)

asyncio.run(main())
"""


def test_a_committed_turn_survives_kill_9(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "committed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:  # pragma: no cover
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / f"{DB_FILENAME}-wal").exists()  # nothing was checkpointed: the WAL holds it
    store = open_store(tmp_path)
    try:
        assert store.persistent
        (turn,) = asyncio.run(store.load_turns("s", 5))
        assert turn.messages[0].content == "before the kill"
        assert asyncio.run(store.sum_tokens("")) == 11
        assert store.kv_get("ns", "k") == "v"
    finally:
        store.close()


# -- migrations ---------------------------------------------------------------


def test_migrations_are_recorded_once(tmp_path):
    path = tmp_path / DB_FILENAME
    SQLiteStore(path).close()
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
    conn.close()
    assert [(v, n) for v, n, _ in rows] == [(migrations.version_of(m), m.__name__) for m in migrations.MIGRATIONS]
    assert all(at.endswith("Z") for _, _, at in rows)


def test_an_older_database_opens_and_keeps_its_data(tmp_path):
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.migrate(conn, migrations.MIGRATIONS[:1], now=lambda: "2026-01-01T00:00:00.000000Z") == [
        "m001_initial"
    ]
    conn.execute(
        "INSERT INTO sessions VALUES ('old:s', 'old', '2026-01-01T00:00:00.000000Z', "
        "'2026-01-01T00:00:00.000000Z', 1, 3)"
    )
    conn.execute("INSERT INTO turns(session_key, seq, created_at, tokens) VALUES ('old:s', 1, '2026-01-01T00:00:00.000000Z', 3)")
    conn.execute(
        "INSERT INTO messages(turn_id, session_key, role, content, created_at) "
        "VALUES (1, 'old:s', 'user', 'from the past', '2026-01-01T00:00:00.000000Z')"
    )
    assert "facts" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()

    store = SQLiteStore(path)
    try:
        (turn,) = asyncio.run(store.load_turns("old:s", 5))
        assert turn.messages[0].content == "from the past"
        assert asyncio.run(store.append_turn("old:s", "old", [Message("user", "new")], 1)).seq == 2
        asyncio.run(store.add_fact("p", Fact("user", "likes", "tea")))  # tables of later migrations exist
        assert asyncio.run(store.inbox_counts())["pending"] == 0
        applied = migrations.applied(store._conn)
        assert sorted(applied) == [migrations.version_of(m) for m in migrations.MIGRATIONS]
    finally:
        store.close()


def test_a_failing_migration_is_not_recorded(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)

    def m001_ok(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE a (x)")

    def m002_broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE b (x)")
        raise RuntimeError("boom")

    now = lambda: "2026-01-01T00:00:00.000000Z"  # noqa: E731
    with pytest.raises(RuntimeError):
        migrations.migrate(conn, [m001_ok, m002_broken], now=now)
    assert migrations.applied(conn) == {1: "m001_ok"}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "a" in tables and "b" not in tables  # the broken one rolled back entirely
    conn.close()


def test_migration_names_and_order_are_checked():
    def badname(c: sqlite3.Connection) -> None: ...

    def m002_x(c: sqlite3.Connection) -> None: ...

    def m001_y(c: sqlite3.Connection) -> None: ...

    conn = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(ValueError):
        migrations.migrate(conn, [badname], now=lambda: "")
    with pytest.raises(ValueError):
        migrations.migrate(conn, [m002_x, m001_y], now=lambda: "")
    conn.close()


# -- closing, threads, the event loop ---------------------------------------------


def test_close_is_idempotent_and_later_use_says_closed(tmp_path):
    store = SQLiteStore(tmp_path / DB_FILENAME)
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreClosedError):
        store.kv_get("ns", "k")
    with pytest.raises(StoreClosedError):
        asyncio.run(store.count_sessions())


def test_async_work_runs_on_the_one_store_thread(tmp_path):
    store = SQLiteStore(tmp_path / DB_FILENAME)
    try:
        names = asyncio.run(_thread_names(store))
        assert len(names) == 1
        (name,) = names
        assert name.startswith("exoclaw-store") and name != threading.current_thread().name
    finally:
        store.close()


async def _thread_names(store: SQLiteStore) -> set[str]:
    names = await asyncio.gather(*(store._run(lambda _c: threading.current_thread().name) for _ in range(20)))
    return set(names)


@pytest.mark.asyncio
async def test_slow_store_work_does_not_block_the_event_loop(tmp_path):
    store = SQLiteStore(tmp_path / DB_FILENAME)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.005)
            ticks += 1

    def slow(conn: sqlite3.Connection) -> int:
        time.sleep(0.4)  # a slow query or an fsync, holding the store's lock
        return conn.execute("SELECT 1").fetchone()[0]

    try:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        assert await store._run(slow) == 1
        stop.set()
        await task
        # 0.4 s at one tick per ~5 ms: ~80 if the loop ran free, 0-1 if blocked.
        assert ticks >= 10
    finally:
        store.close()


@pytest.mark.asyncio
async def test_concurrent_turns_of_many_sessions(tmp_path):
    store = SQLiteStore(tmp_path / DB_FILENAME)
    try:

        async def conversation(n: int) -> None:
            for i in range(10):
                await store.append_turn(f"s{n}", "a", [Message("user", f"{n}-{i}")], 1)

        await asyncio.gather(*(conversation(n) for n in range(10)))
        assert await store.count_sessions() == 10
        for n in range(10):
            turns = await store.load_turns(f"s{n}", 100)
            assert [t.seq for t in turns] == list(range(1, 11))
            assert [t.messages[0].content for t in turns] == [f"{n}-{i}" for i in range(10)]
    finally:
        store.close()


def test_sqlite_store_implements_the_store_protocol():
    """Every Store method exists with the same parameters, async where the protocol is."""
    for name, spec in inspect.getmembers(Store, inspect.isfunction):
        if name.startswith("_"):
            continue
        impl = getattr(SQLiteStore, name, None)
        assert impl is not None, f"SQLiteStore lacks {name}"
        assert inspect.iscoroutinefunction(impl) == inspect.iscoroutinefunction(spec), name
        want = [(p.name, p.kind, p.default) for p in inspect.signature(spec).parameters.values()]
        got = [(p.name, p.kind, p.default) for p in inspect.signature(impl).parameters.values()]
        assert got == want, name
