"""The input estimator learns per model; ``budget.status`` and ``status`` report every
configured limit (SPEC §4, §8)."""

from __future__ import annotations

import math
from typing import Any, AsyncIterator

import pytest

from builtin_plugins.metering.budgets import agent_of_session
from builtin_plugins.metering.estimator import CALL_TOKENS, MIN_RATIO, PART_TOKENS, Estimator, Sample
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
    estimate_tokens,
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


def test_everything_the_call_carries_is_counted():
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
    chars = 10 + 20 + 5 + tool_call + tool_result + schema
    assert est.measure(request) == Sample(latin=chars, dense=0, parts=3 + 1 + 1 + 1)
    # Latin at 4 characters a token, plus the framing of 6 parts and of the call
    assert est.estimate("p", "m", request)[0] == math.ceil(chars / 4) + 6 * PART_TOKENS + CALL_TOKENS


@pytest.mark.parametrize("text", [
    "漢" * 8000,  # CJK
    "かな" * 4000,  # kana
    "한국어" * 2000,  # hangul
    "🙂" * 3000,  # emoji
    "→∑≈" * 1000,  # symbols
    "Ωмир" * 1000,  # letters outside the Latin ranges
])
def test_a_script_tokenizers_cut_finely_counts_at_least_a_token_a_character(text):
    request = LLMRequest(model="m", system="", messages=(Message("user", text),))
    assert Estimator().estimate("p", "m", request)[0] >= len(text)
    # and the core's packer counts by the same rule
    assert estimate_tokens(text) == len(text)


def test_latin_text_counts_by_the_ratio_mixed_text_by_both_rules():
    est = Estimator()
    mixed = LLMRequest(model="m", system="", messages=(Message("user", "hello world " * 100 + "東京" * 50),))
    sample = est.measure(mixed)
    assert (sample.latin, sample.dense) == (1200, 100)
    assert est.tokens("p", "m", sample) == 300 + 100 + PART_TOKENS + CALL_TOKENS


def _sample(latin: int = 0, dense: int = 0) -> Sample:
    return Sample(latin, dense, 1)


def test_learning_only_tightens_the_latin_ratio_to_what_the_model_showed():
    est = Estimator()
    framing = PART_TOKENS + CALL_TOKENS
    est.learn("p", "m", _sample(4000), 2000 + framing)  # the provider counts 2 characters per token
    assert est.ratio("p", "m") == pytest.approx(2.0)
    assert est.tokens("p", "m", _sample(4000)) == 2000 + framing
    est.learn("p", "m", _sample(4000), 500)  # a model counting fewer teaches nothing: still an upper bound
    assert est.ratio("p", "m") == pytest.approx(2.0)
    est.learn("p", "m", _sample(4000), 1000 + 2000 + framing)  # a denser text: tighter still
    assert est.ratio("p", "m") == pytest.approx(4000 / 3000)
    assert est.ratio("p", "other") == 4.0  # per model
    est.learn("p", "x", _sample(10_000), 10**9)  # absurd reports are clamped
    assert est.ratio("p", "x") == MIN_RATIO


def test_dense_text_teaches_its_weight_and_short_prompts_the_hidden_overhead():
    est = Estimator()
    framing = PART_TOKENS + CALL_TOKENS
    est.learn("p", "emoji", _sample(dense=1000), 2500 + framing)  # 2.5 tokens per emoji
    assert est.tokens("p", "emoji", _sample(dense=100)) == 250 + framing
    assert est.ratio("p", "emoji") == 4.0  # the Latin ratio is not what was wrong
    est.learn("p", "tools", _sample(40), 10 + 300 + framing)  # a provider's hidden tool prompt
    assert est.tokens("p", "tools", _sample(40)) == 10 + 300 + framing
    assert est.ratio("p", "tools") == 4.0
    est.learn("p", "t2", _sample(40), 0)  # no count reported: nothing learnt
    assert est.tokens("p", "t2", _sample(40)) == 10 + framing


class DoublingProvider:
    """Counts 2 characters a token (a tokenizer denser than the estimator's first guess)."""

    def __init__(self, estimator: Estimator):
        self.estimator = estimator
        self.counts: list[int] = []
        self.estimates: list[int] = []

    def factory(self, settings: Any) -> "DoublingProvider":
        return self

    async def stream(self, request: LLMRequest) -> AsyncIterator[Any]:
        tokens = math.ceil(self.estimator.chars(request) / 2)
        self.counts.append(tokens)
        self.estimates.append(self.estimator.estimate("doubling", "dense-1", request)[0])
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
        provider.estimator = est
        ratios = []
        async with gw.client() as c:
            for i in range(4):
                content = f"message {i}: " + "a long enough message to learn from " * 40
                assert error_of(await c.chat({**CHAT, "content": content})) is None
                ratios.append(est.ratio("doubling", "dense-1"))
    assert ratios == sorted(ratios, reverse=True) and ratios[0] < 2.2
    # the first call was under-counted (its estimate had the first guess); every later one is an upper bound
    assert provider.estimates[0] < provider.counts[0]
    assert all(e >= c for e, c in zip(provider.estimates[1:], provider.counts[1:])), (provider.estimates, provider.counts)
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
