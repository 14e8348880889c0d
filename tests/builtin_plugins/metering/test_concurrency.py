"""Reserve before the call, settle after it: concurrent turns cannot overspend a budget by
more than one call's output (SPEC §8), and a waiter is never left asleep (issue 17)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

from exoclaw_hooks import AgentConfig, BudgetExceeded
from builtin_plugins.metering.settings import BudgetLimits, BudgetsConfig
from exoclaw_core.store.sqlite import SQLiteStore
from builtin_plugins.metering.budgets import BudgetBook
from tests.builtin_plugins.metering.metering_helpers import chat_many, error_of, metering, usage_of
from tests.harness import make_settings, running_gateway

NOW = dt.datetime(2026, 5, 5, 10, 0, tzinfo=dt.timezone.utc)
TS = "2026-05-05T10:00:00.000000Z"


async def test_a_race_of_50_turns_stays_within_one_calls_output_of_the_daily_budget(tmp_path):
    limit = 600
    agent = AgentConfig(id="default", provider="echo", model="echo", max_tokens=64, options={"chunk_delay_s": 0.002})
    settings = make_settings(data_dir=tmp_path, agents=[agent], budgets=BudgetsConfig(daily=limit))
    async with running_gateway(settings) as gw:
        async with gw.client() as c1, gw.client() as c2, gw.client() as c3, gw.client() as c4, gw.client() as c5:
            clients = [c1, c2, c3, c4, c5]
            # 50 sessions: ten per connection, their ids interleaved on each socket
            batches = [
                [{"channel": "race", "account": f"user{i}-{j}", "content": f"race message {i}-{j}"} for j in range(10)]
                for i in range(5)
            ]
            results = await asyncio.gather(*(chat_many(c, b) for c, b in zip(clients, batches)))
        report = await gw.rt.store.usage_report("model")
        plugin = metering(gw)
        assert plugin.budgets.in_flight() == 0
    turns = [frames for batch in results for frames in batch]
    assert len(turns) == 50 and all(frames[-1]["event"] == "done" for frames in turns)
    ok = [usage_of(f) for f in turns if error_of(f) is None]
    refused = [error_of(f) for f in turns if error_of(f) is not None]
    assert ok and refused, (len(ok), refused)
    # refused before the call, or — echo ignores max_tokens — cut at the output the budget reserved
    cut = [e for e in refused if e.startswith("budget exceeded (output: the upstream streamed past the ")]
    assert all(re.fullmatch(rf"token budget exceeded \(daily: \d+/{limit}\)", e) for e in refused if e not in cut), refused
    total = sum(r["input_tokens"] + r["output_tokens"] for r in report)
    # one record per call: the completed ones as reported, the cut ones charged their reservation
    assert sum(r["calls"] for r in report) == len(ok) + len(cut)
    assert total >= sum(u["input_tokens"] + u["output_tokens"] for u in ok)
    biggest_output = max(u["output_tokens"] for u in ok)
    assert total <= limit + biggest_output, (total, biggest_output)
    assert total > limit - 64 - 30  # and the budget was really used, not refused wholesale


def _book(limit_kw: dict, **kw) -> BudgetBook:
    return BudgetBook(BudgetsConfig(**limit_kw), SQLiteStore(None), lambda: NOW, **kw)


async def test_a_call_that_fits_only_without_the_others_worst_case_waits_for_them_to_settle():
    book = _book({"daily": 99}, wait_timeout_s=5)
    # A is in flight: 20 input estimated, 50 worst-case output
    await book.admit("A", "s:a", "agent", 20, 50)
    # B fits on A's input (20 + 30 <= 99) but not with A's worst case (20 + 50 + 30 > 99): it waits
    b = asyncio.create_task(book.admit("B", "s:b", "agent", 30, 50))
    await asyncio.sleep(0.05)
    assert not b.done() and book.in_flight() == 1
    # A settles having used 20 + 10: B now fits (30 + 30 <= 99) and is admitted, its output
    # reserved as what the budget has left (99 - 30 - 30 = 39 < its max of 50)
    await book.settle("A", "s:a", "agent", 30, TS)
    await asyncio.wait_for(b, 1)
    assert book.in_flight() == 1 and book.reservation("B").max_out == 39 and book.reservation("B").worst == 69
    # C would not fit even on B's input alone: refused at once, naming what was used
    try:
        await book.admit("C", "s:c", "agent", 45, 50)
    except BudgetExceeded as exc:
        assert str(exc) == "token budget exceeded (daily: 30/99)"
    else:
        raise AssertionError("C was admitted")


async def test_a_failed_call_releases_its_reservation_and_wakes_the_waiters():
    book = _book({"daily": 100}, wait_timeout_s=5)
    await book.admit("A", "s:a", "agent", 20, 60)
    b = asyncio.create_task(book.admit("B", "s:b", "agent", 30, 60))
    await asyncio.sleep(0.02)
    assert not b.done()
    await book.settle("A", "s:a", "agent", 0, None)  # failed, nothing used
    await asyncio.wait_for(b, 1)
    assert book.reservation("A") is None and book.reservation("B") is not None


async def test_waiting_is_bounded():
    book = _book({"daily": 100}, wait_timeout_s=0.1)
    await book.admit("A", "s:a", "agent", 20, 60)
    try:
        await book.admit("B", "s:b", "agent", 30, 60)
    except BudgetExceeded as exc:
        assert exc.scope == "daily" and exc.used == 0 and exc.limit == 100
    else:
        raise AssertionError("B was admitted")


async def test_own_output_is_reserved_as_what_is_left_and_a_session_never_waits_on_itself():
    book = _book({"session": 2000})
    for i in range(3):  # max_tokens 4096 > the whole budget, one call after another
        assert await book.admit(f"c{i}", "s:a", "agent", 100, 4096) == 2000 - 300 * i - 100
        await book.settle(f"c{i}", "s:a", "agent", 300, TS)
    # a reservation left behind (a turn cancelled mid-call) is dropped by the session's next call
    await book.admit("lost", "s:a", "agent", 100, 4096)
    await book.admit("next", "s:a", "agent", 100, 4096)
    assert book.reservation("lost") is None and book.in_flight() == 1


async def test_reservations_are_per_scope():
    book = _book({"session": 100, "agents": {"a1": BudgetLimits(daily=100)}}, wait_timeout_s=0.1)
    await book.admit("A", "s:1", "a1", 50, 50)
    # another agent's call in another session: neither the session nor the a1 scope applies
    await book.admit("B", "s:2", "a2", 90, 50)
    # another a1 session: a1's daily sees A's worst case (100) and its own input: waits, then refused
    try:
        await book.admit("C", "s:3", "a1", 10, 10)
    except BudgetExceeded as exc:
        assert exc.scope == "agent:a1:daily"
    else:
        raise AssertionError("C was admitted")


async def _spin(steps: int) -> None:
    """Let the event loop run ``steps`` rounds (no time passes: the order is the loop's FIFO)."""
    for _ in range(steps):
        await asyncio.sleep(0)


async def test_a_release_between_a_waiters_wake_up_and_its_next_wait_is_not_lost():
    # The 30 s stall of issue 17: two waiters woken by one settle re-check, still do not fit and go
    # back to waiting; a second settle landing while they re-queue must still wake them. Every
    # interleaving of that second settle with the waiters' steps is driven, none by timing.
    for steps_between in range(12):
        book = _book({"daily": 100}, wait_timeout_s=600)
        await book.admit("A", "s:a", "agent", 10, 40)
        await book.admit("B", "s:b", "agent", 10, 40)
        waiters = [asyncio.create_task(book.admit(f"W{i}", f"s:w{i}", "agent", 10, 40)) for i in range(2)]
        await _spin(5)
        assert not any(w.done() for w in waiters)
        await book.settle("A", "s:a", "agent", 41, TS)  # 41 used + B's 50 + 10 > 100: both wait on
        await _spin(steps_between)
        await book.settle("B", "s:b", "agent", 10, TS)  # 51 used: one waiter fits (the other waits on it)
        await _spin(100)
        admitted = [w for w in waiters if w.done()]
        assert len(admitted) == 1, f"no waiter woke after the second settle ({steps_between} steps between)"
        assert admitted[0].exception() is None and book.in_flight() == 1
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
