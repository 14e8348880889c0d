"""Issue 17: dollar budgets on every scope (per agent, per person), the output reserved and
enforced on the stream, calls without usage charged their estimate, warnings before refusals."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from builtin_plugins.metering.budgets import BudgetBook, person_of_session
from builtin_plugins.metering.settings import BudgetLimits, BudgetsConfig, Price
from exoclaw_core.store.sqlite import SQLiteStore
from builtin_plugins.metering.estimator import output_allowance
from exoclaw_hooks import AgentConfig, BudgetExceeded, ToolCall, Usage, UsageRecord, make_session_key
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.builtin_plugins.metering.metering_helpers import (
    CHAT,
    LookupTool,
    ScriptedPlugin,
    chat_many,
    error_of,
    fix_estimate,
    metering,
    scripted,
    scripted_settings,
    usage_of,
)
from tests.fakes.fixtures import start_fake_llm
from tests.fakes.llm_script import Reply
from tests.harness import events_of, make_settings, running_gateway

NOW = dt.datetime(2026, 5, 5, 10, 0, tzinfo=dt.timezone.utc)
TS = "2026-05-05T10:00:00.000000Z"
#: USD 1 per million input tokens, 10 per million output; cache writes the dearest input
PRICE = Price(1.0, 10.0, 0.1, 1.25)


def _book(**config) -> BudgetBook:
    return BudgetBook(BudgetsConfig(**config), SQLiteStore(None), lambda: NOW, wait_timeout_s=5)


# ---------------------------------------------------------------- the book


def test_a_dollar_refusal_names_the_scope_and_the_figures_in_dollars():
    assert str(BudgetExceeded("daily_usd", 4.98, 5.0, unit="usd")) == "budget exceeded (daily_usd: $4.98 of $5.00)"
    assert str(BudgetExceeded("person:monthly_usd", 1234.5, 2000, unit="usd")) == (
        "budget exceeded (person:monthly_usd: $1,234.50 of $2,000.00)")
    assert str(BudgetExceeded("session", 9500, 10000)) == "token budget exceeded (session: 9500/10000)"


async def test_a_dollar_scope_prices_the_worst_case_and_refuses_in_dollars():
    book = _book(daily_usd=5.0)
    await book.load_periodic()
    book.commit("a:t:alice:main", "a", 1000, TS, 4.98)
    # 20,000 input tokens at the dearest input price (cache write, 1.25/M) = $0.025: 4.98 + 0.025 > 5
    with pytest.raises(BudgetExceeded) as info:
        await book.admit("c1", "a:t:alice:main", "a", 20_000, 1000, price=PRICE)
    assert str(info.value) == "budget exceeded (daily_usd: $4.98 of $5.00)"
    # 4,000 input ($0.005) fits; the output reserved is what is left: $0.015 at $10/M = 1,500 tokens
    reserved = await book.admit("c2", "a:t:alice:main", "a", 4000, 4096, price=PRICE)
    assert reserved == 1500


async def test_the_output_reserved_is_what_the_tightest_budget_has_left():
    book = _book(session=10_000, daily=5000, daily_usd=1.0)
    assert await book.admit("c1", "a:t:alice:main", "a", 1000, 8000, price=PRICE) == 4000  # daily: 5000 - 1000
    await book.settle("c1", "a:t:alice:main", "a", 1500, TS, 0.006)
    # dollars now the tightest: (1.0 - 0.006 - 1000 * 1.25e-6) / 10e-6 = 99,275 tokens; daily 2,500
    assert await book.admit("c2", "a:t:alice:main", "a", 1000, 8000, price=PRICE) == 2500


async def test_a_dollar_scope_without_a_price_cannot_admit():
    book = _book(daily_usd=1.0)
    with pytest.raises(Exception, match="no price"):
        await book.admit("c1", "a:t:alice:main", "a", 10, 10, price=None)


async def test_each_person_has_a_budget_of_their_own():
    book = _book(person=BudgetLimits(daily=100))
    alice, alice_other_chat, bob = "a:t:alice:main", "b:t:alice:chat-2", "a:t:bob:main"
    assert person_of_session(alice) == person_of_session(alice_other_chat) == "t:alice"
    assert person_of_session(make_session_key("a", "t", "x:y", "main")) == "t:x%3Ay"
    await book.admit("c1", alice, "a", 50, 10)
    await book.settle("c1", alice, "a", 95, TS)
    with pytest.raises(BudgetExceeded) as info:  # another agent, another chat: still alice's budget
        await book.admit("c2", alice_other_chat, "b", 10, 10)
    assert str(info.value) == "token budget exceeded (person:daily: 95/100)"
    assert await book.admit("c3", bob, "a", 10, 10) == 10


async def test_person_and_dollar_counters_come_back_from_the_store(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    for session, tokens, cost in [("a:t:alice:main", 300, 0.75), ("a:t:alice:x", 200, 0.25), ("a:t:bob:main", 9, 0.5)]:
        await store.record_usage(UsageRecord(TS, session, "a", "p", "m", tokens, 0, cost_usd=cost))
    assert await store.sum_usage("2026-05-05", person="t:alice") == (500, 1.0)
    assert await store.sum_usage("2026-05-06", person="t:alice") == (0, 0.0)
    assert await store.sum_usage("", agent_id="a") == (509, 1.5)
    book = BudgetBook(BudgetsConfig(daily_usd=10.0, person=BudgetLimits(daily_usd=1.0)), store, lambda: NOW)
    await book.load_periodic()
    with pytest.raises(BudgetExceeded) as info:
        await book.admit("c", "a:t:alice:new", "a", 10, 10, price=PRICE)
    assert str(info.value) == "budget exceeded (person:daily_usd: $1.00 of $1.00)"
    status = await book.report("a:t:bob:main")
    assert status == [
        {"scope": "daily_usd", "used": 1.5, "limit": 10.0, "period_start": "2026-05-05T00:00:00Z", "unit": "usd"},
        {"scope": "person:daily_usd", "used": 0.5, "limit": 1.0, "period_start": "2026-05-05T00:00:00Z",
         "unit": "usd"},
    ]
    store.close()


async def test_warnings_come_once_per_scope_and_period_even_across_a_restart(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    config = BudgetsConfig(daily=1000, person=BudgetLimits(daily=100), warn_at=0.8)
    book = BudgetBook(config, store, lambda: NOW)
    await book.load_periodic()
    await book.admit("c1", "a:t:alice:main", "a", 1, 10)  # loads alice's counter
    await book.settle("c1", "a:t:alice:main", "a", 70, TS)
    assert await book.crossed("a:t:alice:main", "a") == []
    await book.settle("c2", "a:t:alice:main", "a", 10, TS)
    assert [w["scope"] for w in await book.crossed("a:t:alice:main", "a")] == ["person:daily"]
    assert await book.crossed("a:t:alice:main", "a") == []  # once
    book.commit("a:t:alice:main", "a", 800, TS)
    [warning] = await book.crossed("a:t:alice:main", "a")
    assert warning == {"scope": "daily", "unit": "tokens", "used": 880, "limit": 1000, "share": 0.88,
                       "period_start": "2026-05-05T00:00:00Z"}
    # a restarted gateway (a new book on the same store) knows they were sent
    again = BudgetBook(config, store, lambda: NOW)
    await again.load_periodic()
    again.commit("a:t:alice:main", "a", 1, TS)
    assert await again.crossed("a:t:alice:main", "a") == []
    book.commit("a:t:alice:main", "a", 1, "2026-05-06T00:00:01.000000Z")  # a new day: may warn again
    assert await book.crossed("a:t:alice:main", "a") == []  # (the day's counter is at 1 of 1000)
    store.close()


# ---------------------------------------------------------------- through the gateway


async def test_dollar_budgets_per_person_through_the_gateway(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(*scripted(10, Usage(1000, 400)))  # $0.001 + $0.004 a call
    settings = scripted_settings(
        data_dir=tmp_path, budgets=BudgetsConfig(person=BudgetLimits(daily_usd=0.01), warn_at=0.8),
        pricing={"scripted:m1": PRICE},
    )
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, 100)
        async with gw.client() as c:
            alice = [await c.chat(CHAT) for _ in range(3)]
            bob = await c.chat({**CHAT, "account": "bob"})
        warnings = gw.rt.metrics.budget_warnings.labels("person:daily_usd")._value.get()
    assert [error_of(f) for f in alice[:2]] == [None, None]
    assert error_of(alice[2]) == "budget exceeded (person:daily_usd: $0.01 of $0.01)"
    # the second call passed 0.8 of alice's cap: one budget.warning, before the turn's usage
    assert "budget.warning" not in events_of(alice[0])
    assert events_of(alice[1])[-3:] == ["budget.warning", "usage", "done"]
    warning = next(f["data"] for f in alice[1] if f["event"] == "budget.warning")
    assert warning["scope"] == "person:daily_usd" and warning["unit"] == "usd" and warning["share"] == 1.0
    assert error_of(bob) is None and "budget.warning" not in events_of(bob)
    assert warnings == 1
    # the call was sent with max_tokens lowered to what alice's dollars could pay for
    assert provider.history[0].max_tokens < 4096


async def test_a_dollar_cap_on_an_unpriced_model_is_refused_at_start(tmp_path):
    from exoclaw_hooks import ConfigError

    settings = scripted_settings(data_dir=tmp_path, budgets=BudgetsConfig(daily_usd=5.0))
    with pytest.raises(ConfigError) as info:
        async with running_gateway(settings):
            pass
    assert info.value.problems == [
        'config.toml: [budgets] daily_usd: no price for "scripted:m1" (agent default), so no call of it would '
        'ever be refused; price it with [pricing."scripted:m1"] (input = 0.0, output = 0.0 for a free local model)'
    ]


async def test_a_provider_reporting_no_usage_is_charged_its_estimate_and_reservation(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(*scripted(5, Usage(0, 0)))
    settings = scripted_settings(data_dir=tmp_path, budgets=BudgetsConfig(session=300))
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, 40)
        async with gw.client() as c:
            turns = [await c.chat(CHAT) for _ in range(4)]
        report = await gw.rt.store.usage_report("model")
    ok = [t for t in turns if error_of(t) is None]
    refusal = next(error_of(t) for t in turns if error_of(t) is not None)
    # the first call: 40 estimated + the whole budget's worth of output reserved (300 - 40): charged all of it
    assert len(ok) == 1 and refusal == "token budget exceeded (session: 300/300)"
    assert report == [{"group": "scripted:m1", "calls": 1, "input_tokens": 40, "output_tokens": 260,
                       "cost_usd": 0.0, "unpriced_calls": 1, "estimated_calls": 1}]


async def test_8000_cjk_characters_after_english_turns_are_refused_not_admitted(tmp_path):
    class CountingProvider(ScriptedProvider):
        """Reports a token per CJK character and 4 Latin characters a token, as real tokenizers roughly do."""

        async def stream(self, request):
            async for event in super().stream(request):
                if type(event).__name__ == "StreamEnd":
                    text = request.system + "".join(m.content for m in request.messages)
                    cjk = sum(1 for ch in text if ord(ch) > 0x2e80)
                    event = type(event)(event.stop_reason, Usage(cjk + (len(text) - cjk) // 4 + 1, 5))
                yield event

    provider = CountingProvider()
    provider.enqueue(*scripted(5))
    settings = scripted_settings(data_dir=tmp_path, budgets=BudgetsConfig(session=3000))
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        async with gw.client() as c:
            english = [await c.chat({**CHAT, "content": f"an English message, number {i}"}) for i in range(3)]
            cjk = await c.chat({**CHAT, "content": "漢" * 8000})
        status = await gw.request("budget.status", {"session": "default:test:alice:main"})
    assert [error_of(t) for t in english] == [None] * 3
    assert re.fullmatch(r"token budget exceeded \(session: \d+/3000\)", error_of(cjk) or ""), error_of(cjk)
    assert len(provider.history) == 3  # no request was made for it
    assert status["scopes"][0]["used"] < 3000


async def test_an_upstream_ignoring_max_tokens_is_cut_at_the_reservation(tmp_path):
    async with start_fake_llm() as server:
        # every answer streams 300 words (about 300 tokens) whatever max_tokens says, and reports no usage
        # before the end; the budget leaves 150 tokens for the first call's output
        long = Reply(text_chunks=["word " for _ in range(300)], usage=(60, 300), chunk_delay_s=0.005)
        server.enqueue(*([long] * 4))
        agent = AgentConfig(id="default", provider="openai", model="local-model", base_url=server.openai_url,
                            api_key="k", max_tokens=50)
        settings = make_settings(
            agents=[agent], data_dir=tmp_path, budgets=BudgetsConfig(session=400),
            pricing={"openai:local-model": Price(0.0, 0.0)},
        )
        async with running_gateway(settings) as gw:
            async with gw.client() as c:
                turns = [await c.chat(CHAT) for _ in range(3)]
            report = await gw.rt.store.usage_report("model")
            cuts = gw.rt.metrics.output_cuts.labels("openai")._value.get()
        sent = [r.json["max_tokens"] if "max_tokens" in r.json else r.json.get("max_completion_tokens")
                for r in server.requests]
    first = turns[0]
    assert events_of(first)[-2:] == ["error", "done"] and "text" in events_of(first)
    assert error_of(first) == (
        "budget exceeded (output: the upstream streamed past the 50 tokens the budgets reserved for this reply, "
        "so it was cut)")
    relayed = "".join(f["data"] for f in first if f["event"] == "text")
    assert len(relayed.split()) * 1 <= output_allowance(50)  # stopped relaying at the allowance
    assert server.requests[0].disconnected  # the upstream request was closed
    assert sent[0] == 50 and cuts >= 1
    # every call was charged what it reserved (its input estimate + the allowance): never past the cap
    total = sum(r["input_tokens"] + r["output_tokens"] for r in report)
    assert report[0]["estimated_calls"] == report[0]["calls"]
    assert total <= 400 + output_allowance(1), (total, [error_of(t) for t in turns])
    assert all(error_of(t) for t in turns)  # each cut, or refused once the session was spent


async def test_a_reply_cut_for_a_budget_ends_the_turn_with_a_budget_reason(tmp_path):
    async with start_fake_llm() as server:
        server.enqueue(*([Reply(text_chunks=["word " for _ in range(300)], usage=(60, 300))] * 2))
        agent = AgentConfig(id="default", provider="openai", model="local-model", base_url=server.openai_url,
                            api_key="k", max_tokens=4096)
        settings = make_settings(
            agents=[agent], data_dir=tmp_path, budgets=BudgetsConfig(session=200),
            pricing={"openai:local-model": Price(0.0, 0.0)},
        )
        async with running_gateway(settings) as gw:
            async with gw.client() as c:
                first = await c.chat(CHAT)
            status = await gw.request("budget.status", {"session": "default:test:alice:main"})
        sent = server.requests[0].json.get("max_tokens") or server.requests[0].json.get("max_completion_tokens")
    assert sent < 200  # lowered from 4096 to what the session could pay for
    assert error_of(first) == (
        f"budget exceeded (output: the upstream streamed past the {sent} tokens the budgets reserved "
        "for this reply, so it was cut)")
    assert status["scopes"][0]["used"] <= 200  # charged its reservation: within the cap


async def test_fifty_concurrent_turns_with_dollar_and_token_caps_stay_within_one_reserved_output(tmp_path):
    limit_usd, limit_tokens = 0.01, 2000
    agent = AgentConfig(id="default", provider="echo", model="echo", max_tokens=64, options={"chunk_delay_s": 0.002})
    settings = make_settings(
        data_dir=tmp_path, agents=[agent], budgets=BudgetsConfig(daily_usd=limit_usd, daily=limit_tokens),
        pricing={"echo:echo": Price(1.0, 100.0)},
    )
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            results = await chat_many(
                c, [{"channel": "race", "account": f"user{i}", "content": f"race message {i}"} for i in range(50)])
        report = await gw.rt.store.usage_report("model")
        assert metering(gw).budgets.in_flight() == 0
    ok = [usage_of(f) for f in results if error_of(f) is None]
    refused = [error_of(f) for f in results if error_of(f) is not None]
    assert ok and refused
    # refused before the call, or (echo ignores max_tokens) cut at the output reserved for it
    assert all(e.startswith(("budget exceeded (daily_usd: $", "token budget exceeded (daily: ",
                             "budget exceeded (output: ")) for e in refused), refused
    cost = sum(r["cost_usd"] for r in report)
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in report)
    least = output_allowance(1)
    assert cost <= limit_usd * 1.01 + least * 100 / 1e6, cost
    assert tokens <= limit_tokens + least, tokens


async def test_a_tool_call_past_the_reserved_output_is_cut_too(tmp_path):
    provider = ScriptedProvider()
    huge = ToolCall("t1", "lookup", {"q": "x" * 4000})  # about 1,000 tokens of output for max_tokens = 50
    provider.enqueue(Script(text=["let me look"], tool_calls=(huge,)), *scripted(3))
    agent = AgentConfig(id="default", provider="scripted", model="m1", max_tokens=50)
    settings = make_settings(agents=[agent], data_dir=tmp_path, budgets=BudgetsConfig(session=5000))
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider)),
                                                  ("lookup", LookupTool())]) as gw:
        async with gw.client() as c:
            frames = await c.chat(CHAT)
    assert "tool_use" not in events_of(frames)  # never run
    assert error_of(frames).startswith("budget exceeded (output: the upstream streamed past the 50 tokens")
    assert len(provider.history) == 1


async def test_the_openai_faces_user_is_a_person_and_its_warning_is_left_out(tmp_path):
    import aiohttp

    provider = ScriptedProvider()
    provider.enqueue(*scripted(10, Usage(1000, 400)))  # $0.005 a call
    settings = scripted_settings(
        data_dir=tmp_path, budgets=BudgetsConfig(person=BudgetLimits(daily_usd=0.01), warn_at=0.5),
        pricing={"scripted:m1": PRICE},
    )
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, 100)

        async def ask(user: str, stream: bool) -> tuple[int, str]:
            body = {"model": "exoclaw", "user": user, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
            async with aiohttp.ClientSession() as s:
                async with s.post(gw.http_url + "/v1/chat/completions", json=body) as r:
                    return r.status, (await r.read()).decode()

        first = await ask("carol", True)  # passes half of carol's cap: a warning the face leaves out
        second = await ask("carol", False)
        third = await ask("carol", False)
        dave = await ask("dave", False)
    assert first[0] == 200 and "budget" not in first[1] and first[1].endswith("data: [DONE]\n\n")
    assert second[0] == 200
    assert third[0] == 429 and '"budget exceeded (person:daily_usd: $0.01 of $0.01)"' in third[1]
    assert '"insufficient_quota"' in third[1]
    assert dave[0] == 200  # another user, another budget


async def test_a_plugins_memory_call_is_checked_against_the_persons_dollars_too(tmp_path):
    from exoclaw_hooks import LLMRequest, Message, Route

    provider = ScriptedProvider()
    provider.enqueue(*scripted(5, Usage(1000, 400)))  # $0.005 a call
    settings = scripted_settings(
        data_dir=tmp_path, budgets=BudgetsConfig(person=BudgetLimits(daily_usd=0.005)),
        pricing={"scripted:m1": PRICE},
    )
    async with running_gateway(settings, plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, 100)
        async with gw.client() as c:
            assert error_of(await c.chat(CHAT)) is None  # alice's turn spends her day's $0.005
        agent = gw.rt.settings.agents["default"]
        request = LLMRequest(model="m1", system="extract facts", messages=(Message("user", "hello"),), max_tokens=500)
        with pytest.raises(BudgetExceeded) as info:
            await gw.rt.host.llm(request, agent=agent, route=Route("default", "default:test:alice:main"),
                                 kind="memory")
        reply = await gw.rt.host.llm(request, agent=agent, route=Route("default", "default:test:bob:main"),
                                     kind="memory")
    assert str(info.value) == "budget exceeded (person:daily_usd: $0.01 of $0.01)"
    # bob's $0.005 pays for 100 input tokens at $1.25/M and 487 output tokens at $10/M: max_tokens lowered to fit
    assert reply.text == "ok" and provider.history[-1].output_limit == 487
    assert provider.history[-1].max_tokens == 377
    assert len(provider.history) == 2


async def test_without_a_budget_a_call_reporting_no_usage_is_charged_what_was_counted(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["a reply of about ", "ten tokens, counted ", "on the way"], usage=Usage(0, 0)))
    async with running_gateway(scripted_settings(data_dir=tmp_path),
                               plugins=[("scripted", ScriptedPlugin(provider))]) as gw:
        fix_estimate(gw, 40)
        async with gw.client() as c:
            assert error_of(await c.chat(CHAT)) is None
        [row] = await gw.rt.store.usage_report("model")
    assert (row["input_tokens"], row["output_tokens"], row["estimated_calls"]) == (40, 12, 1)  # 47 characters / 4
