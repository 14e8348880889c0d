"""``exoclaw usage``: a model without a price shows as unpriced, never as a cost of 0.0000."""

from __future__ import annotations

import asyncio

from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import UsageRecord
from tests.serving import clean_env, run_cli


def record(model: str, priced: bool, cost: float) -> UsageRecord:
    return UsageRecord("2026-11-25T10:00:00Z", "default:cli:alice:main", "default", provider="openai", model=model,
                       input_tokens=1000, output_tokens=100, cost_usd=cost, priced=priced)


def test_unpriced_calls_are_shown_as_unpriced(tmp_path):
    env = clean_env(tmp_path)
    store = open_store(tmp_path / "home")
    try:
        async def write() -> None:
            await store.record_usage(record("local-llama", False, 0.0))
            await store.record_usage(record("local-llama", False, 0.0))
            await store.record_usage(record("gpt-4o-mini", True, 0.00021))

        asyncio.run(write())
    finally:
        store.close()
    r = run_cli(tmp_path, "usage", env=env)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert rows["openai:local-llama"].split()[1:] == ["2", "2,000", "200", "unpriced"]
    assert rows["openai:gpt-4o-mini"].split()[-1] == "0.0002"
    assert rows["total"].split()[1:] == ["3", "3,000", "300", "0.0002", "+", "2", "unpriced"]
    r = run_cli(tmp_path, "usage", "--json", env=env)
    assert '"unpriced_calls": 2' in r.stdout
