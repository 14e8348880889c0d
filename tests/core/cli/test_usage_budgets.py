"""``exoclaw usage --budgets``: every scope's use and limit this period, in tokens and dollars, per person."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import UsageRecord
from tests.serving import clean_env, run_cli


def test_usage_budgets_shows_every_scope_and_every_persons_own(tmp_path):
    env = clean_env(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    store = open_store(home)
    for session, tokens, cost in [("default:tg:alice:main", 300, 0.75), ("default:tg:alice:x", 200, 0.25),
                                  ("default:openai:bob:main", 9, 0.5)]:
        asyncio.run(store.record_usage(UsageRecord(now, session, "default", "echo", "echo", tokens, 0, cost_usd=cost)))
    store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[budgets]\ndaily = 1000\ndaily_usd = 10.0\n[budgets.person]\ndaily_usd = 1.0\n")
    rows = json.loads(run_cli(tmp_path, "usage", "--budgets", "--json", "--config", str(cfg), env=env).stdout)
    day = f"{now[:10]}T00:00:00Z"
    assert rows == [
        {"scope": "daily", "used": 509, "limit": 1000, "period_start": day},
        {"scope": "daily_usd", "used": 1.5, "limit": 10.0, "period_start": day, "unit": "usd"},
        {"scope": "person:daily_usd", "person": "openai:bob", "used": 0.5, "limit": 1.0, "period_start": day,
         "unit": "usd"},
        {"scope": "person:daily_usd", "person": "tg:alice", "used": 1.0, "limit": 1.0, "period_start": day,
         "unit": "usd"},
    ]
    table = run_cli(tmp_path, "usage", "--budgets", "--config", str(cfg), env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["scope", "person", "used", "limit", "share", "since"]
    assert lines[4].split() == ["person:daily_usd", "tg:alice", "$1.0000", "$1.0000", "100%", day]


def test_usage_budgets_on_postgresql_shows_the_counters_every_gateway_shares(tmp_path):
    from builtin_plugins.store_postgres.store import open_postgres
    from tests.harness import postgres_database

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    with postgres_database() as url:
        env = clean_env(tmp_path, EXOCLAW_STORE_URL=url)

        async def spend() -> None:
            store = open_postgres(url)
            try:
                await store.record_usage(UsageRecord(now, "default:tg:alice:main", "default", "echo", "echo", 300, 0))
                # another gateway reserved (seeding the counter from the records) and settled 40 more tokens
                # in the shared counter; its usage record is not stored yet
                key = f"daily:{now[:10]}::"
                rid, _ = await store.budget_reserve("gw-2", {key: 1000}, 100, hold_s=60, seed={key: 300})
                await store.budget_settle(rid, [key], 40)
            finally:
                await store.aclose()

        asyncio.run(spend())
        cfg = tmp_path / "c.toml"
        cfg.write_text("[budgets]\ndaily = 1000\nmonthly = 5000\n")
        rows = json.loads(run_cli(tmp_path, "usage", "--budgets", "--json", "--config", str(cfg), env=env).stdout)
    assert rows == [
        {"scope": "daily", "used": 340, "limit": 1000, "period_start": f"{now[:10]}T00:00:00Z"},
        # no counter yet for the month: what the records say
        {"scope": "monthly", "used": 300, "limit": 5000, "period_start": f"{now[:7]}-01T00:00:00Z"},
    ]
