"""A session's turns one at a time, in the order they asked, across gateways sharing one PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from builtin_plugins.store_postgres.store import open_postgres
from exoclaw_core.agent.lanes import Lanes
from tests.harness import postgres_database


@pytest.fixture
async def two_gateways():
    """Two stores on one database, as two gateways would have them, each behind the core's lanes."""
    with postgres_database() as url:
        stores = [open_postgres(url), open_postgres(url)]
        yield url, [Lanes(s.lanes()) for s in stores]
        for store in stores:
            await store.aclose()


async def waiting_for_locks(url: str, count: int) -> None:
    """Until ``count`` advisory lock requests wait on the server (the queue is the server's)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(500):
            cur = await conn.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if (await cur.fetchone())[0] >= count:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"{count} lock requests never queued")


async def test_turns_of_one_session_run_one_at_a_time_in_the_order_they_asked(two_gateways):
    url, (gw1, gw2) = two_gateways
    ran: list[str] = []
    inside = 0
    release = asyncio.Event()

    async def turn(lanes: Lanes, name: str, key: str = "main:ws:acct:shared") -> None:
        nonlocal inside
        async with lanes.hold(key):
            shared = key.endswith(":shared")
            inside += shared
            assert inside <= 1, "two turns of one session at once"
            ran.append(name)
            if name == "a":
                await release.wait()
            await asyncio.sleep(0.01)
            inside -= shared

    first = asyncio.create_task(turn(gw1, "a"))
    while not ran:
        await asyncio.sleep(0.01)
    later = [asyncio.create_task(turn(gw2, "b"))]
    await waiting_for_locks(url, 1)  # b queues on the server behind a
    # c and d queue behind a and b in their own gateway's lane (one request per session and gateway)
    for lanes, name in ((gw1, "c"), (gw2, "d")):
        later.append(asyncio.create_task(turn(lanes, name)))
        while lanes.waiting("main:ws:acct:shared") < 2:
            await asyncio.sleep(0.01)
    # another session is not held up by this one
    await asyncio.wait_for(turn(gw2, "other", key="main:ws:acct:elsewhere"), 10)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 20)
    assert ran == ["a", "other", "b", "c", "d"]


async def test_a_gateway_whose_connection_dies_releases_its_sessions(two_gateways):
    url, (gw1, gw2) = two_gateways
    entered = asyncio.Event()
    forever = asyncio.Event()

    async def holder() -> None:
        async with gw1.hold("main:ws:acct:s"):
            entered.set()
            await forever.wait()

    task = asyncio.create_task(holder())
    await entered.wait()
    waiter = asyncio.create_task(_enter(gw2, "main:ws:acct:s"))
    await waiting_for_locks(url, 1)
    # what a killed gateway's kernel does to its sockets: the server ends the backend and its locks
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute("""SELECT pg_terminate_backend(pid) FROM pg_locks
                               WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()""")
    assert await asyncio.wait_for(waiter, 10) == "entered"
    forever.set()
    await asyncio.wait_for(task, 10)  # the dead holder's lane ends without hanging (its unlock fails quietly)
    # and the session is free again afterwards, for both gateways
    assert await asyncio.wait_for(_enter(gw1, "main:ws:acct:s"), 10) == "entered"
    assert await asyncio.wait_for(_enter(gw2, "main:ws:acct:s"), 10) == "entered"


async def test_a_turn_cancelled_while_queued_leaves_no_lock_behind(two_gateways):
    url, (gw1, gw2) = two_gateways
    entered, go = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with gw1.hold("main:ws:acct:c"):
            entered.set()
            await go.wait()

    task = asyncio.create_task(holder())
    await entered.wait()
    queued = asyncio.create_task(_enter(gw2, "main:ws:acct:c"))
    await waiting_for_locks(url, 1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    go.set()
    await task
    assert await asyncio.wait_for(_enter(gw2, "main:ws:acct:c"), 10) == "entered"
    assert await asyncio.wait_for(_enter(gw1, "main:ws:acct:c"), 10) == "entered"


async def _enter(lanes: Lanes, key: str) -> str:
    async with lanes.hold(key):
        return "entered"
