"""Usage records: record_usage, sum_tokens (budgets), usage_report (the CLI)."""

from __future__ import annotations

import random

import pytest

from exoclaw_core.store import SQLiteStore, normalize_ts
from exoclaw_hooks import UsageRecord

pytestmark = pytest.mark.asyncio


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "exoclaw.db")
    yield s
    s.close()


def rec(ts: str, session: str = "s1", agent: str = "a", inp: int = 10, out: int = 5, **kw) -> UsageRecord:
    kw.setdefault("provider", "anthropic")
    kw.setdefault("model", "claude-sonnet-4-5")
    return UsageRecord(ts, session, agent, input_tokens=inp, output_tokens=out, **kw)


async def test_record_round_trip_through_the_report(store):
    await store.record_usage(
        rec("2026-11-25T10:00:00Z", inp=1000, out=200, cache_read_tokens=7, cache_write_tokens=3, cost_usd=0.006)
    )
    report = await store.usage_report("model")
    assert report == [
        {"group": "anthropic:claude-sonnet-4-5", "calls": 1, "input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.006}
    ]
    row = store._conn.execute(
        "SELECT ts, cache_read_tokens, cache_write_tokens, priced FROM usage"
    ).fetchone()
    assert row == ("2026-11-25T10:00:00.000000Z", 7, 3, 1)


async def test_timestamps_are_normalised_to_utc(store):
    await store.record_usage(rec("2026-11-25T23:30:00-02:00"))  # = 2026-11-26T01:30Z
    await store.record_usage(rec("2026-11-25T12:00:00"))  # naive = UTC
    days = [r["group"] for r in await store.usage_report("day")]
    assert days == ["2026-11-25", "2026-11-26"]
    assert await store.sum_tokens("2026-11-26") == 15
    with pytest.raises(ValueError):
        await store.record_usage(rec("yesterday"))
    with pytest.raises(ValueError):
        await store.sum_tokens("not a time")


async def test_sum_tokens_filters(store):
    await store.record_usage(rec("2026-11-24T23:59:59.999999Z", "s1", "a", 100, 1))
    await store.record_usage(rec("2026-11-25T00:00:00Z", "s1", "a", 10, 5))
    await store.record_usage(rec("2026-11-25T08:00:00Z", "s2", "a", 20, 5))
    await store.record_usage(rec("2026-11-25T09:00:00Z", "s3", "b", 40, 5))
    assert await store.sum_tokens("2026-11-25T00:00:00Z") == 15 + 25 + 45
    assert await store.sum_tokens("2026-11-25") == 85  # a date is that UTC midnight
    assert await store.sum_tokens("2026-11-25T00:00:00.000001Z") == 25 + 45
    assert await store.sum_tokens("2026-11-25T08:00:00Z") == 70
    assert await store.sum_tokens("2026-11-25T08:00:00+01:00") == 70  # 07:00Z
    assert await store.sum_tokens("2026-11-01", session_key="s1") == 101 + 15
    assert await store.sum_tokens("", session_key="s1") == 116  # "" = from the beginning
    assert await store.sum_tokens("2026-11-25", agent_id="a") == 40
    assert await store.sum_tokens("2026-11-25", session_key="s3", agent_id="b") == 45
    assert await store.sum_tokens("2026-11-25", session_key="s3", agent_id="a") == 0
    assert await store.sum_tokens("2026-12-01") == 0
    assert await store.sum_tokens("") == 186


async def test_sum_tokens_agrees_with_a_brute_force_sum(store):
    rng = random.Random(7)
    records = []
    for _ in range(600):
        ts = f"2026-02-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        r = rec(ts, f"s{rng.randint(0, 4)}", f"a{rng.randint(0, 2)}", rng.randint(0, 99), rng.randint(0, 99))
        records.append(r)
        await store.record_usage(r)
    sinces = ["", "2026-02-01", "2026-02-10", "2026-02-10T13:30:00Z", "2026-02-28T23:59:59Z", "2026-03-01"]
    for since in sinces:
        start = normalize_ts(since) if since else ""
        for session, agent in [(None, None), ("s3", None), (None, "a1"), ("s2", "a0")]:
            expected = sum(
                r.input_tokens + r.output_tokens
                for r in records
                if normalize_ts(r.timestamp) >= start
                and (session is None or r.session_key == session)
                and (agent is None or r.agent_id == agent)
            )
            assert await store.sum_tokens(since, session_key=session, agent_id=agent) == expected


async def test_usage_report_groups(store):
    await store.record_usage(rec("2026-11-24T10:00:00Z", "s1", "a", 10, 1, cost_usd=0.5))
    await store.record_usage(rec("2026-11-25T10:00:00Z", "s2", "b", 20, 2, cost_usd=0.25, provider="openai", model="gpt-4o"))
    await store.record_usage(rec("2026-11-25T11:00:00Z", "s1", "a", 30, 3, cost_usd=0.0, priced=False, model="mystery"))
    by_day = await store.usage_report("day")
    assert by_day == [
        {"group": "2026-11-24", "calls": 1, "input_tokens": 10, "output_tokens": 1, "cost_usd": 0.5},
        {"group": "2026-11-25", "calls": 2, "input_tokens": 50, "output_tokens": 5, "cost_usd": 0.25,
         "unpriced_calls": 1},
    ]
    assert [r["group"] for r in await store.usage_report("model")] == [
        "anthropic:claude-sonnet-4-5",
        "anthropic:mystery",
        "openai:gpt-4o",
    ]
    by_agent = await store.usage_report("agent")
    assert [(r["group"], r["calls"], r["input_tokens"]) for r in by_agent] == [("a", 2, 40), ("b", 1, 20)]
    by_session = await store.usage_report("session", session_key="s1")
    assert by_session == [{"group": "s1", "calls": 2, "input_tokens": 40, "output_tokens": 4, "cost_usd": 0.5,
                           "unpriced_calls": 1}]
    assert await store.usage_report("model", session_key="nobody") == []
    with pytest.raises(ValueError, match="day, model, agent, session"):
        await store.usage_report("week")


async def test_empty_report_and_sum(store):
    assert await store.usage_report("day") == []
    assert await store.sum_tokens("") == 0
