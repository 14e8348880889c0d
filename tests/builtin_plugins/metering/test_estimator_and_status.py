"""The input estimator learns per model; ``budget.status`` and ``status`` report every
configured limit (SPEC §4, §8)."""

from __future__ import annotations

import math
from typing import Any, AsyncIterator

import pytest

from builtin_plugins.metering.budgets import agent_of_session
from builtin_plugins.metering.estimator import MAX_RATIO, MIN_RATIO, Estimator
from exoclaw_hooks import (
    AgentConfig,
    LLMRequest,
    Message,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
    hookimpl,
    make_session_key,
)
from builtin_plugins.metering.settings import BudgetLimits, BudgetsConfig
from exoclaw_hooks.testing import ScriptedProvider
from tests.builtin_plugins.metering.metering_helpers import (
    CHAT,
    FakeClock,
    ScriptedPlugin,
    error_of,
    fix_estimate,
    metering,
    scripted,
    scripted_settings,
)
from tests.harness import make_settings, running_gateway

# ---------------------------------------------------------------- estimator


def test_chars_count_everything_that_becomes_prompt_tokens():
    request = LLMRequest(
        model="m",
        system="S" * 10,
        messages=(
            Message("user", "U" * 20),
            Message("assistant", "A" * 5, tool_calls=(ToolCall("id1", "look", {"q": "x"}),)),
            Message("tool", tool_results=(ToolResult("id1", "R" * 30),)),
        ),
        tools=(ToolSpec("look", "D" * 7, {"type": "object"}),),
    )
    est = Estimator()
    tool_call = len("look") + len("id1") + len('{"q":"x"}')
    tool_result = 30 + len("id1")
    schema = len("look") + 7 + len('{"type":"object"}')
    assert est.chars(request) == 10 + 20 + 5 + tool_call + tool_result + schema
    assert est.estimate("p", "m", request) == (math.ceil(est.chars(request) / 4), est.chars(request))


def test_learning_moves_the_ratio_per_model_and_stays_bounded():
    est = Estimator()
    for _ in range(20):
        est.learn("p", "m", 4000, 2000)  # the provider counts 2 characters per token
    assert est.ratio("p", "m") == pytest.approx(2.0, abs=0.01)
    assert est.tokens("p", "m", 4000) == pytest.approx(2000, abs=15)
    assert est.ratio("p", "other") == 4.0  # per model
    for _ in range(60):
        est.learn("p", "x", 10_000, 1)  # absurd reports are clamped
    assert MAX_RATIO - 0.01 < est.ratio("p", "x") <= MAX_RATIO
    for _ in range(60):
        est.learn("p", "y", 100, 10_000)
    assert MIN_RATIO <= est.ratio("p", "y") < MIN_RATIO + 0.01
    est.learn("p", "z", 5, 100)  # too short to teach anything
    est.learn("p", "z", 1000, 0)  # no count reported
    assert est.ratio("p", "z") == 4.0


class DoublingProvider:
    """Reports twice the chars/4 estimate as its input count (a tokenizer denser than assumed)."""

    def __init__(self, estimator: Estimator):
        self.estimator = estimator
        self.counts: list[int] = []

    def factory(self, settings: Any) -> "DoublingProvider":
        return self

    async def stream(self, request: LLMRequest) -> AsyncIterator[Any]:
        tokens = 2 * math.ceil(self.estimator.chars(request) / 4)
        self.counts.append(tokens)
        yield TextDelta("ok")
        yield StreamEnd("end_turn", Usage(tokens, 1))


class DoublingPlugin:
    def __init__(self, provider: DoublingProvider):
        self.provider = provider

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register("doubling", self.provider.factory)


async def test_the_estimator_learns_from_the_providers_counts(tmp_path):
    provider = DoublingProvider(Estimator())
    settings = make_settings(provider="doubling", model="dense-1", data_dir=tmp_path,
                             budgets=BudgetsConfig(daily=10**9))
    async with running_gateway(settings, plugins=[("doubling", DoublingPlugin(provider))]) as gw:
        est = metering(gw).estimator
        probe = LLMRequest(model="dense-1", system="", messages=(Message("user", "x" * 400),))
        before = est.estimate("doubling", "dense-1", probe)[0]
        ratios = []
        async with gw.client() as c:
            for i in range(8):
                assert error_of(await c.chat({**CHAT, "content": f"a message long enough to learn from, number {i}"})) is None
                ratios.append(est.ratio("doubling", "dense-1"))
        after = est.estimate("doubling", "dense-1", probe)[0]
    assert before == 100
    assert ratios == sorted(ratios, reverse=True) and ratios[0] < 4.0
    assert ratios[-1] == pytest.approx(2.0, abs=0.25)  # toward the provider's 2 characters per token
    assert 175 <= after <= 215  # the estimate moved toward the real count (200)
    assert est.ratio("echo", "echo") == 4.0  # other models are untouched


# ---------------------------------------------------------------- budget.status and status


def test_agent_of_session_unescapes_the_first_part():
    assert agent_of_session("work:tg:a:main") == "work"
    assert agent_of_session(make_session_key("a:b%c", "tg", "x", "y")) == "a:b%c"
    assert agent_of_session(make_session_key("%3A", "tg", "x", "y")) == "%3A"


async def test_budget_status_with_and_without_a_session(tmp_path):
    clock = FakeClock("2026-07-14T09:30:00Z")
    budgets = BudgetsConfig(
        session=1000, daily=2000, monthly=3000,
        agents={"default": BudgetLimits(session=500, daily=600), "other": BudgetLimits(monthly=700)},
    )
    provider = ScriptedProvider()
    provider.enqueue(*scripted(5))
    other = AgentConfig(id="other", provider="scripted", model="m1")
    settings = scripted_settings(data_dir=tmp_path, budgets=budgets, agents=[other])
    key = "default:test:alice:main"
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))], clock=clock) as gw:
        fix_estimate(gw, 7)
        async with gw.client() as c:
            empty = (await c.request("budget.status", {"session": key}))["result"]["scopes"]
            await c.chat(CHAT)
            clock.set("2026-07-14T09:31:00Z")
            await c.chat(CHAT)
            await c.chat({**CHAT, "account": "bob"})
            with_session = (await c.request("budget.status", {"session": key}))["result"]
            without = (await c.request("budget.status"))["result"]
            other_session = (await c.request("budget.status", {"session": "other:x:y:main"}))["result"]["scopes"]
            status = (await c.request("status"))["result"]
            bad = await c.request("budget.status", {"session": 42})
    day, month = "2026-07-14T00:00:00Z", "2026-07-01T00:00:00Z"
    assert [s["used"] for s in empty] == [0, 0, 0, 0, 0, 0]
    assert empty[0] == {"scope": "session", "used": 0, "limit": 1000, "period_start": None}
    assert with_session == {"scopes": [
        {"scope": "session", "used": 30, "limit": 1000, "period_start": "2026-07-14T09:30:00.000000Z"},
        {"scope": "daily", "used": 45, "limit": 2000, "period_start": day},
        {"scope": "monthly", "used": 45, "limit": 3000, "period_start": month},
        {"scope": "agent:default:session", "used": 30, "limit": 500, "period_start": "2026-07-14T09:30:00.000000Z"},
        {"scope": "agent:default:daily", "used": 45, "limit": 600, "period_start": day},
        {"scope": "agent:other:monthly", "used": 0, "limit": 700, "period_start": month},
    ]}
    without_session_scopes = [s for s in with_session["scopes"] if not s["scope"].endswith("session")]
    assert without == {"scopes": without_session_scopes}
    # a session of another agent: the global session scope, not agent:default:session
    assert [s["scope"] for s in other_session] == [
        "session", "daily", "monthly", "agent:default:daily", "agent:other:monthly",
    ]
    assert other_session[0]["used"] == 0
    assert status["budgets"] == {"scopes": without_session_scopes}
    assert bad["error"] == "invalid params: session: must be a string" and bad["result"] is None


async def test_without_budgets_nothing_is_reported_and_nothing_is_refused(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            for _ in range(3):
                assert error_of(await c.chat(CHAT)) is None
            assert (await c.request("budget.status", {"session": "default:test:alice:main"}))["result"] == {"scopes": []}
            assert (await c.request("status"))["result"]["budgets"] == {"scopes": []}
        assert metering(gw).budgets.in_flight() == 0
