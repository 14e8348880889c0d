"""Budgets through a real gateway (SPEC §8, §4): every scope refuses exactly at its limit,
names itself, and no provider request is made once refused; the tool loop's later calls
are checked too; days and months roll over; counters survive a restart."""

from __future__ import annotations

import pytest

from exoclaw_hooks import AgentConfig, ToolCall, Usage
from builtin_plugins.metering.settings import BudgetLimits, BudgetsConfig
from builtin_plugins.router import Binding
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.builtin_plugins.metering.metering_helpers import (
    CHAT,
    FakeClock,
    LookupTool,
    ScriptedPlugin,
    error_of,
    fix_estimate,
    metering,
    scripted,
    scripted_settings,
    usage_of,
)
from tests.harness import events_of, make_settings, running_gateway

# Every call below uses 10 + 5 = 15 tokens and is estimated at 7 input tokens, so with a
# limit of 37 the third call lands exactly on it (30 + 7 = 37: allowed) and the fourth is
# refused after 45 were used; with 36 the third is refused after 30.
EST = 7

SCOPES = {
    "session": lambda n: BudgetsConfig(session=n),
    "daily": lambda n: BudgetsConfig(daily=n),
    "monthly": lambda n: BudgetsConfig(monthly=n),
    "agent:default:session": lambda n: BudgetsConfig(agents={"default": BudgetLimits(session=n)}),
    "agent:default:daily": lambda n: BudgetsConfig(agents={"default": BudgetLimits(daily=n)}),
    "agent:default:monthly": lambda n: BudgetsConfig(agents={"default": BudgetLimits(monthly=n)}),
}


async def _turns_until_refused(gw, provider, max_turns=6):
    results = []
    async with gw.client() as c:
        for _ in range(max_turns):
            frames = await c.chat(CHAT)
            results.append(frames)
            if error_of(frames):
                break
    return results


@pytest.mark.parametrize("scope", list(SCOPES))
@pytest.mark.parametrize("limit, ok_turns, used_at_refusal", [(37, 3, 45), (36, 2, 30)])
async def test_each_scope_refuses_exactly_at_its_limit(tmp_path, scope, limit, ok_turns, used_at_refusal):
    provider = ScriptedProvider()
    provider.enqueue(*scripted(10))
    settings = scripted_settings(data_dir=tmp_path, budgets=SCOPES[scope](limit))
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, EST)
        results = await _turns_until_refused(gw, provider)
        refusals = gw.rt.metrics.budget_refusals.labels(scope)._value.get()
    assert [error_of(f) for f in results[:ok_turns]] == [None] * ok_turns
    assert all(usage_of(f) == {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.0, "unpriced": True}
               for f in results[:ok_turns])
    refused = results[ok_turns]
    assert error_of(refused) == f"token budget exceeded ({scope}: {used_at_refusal}/{limit})"
    assert events_of(refused) == ["error", "done"]
    # no provider request was made for the refused call
    assert len(provider.history) == ok_turns
    assert refusals == 1


async def test_the_first_refusing_scope_is_named_in_order(tmp_path):
    provider = ScriptedProvider()
    cases = [
        (BudgetsConfig(session=30, daily=30, monthly=30, agents={"default": BudgetLimits(30, 30, 30)}), "session"),
        (BudgetsConfig(session=99, daily=30, monthly=30, agents={"default": BudgetLimits(30, 30, 30)}), "daily"),
        (BudgetsConfig(daily=99, monthly=30, agents={"default": BudgetLimits(30, 30, 30)}), "monthly"),
        (BudgetsConfig(monthly=99, agents={"default": BudgetLimits(30, 30, 30)}), "agent:default:session"),
        (BudgetsConfig(agents={"default": BudgetLimits(99, 30, 30)}), "agent:default:daily"),
        (BudgetsConfig(agents={"default": BudgetLimits(None, 99, 30)}), "agent:default:monthly"),
    ]
    for budgets, scope in cases:
        provider.enqueue(*scripted(3))
        async with running_gateway(
            scripted_settings(data_dir=tmp_path, budgets=budgets), plugins=[("scripted", ScriptedPlugin(provider))]
        ) as gw:
            fix_estimate(gw, EST)
            results = await _turns_until_refused(gw, provider)
        assert len(results) == 3, scope
        assert error_of(results[-1]) == f"token budget exceeded ({scope}: 30/30)"


async def test_session_scopes_are_per_session_and_agent_scopes_per_agent(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(*scripted(20))
    other = AgentConfig(id="other", provider="scripted", model="m1")
    budgets = BudgetsConfig(session=30, agents={"default": BudgetLimits(daily=45)})
    settings = scripted_settings(
        data_dir=tmp_path, budgets=budgets, agents=[other], bindings=(Binding("other", "other"),)
    )
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, EST)
        async with gw.client() as c:
            assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (session: 30/30)"
            # another session of the same agent: its own session budget, the agent's daily one
            bob = {**CHAT, "account": "bob"}
            assert error_of(await c.chat(bob)) is None
            assert error_of(await c.chat(bob)) == "token budget exceeded (agent:default:daily: 45/45)"
            # the other agent (bound to channel "other") is not limited by agent:default:daily
            frames = await c.chat({**CHAT, "channel": "other", "account": "carol"})
            assert error_of(frames) is None and usage_of(frames)["input_tokens"] == 10


async def test_the_tool_loop_second_call_is_checked(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(
        Script(text=["Looking."], tool_calls=[ToolCall("t1", "lookup", {"q": "x"})], usage=Usage(10, 20)),
        Script(text=["never sent"], usage=Usage(10, 5)),
    )
    settings = scripted_settings(data_dir=tmp_path, budgets=BudgetsConfig(session=35))
    plugins = [("scripted", ScriptedPlugin(provider)), ("lookup", LookupTool())]
    async with running_gateway(settings, plugins=plugins) as gw:
        fix_estimate(gw, EST)
        async with gw.client() as c:
            frames = await c.chat(CHAT)
            status = (await c.request("budget.status", {"session": "default:test:alice:main"}))["result"]
    assert events_of(frames) == ["text", "tool_use", "tool_result", "error", "done"]
    assert error_of(frames) == "token budget exceeded (session: 30/35)"
    assert len(provider.history) == 1  # the second call never reached the provider
    assert provider.history[0].tools and provider.history[0].tools[0].name == "lookup"
    assert status["scopes"][0]["used"] == 30
    assert metering(gw).budgets.in_flight() == 0


async def test_a_sequential_session_larger_max_tokens_than_budget_still_works(tmp_path):
    """``session = 2000`` with ``max_tokens = 4096``: a call's own output is not reserved against itself."""
    async with running_gateway(make_settings(data_dir=tmp_path, budgets=BudgetsConfig(session=2000))) as gw:
        assert gw.rt.settings.agents["default"].max_tokens == 4096
        async with gw.client() as c:
            errors = []
            for i in range(200):
                frames = await c.chat({**CHAT, "content": f"message number {i} " * 10})
                errors.append(error_of(frames))
                if errors[-1]:
                    break
            status = (await c.request("budget.status", {"session": "default:test:alice:main"}))["result"]
    assert len(errors) >= 4 and errors[:-1] == [None] * (len(errors) - 1), errors  # a few turns succeed…
    assert errors[-1].startswith("token budget exceeded (session: ")  # …then the budget error
    used = status["scopes"][0]["used"]
    assert errors[-1] == f"token budget exceeded (session: {used}/2000)"
    assert used <= 2000 + 200  # over by at most the last call's output


async def test_day_and_month_roll_over_at_utc_midnight(tmp_path):
    clock = FakeClock("2026-03-31T23:59:00Z")
    provider = ScriptedProvider()
    provider.enqueue(*scripted(20))
    budgets = BudgetsConfig(daily=37, monthly=67)
    settings = scripted_settings(data_dir=tmp_path, budgets=budgets)
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))], clock=clock) as gw:
        fix_estimate(gw, EST)
        async with gw.client() as c:
            for _ in range(3):
                assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (daily: 45/37)"
            clock.set("2026-03-31T23:59:59.999999Z")
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (daily: 45/37)"
            # midnight UTC: a new day and a new month
            clock.set("2026-04-01T00:00:00Z")
            status = (await c.request("budget.status"))["result"]["scopes"]
            assert status == [
                {"scope": "daily", "used": 0, "limit": 37, "period_start": "2026-04-01T00:00:00Z"},
                {"scope": "monthly", "used": 0, "limit": 67, "period_start": "2026-04-01T00:00:00Z"},
            ]
            for _ in range(3):
                assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (daily: 45/37)"
            # the next day the daily budget is back, the month's is not
            clock.set("2026-04-02T08:00:00Z")
            assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (monthly: 75/67)"
            clock.set("2026-04-30T23:59:59Z")
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (monthly: 75/67)"
            clock.set("2026-05-01T00:00:00Z")
            assert error_of(await c.chat(CHAT)) is None
    assert len(provider.history) == 3 + 3 + 2 + 1


async def test_counters_survive_a_restart(tmp_path):
    clock = FakeClock("2026-06-10T12:00:00Z")
    budgets = BudgetsConfig(session=37, daily=1000, agents={"default": BudgetLimits(daily=81)})
    settings = scripted_settings(data_dir=tmp_path, budgets=budgets)
    provider = ScriptedProvider()
    provider.enqueue(*scripted(20))
    plugins = [("scripted", ScriptedPlugin(provider))]
    key = "default:test:alice:main"
    async with running_gateway(settings, plugins=plugins, persistent=True, clock=clock) as gw:
        fix_estimate(gw, EST)
        async with gw.client() as c:
            assert error_of(await c.chat(CHAT)) is None
            clock.set("2026-06-10T12:05:00Z")
            assert error_of(await c.chat(CHAT)) is None
            assert error_of(await c.chat({**CHAT, "account": "bob"})) is None
    clock.set("2026-06-10T18:00:00Z")
    async with running_gateway(settings, plugins=plugins, persistent=True, clock=clock) as gw:
        fix_estimate(gw, EST)
        async with gw.client() as c:
            status = (await c.request("budget.status", {"session": key}))["result"]["scopes"]
            assert status == [
                {"scope": "session", "used": 30, "limit": 37, "period_start": "2026-06-10T12:00:00.000000Z"},
                {"scope": "daily", "used": 45, "limit": 1000, "period_start": "2026-06-10T00:00:00Z"},
                {"scope": "agent:default:daily", "used": 45, "limit": 81, "period_start": "2026-06-10T00:00:00Z"},
            ]
            assert error_of(await c.chat(CHAT)) is None  # 30 + 7 = 37: exactly the limit
            assert error_of(await c.chat(CHAT)) == "token budget exceeded (session: 45/37)"
            assert error_of(await c.chat({**CHAT, "account": "bob"})) is None  # 60 + 7 <= 81
            assert error_of(await c.chat({**CHAT, "account": "bob"})) == (
                "token budget exceeded (agent:default:daily: 75/81)"
            )
    # and the next day, after another restart, the daily counters start from zero
    clock.set("2026-06-11T00:00:01Z")
    async with running_gateway(settings, plugins=plugins, persistent=True, clock=clock) as gw:
        async with gw.client() as c:
            status = (await c.request("status"))["result"]["budgets"]["scopes"]
    assert status == [
        {"scope": "daily", "used": 0, "limit": 1000, "period_start": "2026-06-11T00:00:00Z"},
        {"scope": "agent:default:daily", "used": 0, "limit": 81, "period_start": "2026-06-11T00:00:00Z"},
    ]
    assert len(provider.history) == 5
