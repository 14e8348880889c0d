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
