"""Every call recorded, costed and logged (SPEC §8); the ``usage`` event's cost (§4);
prices, overrides, dated ids and the unpriced case; ``exoclaw usage`` (§2)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builtin_plugins.metering.pricing import BUILTIN_PRICES, PriceTable, base_model, call_cost
from exoclaw_hooks import AgentConfig, ProviderError, ToolCall, Usage, UsageRecord
from builtin_plugins.metering.settings import Price
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.builtin_plugins.metering.metering_helpers import (
    CHAT,
    FakeClock,
    LookupTool,
    ScriptedPlugin,
    error_of,
    metering,
    usage_of,
)
from tests.harness import make_settings, running_gateway

REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------- the price table


@pytest.mark.parametrize(
    "key, inp, out",
    [
        ("anthropic:claude-sonnet-4-5", 3, 15),
        ("anthropic:claude-haiku-4-5", 1, 5),
        ("anthropic:claude-opus-4-1", 15, 75),
        ("openai:gpt-4o", 2.50, 10),
        ("openai:gpt-4o-mini", 0.15, 0.60),
        ("openai:gpt-4.1", 2, 8),
        ("openai:gpt-4.1-mini", 0.40, 1.60),
    ],
)
def test_builtin_prices(key, inp, out):
    price = BUILTIN_PRICES[key]
    assert (price.input, price.output) == (inp, out)


def test_dated_ids_take_their_base_price():
    table = PriceTable()
    assert base_model("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert base_model("gpt-4o-2024-08-06") == "gpt-4o"
    assert base_model("gpt-4.1-mini") == "gpt-4.1-mini"  # not a date
    assert table.lookup("anthropic", "claude-sonnet-4-5-20250929") == BUILTIN_PRICES["anthropic:claude-sonnet-4-5"]
    assert table.lookup("openai", "gpt-4o-2024-08-06") == BUILTIN_PRICES["openai:gpt-4o"]
    assert table.lookup("openai", "gpt-4o-mini-2024-07-18") == BUILTIN_PRICES["openai:gpt-4o-mini"]
    assert table.lookup("anthropic", "claude-3-5-haiku-latest") == BUILTIN_PRICES["anthropic:claude-3-5-haiku"]
    assert table.lookup("openai", "claude-sonnet-4-5") is None  # keyed by provider too
    assert table.lookup("anthropic", "claude-unknown-9") is None
    assert table.lookup("echo", "anything") == Price(0.0, 0.0)  # free, not unpriced


def test_overrides_win_and_apply_to_dated_ids():
    table = PriceTable({"openai:gpt-4o": Price(5.0, 20.0), "local:llama": Price(0.1, 0.2)})
    assert table.lookup("openai", "gpt-4o") == Price(5.0, 20.0)
    assert table.lookup("openai", "gpt-4o-2024-08-06") == Price(5.0, 20.0)
    assert table.lookup("local", "llama") == Price(0.1, 0.2)
    # an exact dated override beats the base one
    table = PriceTable({"openai:gpt-4o": Price(5.0, 20.0), "openai:gpt-4o-2024-08-06": Price(1.0, 1.0)})
    assert table.lookup("openai", "gpt-4o-2024-08-06") == Price(1.0, 1.0)


def test_cost_formula_with_cache_tokens():
    sonnet = BUILTIN_PRICES["anthropic:claude-sonnet-4-5"]
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=2000, cache_write_tokens=400)
    # 1000*3 + 500*15 + 2000*0.30 + 400*3.75 = 12600 per million
    assert call_cost(sonnet, usage) == pytest.approx(0.0126)
    # OpenAI: the provider already took the cached part out of input_tokens
    gpt4o = BUILTIN_PRICES["openai:gpt-4o"]
    assert call_cost(gpt4o, Usage(800, 100, cache_read_tokens=200)) == pytest.approx((800 * 2.5 + 100 * 10 + 200 * 1.25) / 1e6)
    # cache prices default to the input price
    assert call_cost(Price(2.0, 4.0), Usage(0, 0, 10, 10)) == pytest.approx(40 / 1e6)
    assert PriceTable().cost("nobody", "x", Usage(1000, 1000)) == (0.0, False)


# ---------------------------------------------------------------- through the gateway


def _spy_records(gw):
    """Keep every UsageRecord the plugin hands to the store (and still store it)."""
    records = []
    store = gw.rt.store
    original = store.record_usage

    async def record_usage(record):
        records.append(record)
        await original(record)

    store.record_usage = record_usage
    return records


def _anthropic_settings(tmp_path, model, **kw):
    return make_settings(provider="anthropic", model=model, data_dir=tmp_path, **kw)


async def test_usage_event_cost_and_records_for_a_dated_anthropic_model(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="exoclaw.metering")
    provider = ScriptedProvider()
    usage = Usage(1000, 500, cache_read_tokens=2000, cache_write_tokens=400)
    provider.enqueue(Script(text=["hi"], usage=usage))
    model = "claude-sonnet-4-5-20250929"
    agent = AgentConfig(id="default", provider="anthropic", model=model, api_key="sk-ant-very-secret-key")
    settings = make_settings(data_dir=tmp_path, agents=[agent])
    async with running_gateway(
        settings, plugins=[("fake-anthropic", ScriptedPlugin(provider, "anthropic"))], clock=FakeClock("2026-02-03T04:05:06Z")
    ) as gw:
        records = _spy_records(gw)
        async with gw.client() as c:
            frames = await c.chat(CHAT)
        report = await gw.rt.store.usage_report("model")
        by_session = await gw.rt.store.usage_report("session")
        cost_metric = gw.rt.metrics.cost._value.get()
    assert usage_of(frames) == {"input_tokens": 1000, "output_tokens": 500, "cost_usd": pytest.approx(0.0126)}
    assert report == [{"group": f"anthropic:{model}", "calls": 1, "input_tokens": 1000, "output_tokens": 500,
                       "cost_usd": pytest.approx(0.0126)}]
    assert by_session[0]["group"] == "default:test:alice:main"
    assert records == [UsageRecord(
        timestamp="2026-02-03T04:05:06.000000Z", session_key="default:test:alice:main", agent_id="default",
        provider="anthropic", model=model, input_tokens=1000, output_tokens=500, cache_read_tokens=2000,
        cache_write_tokens=400, cost_usd=pytest.approx(0.0126), priced=True,
    )]
    assert cost_metric == pytest.approx(0.0126)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=usage ")]
    assert lines == [
        f"event=usage provider=anthropic model={model} agent=default input_tokens=1000 output_tokens=500 "
        "cache_read_tokens=2000 cache_write_tokens=400 cost_usd=0.012600 priced=true"
    ]
    assert "sk-ant-very-secret-key" not in caplog.text


async def test_pricing_override_and_a_turn_cost_summed_over_its_calls(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(
        Script(text=["Looking."], tool_calls=[ToolCall("t1", "lookup", {})], usage=Usage(1000, 100)),
        Script(text=["Done."], usage=Usage(2000, 300)),
    )
    settings = make_settings(
        provider="scripted", model="house-model", data_dir=tmp_path,
        pricing={"scripted:house-model": Price(input=1.0, output=10.0)},
    )
    plugins = [("scripted", ScriptedPlugin(provider)), ("lookup", LookupTool())]
    async with running_gateway(settings, plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(CHAT)
        report = await gw.rt.store.usage_report("model")
    # (1000*1 + 100*10) + (2000*1 + 300*10) per million
    assert usage_of(frames) == {"input_tokens": 3000, "output_tokens": 400, "cost_usd": pytest.approx(0.007)}
    assert report[0]["calls"] == 2 and report[0]["cost_usd"] == pytest.approx(0.007)


async def test_an_override_prices_a_dated_openai_model(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["hi"], usage=Usage(1_000_000, 0)))
    settings = make_settings(provider="openai", model="gpt-4o-2024-08-06", data_dir=tmp_path,
                             pricing={"openai:gpt-4o": Price(5.0, 20.0)})
    async with running_gateway(settings, plugins=[("fake-openai", ScriptedPlugin(provider, "openai"))]) as gw:
        async with gw.client() as c:
            frames = await c.chat(CHAT)
    assert usage_of(frames)["cost_usd"] == pytest.approx(5.0)


async def test_an_unknown_model_is_unpriced(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="exoclaw.metering")
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["hi"], usage=Usage(100, 50)), Script(text=["again"], usage=Usage(100, 50)))
    settings = make_settings(provider="scripted", model="mystery-1", data_dir=tmp_path)
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        records = _spy_records(gw)
        async with gw.client() as c:
            first = await c.chat(CHAT)
            await c.chat(CHAT)
        report = await gw.rt.store.usage_report("model")
    assert usage_of(first) == {"input_tokens": 100, "output_tokens": 50, "cost_usd": 0.0, "unpriced": True}
    assert report[0]["cost_usd"] == 0.0 and report[0]["calls"] == 2
    assert [(r.priced, r.cost_usd, r.model) for r in records] == [(False, 0.0, "mystery-1")] * 2
    usage_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=usage ")]
    assert len(usage_lines) == 2 and all("priced=false" in line for line in usage_lines)
    warnings = [r for r in caplog.records if "event=unpriced_model" in r.getMessage()]
    assert len(warnings) == 1 and "scripted:mystery-1" in warnings[0].getMessage()


async def test_the_echo_provider_is_free_not_unpriced(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            frames = await c.chat(CHAT)
    usage = usage_of(frames)
    assert usage["cost_usd"] == 0.0 and "unpriced" not in usage and usage["input_tokens"] > 0


async def test_a_failed_call_without_usage_leaves_no_record(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(error=ProviderError("overloaded")), Script(text=["fine"], usage=Usage(10, 5)))
    from builtin_plugins.metering.settings import BudgetsConfig

    settings = make_settings(provider="scripted", model="m1", data_dir=tmp_path, budgets=BudgetsConfig(daily=1000))
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        async with gw.client() as c:
            failed = await c.chat(CHAT)
            assert metering(gw).budgets.in_flight() == 0  # released
            ok = await c.chat(CHAT)
            status = (await c.request("budget.status"))["result"]["scopes"]
        report = await gw.rt.store.usage_report("model")
    assert error_of(failed) == "provider error: overloaded"
    assert error_of(ok) is None
    assert report[0]["calls"] == 1 and status[0]["used"] == 15


# ---------------------------------------------------------------- exoclaw usage


def _cli(tmp_path, *args):
    env = {**os.environ, "EXOCLAW_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "exoclaw_core.cli.main", "usage", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )


async def test_exoclaw_usage_table_and_json(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["a"], usage=Usage(1200, 300)), Script(text=["b"], usage=Usage(800, 100)))
    work = AgentConfig(id="work", provider="scripted", model="house-model")
    from builtin_plugins.router import Binding

    settings = make_settings(
        data_dir=tmp_path, agents=[work], bindings=(Binding("office", "work"),),
        pricing={"scripted:house-model": Price(2.0, 10.0)},
    )
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))], persistent=True) as gw:
        async with gw.client() as c:
            await c.chat(CHAT)  # echo
            await c.chat({**CHAT, "channel": "office"})
            await c.chat({**CHAT, "channel": "office", "account": "bob"})
            expected = await gw.rt.store.usage_report("model")

    table = _cli(tmp_path, "--by", "model")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["model", "calls", "input", "output", "cost", "(USD)"]
    house = next(line for line in lines if line.startswith("scripted:house-model"))
    assert house.split() == ["scripted:house-model", "2", "2,000", "400", "0.0080"]
    assert any(line.startswith("echo:echo") for line in lines)
    assert lines[-1].split()[:2] == ["total", "3"]

    as_json = _cli(tmp_path, "--by", "model", "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert rows == expected
    assert {r["group"] for r in rows} == {"echo:echo", "scripted:house-model"}
    house_row = next(r for r in rows if r["group"] == "scripted:house-model")
    assert house_row == {"group": "scripted:house-model", "calls": 2, "input_tokens": 2000, "output_tokens": 400,
                         "cost_usd": pytest.approx((2000 * 2.0 + 400 * 10.0) / 1e6)}

    one = json.loads(_cli(tmp_path, "--by", "agent", "--session", "work:office:bob:main", "--json").stdout)
    assert one == [{"group": "work", "calls": 1, "input_tokens": 800, "output_tokens": 100,
                    "cost_usd": pytest.approx((800 * 2.0 + 100 * 10.0) / 1e6)}]
