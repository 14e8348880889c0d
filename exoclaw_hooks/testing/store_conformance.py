"""The behaviour every ``exoclaw_hooks.Store`` implementation shows: a pytest suite to inherit.

Subclass :class:`StoreConformance` in a test module (its name starting with
``Test``) and give it an ``open_store`` fixture: a callable that opens a
store on ONE backing database, new and empty for each test, shared by every
call within the test (the durability tests open it a second time), and that
closes what it opened when the test ends::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def open_store(self, tmp_path):
            opened = []
            def open_():
                opened.append(MyStore(tmp_path / "db"))
                return opened[-1]
            yield open_
            for s in opened:
                s.close()

``open_store`` may also return an awaitable of the store. The tests check
what a caller sees (ordering, whole turns, replaces, search ranking, kv
namespaces, inbox states, what survives a reopen), never how it is stored.
The async tests need pytest-asyncio (``asyncio_mode = "auto"`` or the
``asyncio`` marker this module sets).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import pytest

from .. import (
    INBOX_STATES,
    Fact,
    IncomingMessage,
    Message,
    ToolCall,
    ToolResult,
    UsageRecord,
)

pytestmark = pytest.mark.asyncio

ALICE = "main:telegram:bot:alice"  # agent:channel:account:peer
BOB = "main:telegram:bot:bob"
PERSON_ALICE = "main:telegram:bot"  # the person of both sessions above (agent:channel:account)
OTHER = "main:slack:ws:carol"
PERSON_OTHER = "main:slack:ws"


def said(user: str, assistant: str) -> list[Message]:
    return [Message("user", user), Message("assistant", assistant)]


def usage(ts: str, session: str = ALICE, agent: str = "main", inp: int = 10, out: int = 5, **kw: Any) -> UsageRecord:
    kw.setdefault("provider", "echo")
    kw.setdefault("model", "echo")
    return UsageRecord(ts, session, agent, input_tokens=inp, output_tokens=out, **kw)


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class StoreConformance:
    """Inherit, provide ``open_store`` (see the module's docstring), and every test here runs on your store."""

    @pytest.fixture
    async def store(self, open_store: Any) -> Any:
        return await _maybe(open_store())

    def test_every_method_of_the_protocol_is_there(self, store: Any) -> None:
        from .. import Store

        wanted = [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]
        missing = [n for n in wanted if not callable(getattr(store, n, None))]
        assert not missing, f"missing Store methods: {', '.join(missing)}"
        for name in wanted:
            assert inspect.iscoroutinefunction(getattr(Store, name)) == inspect.iscoroutinefunction(
                getattr(store, name)), f"{name}: async in the protocol iff async here"

    # ------------------------------------------------------------ sessions and turns

    async def test_turns_are_numbered_in_order_and_load_whole_oldest_first(self, store: Any) -> None:
        for i in range(1, 6):
            turn = await store.append_turn(ALICE, "main", said(f"question {i}", f"answer {i}"), 10 * i)
            assert turn.seq == i
            assert turn.created_at and all(m.created_at for m in turn.messages)
        last = await store.load_turns(ALICE, 3)
        assert [t.seq for t in last] == [3, 4, 5]
        assert [[m.content for m in t.messages] for t in last] == [
            [f"question {i}", f"answer {i}"] for i in (3, 4, 5)]
        assert [t.tokens for t in last] == [30, 40, 50]
        assert await store.load_turns(ALICE, 0) == []
        assert await store.load_turns("main:x:y:nobody", 5) == []
        assert len(await store.load_turns(ALICE, 100)) == 5

    async def test_tool_calls_and_results_round_trip(self, store: Any) -> None:
        messages = [
            Message("user", "weather?"),
            Message("assistant", "", (ToolCall("c1", "weather", {"city": "Oslo", "days": [1, 2]}),)),
            Message("tool", "", (), (ToolResult("c1", "rain", is_error=False), ToolResult("c2", "boom", True))),
            Message("assistant", "rain in Oslo"),
        ]
        await store.append_turn(ALICE, "main", messages, 7)
        [turn] = await store.load_turns(ALICE, 1)
        assert [m.role for m in turn.messages] == ["user", "assistant", "tool", "assistant"]
        assert turn.messages[1].tool_calls == (ToolCall("c1", "weather", {"city": "Oslo", "days": [1, 2]}),)
        assert turn.messages[2].tool_results == (ToolResult("c1", "rain", False), ToolResult("c2", "boom", True))
        history = await store.history(ALICE)
        assert [h["role"] for h in history] == ["user", "assistant", "tool", "assistant"]
        assert history[1]["tool_calls"] == [{"id": "c1", "name": "weather", "input": {"city": "Oslo", "days": [1, 2]}}]
        assert history[2]["tool_results"][1] == {"tool_use_id": "c2", "content": "boom", "is_error": True}
        assert all(h["turn"] == 1 for h in history)

    async def test_a_turn_with_an_unknown_role_is_refused_and_nothing_is_stored(self, store: Any) -> None:
        with pytest.raises(ValueError):
            await store.append_turn(ALICE, "main", [Message("user", "hi"), Message("wizard", "x")], 3)
        assert await store.load_turns(ALICE, 5) == []
        assert await store.count_sessions() == 0

    async def test_concurrent_turns_of_one_session_get_distinct_seqs_and_stay_whole(self, store: Any) -> None:
        await asyncio.gather(*(
            store.append_turn(ALICE, "main", said(f"q{i}", f"a{i}"), 1) for i in range(20)))
        turns = await store.load_turns(ALICE, 100)
        assert [t.seq for t in turns] == list(range(1, 21))
        for turn in turns:
            user, assistant = turn.messages
            assert assistant.content == "a" + user.content[1:]
        [info] = await store.list_sessions()
        assert (info.message_count, info.tokens) == (40, 20)

    async def test_replacing_the_last_turn_keeps_its_seq_and_counts(self, store: Any) -> None:
        await store.append_turn(ALICE, "main", said("q1", "a1"), 5)
        await store.append_turn(ALICE, "main", said("q2", "first answer"), 5)
        new = await store.append_turn(ALICE, "main", said("q2", "second answer"), 6, replaces=2)
        assert new.seq == 2
        turns = await store.load_turns(ALICE, 10)
        assert [(t.seq, t.messages[1].content) for t in turns] == [(1, "a1"), (2, "second answer")]
        [info] = await store.list_sessions()
        assert info.message_count == 4
        assert info.tokens == 16  # the replaced turn's tokens were spent: they stay counted

    async def test_replacing_an_earlier_turn_removes_it_and_appends(self, store: Any) -> None:
        for i in (1, 2, 3):
            await store.append_turn(ALICE, "main", said(f"q{i}", f"a{i}"), 1)
        new = await store.append_turn(ALICE, "main", said("q1", "again"), 1, replaces=1)
        assert new.seq == 4
        assert [t.seq for t in await store.load_turns(ALICE, 10)] == [2, 3, 4]
        assert [h["content"] for h in await store.history(ALICE)] == ["q2", "a2", "q3", "a3", "q1", "again"]

    async def test_sessions_most_recent_first_filtered_and_counted(self, store: Any) -> None:
        await store.append_turn(ALICE, "main", said("a", "b"), 3)
        await store.append_turn(OTHER, "work", said("c", "d"), 4)
        await store.append_turn(BOB, "main", said("e", "f"), 5)
        assert [s.key for s in await store.list_sessions()] == [BOB, OTHER, ALICE]
        assert [s.key for s in await store.list_sessions("main")] == [BOB, ALICE]
        assert [s.key for s in await store.list_sessions(limit=1)] == [BOB]
        assert await store.list_sessions(limit=0) == []
        assert await store.count_sessions() == 3
        info = (await store.list_sessions("work"))[0]
        assert (info.agent_id, info.message_count, info.tokens) == ("work", 2, 4)
        assert info.created_at <= info.updated_at

    async def test_history_keeps_the_last_messages_with_their_turns(self, store: Any) -> None:
        for i in (1, 2, 3):
            await store.append_turn(ALICE, "main", said(f"q{i}", f"a{i}"), 1)
        last = await store.history(ALICE, 3)
        assert [(h["content"], h["turn"]) for h in last] == [("a2", 2), ("q3", 3), ("a3", 3)]
        assert await store.history(ALICE, 0) == []
        assert await store.history("main:x:y:nobody") == []

    async def test_turn_contexts_newest_first(self, store: Any) -> None:
        await store.append_turn(ALICE, "main", said("a", "b"), 1, context={"soul": 10, "history": 3})
        await store.append_turn(ALICE, "main", said("c", "d"), 1)
        await store.append_turn(BOB, "main", said("e", "f"), 1, context={"soul": 12})
        every = await store.turn_contexts()
        assert [(c["session"], c["seq"], c["context"]) for c in every] == [
            (BOB, 1, {"soul": 12}), (ALICE, 1, {"soul": 10, "history": 3})]
        assert [c["session"] for c in await store.turn_contexts(ALICE)] == [ALICE]
        assert len(await store.turn_contexts(limit=1)) == 1

    # ------------------------------------------------------------ recall

    async def test_search_returns_the_right_message_best_first(self, store: Any) -> None:
        await store.append_turn(ALICE, "main", said("my sister lives in Lisbon", "Lisbon is lovely"), 1,
                                speaker="Alice")
        await store.append_turn(ALICE, "main", said("I bought a bicycle", "nice bicycle"), 1)
        await store.append_turn(BOB, "main", said("what is for dinner", "pasta with the sister recipe"), 1)
        await store.append_turn(OTHER, "main", said("Lisbon trip planned", "enjoy"), 1)
        hits = await store.search_messages(PERSON_ALICE, ["where", "does", "my", "sister", "live"])
        assert hits, "stemmed words (live / lives) match"
        best, score = hits[0]
        assert best.content == "my sister lives in Lisbon"
        assert (best.session_key, best.turn_seq, best.role, best.speaker) == (ALICE, 1, "user", "Alice")
        assert all(isinstance(s, float) for _, s in hits)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        # only the person's messages: carol's Lisbon trip is not alice's
        assert all(m.session_key in (ALICE, BOB) for m, _ in await store.search_messages(PERSON_ALICE, ["lisbon"]))
        [(carol, _)] = await store.search_messages(PERSON_OTHER, ["lisbon"])
        assert carol.content == "Lisbon trip planned"
        assert await store.search_messages(PERSON_ALICE, []) == []
        assert await store.search_messages(PERSON_ALICE, ["lisbon"], limit=0) == []
        assert await store.search_messages(PERSON_ALICE, ['"NEAR(*', "AND", "OR"]) is not None  # never a syntax error

    async def test_search_skips_the_last_turns_of_the_window(self, store: Any) -> None:
        for word in ("pelican", "walrus", "pelican again"):
            await store.append_turn(ALICE, "main", said(word, "ok"), 1)
        hits = await store.search_messages(PERSON_ALICE, ["pelican"], skip_session=ALICE, skip_last_turns=1)
        assert [m.content for m, _ in hits] == ["pelican"]
        both = await store.search_messages(PERSON_ALICE, ["pelican"])
        assert sorted(m.content for m, _ in both) == ["pelican", "pelican again"]

    async def test_tool_messages_are_not_searched_and_replaced_turns_leave_the_index(self, store: Any) -> None:
        await store.append_turn(ALICE, "main", [
            Message("user", "ask"), Message("tool", "", (), (ToolResult("c", "zeppelin secret"),)),
            Message("assistant", "done")], 1)
        assert await store.search_messages(PERSON_ALICE, ["zeppelin"]) == []
        await store.append_turn(ALICE, "main", said("marmalade", "ok"), 1)
        await store.append_turn(ALICE, "main", said("something else", "ok"), 1, replaces=2)
        assert await store.search_messages(PERSON_ALICE, ["marmalade"]) == []

    async def test_messages_near_gives_neighbours_in_order(self, store: Any) -> None:
        for i in range(1, 5):
            await store.append_turn(ALICE, "main", said(f"question {i} unicorn" if i == 3 else f"question {i}",
                                                        f"answer {i}"), 1)
        [(hit, _)] = await store.search_messages(PERSON_ALICE, ["unicorn"])
        near = await store.messages_near([hit.id], before=2, after=1)
        assert [m.content for m in near[hit.id]] == ["question 2", "answer 2", "question 3 unicorn", "answer 3"]
        assert await store.messages_near([]) == {}
        assert await store.messages_near([10 ** 9]) == {}

    # ------------------------------------------------------------ facts

    async def test_facts_dedupe_supersede_search_and_retire(self, store: Any) -> None:
        first = await store.add_fact(PERSON_ALICE, Fact("Alice", "lives in", "Lisbon", confidence=0.5))
        assert first.id is not None
        same = await store.add_fact(PERSON_ALICE, Fact("alice", "Lives  in", "lisbon", confidence=0.9))
        assert same.id == first.id and same.confidence == 0.9
        moved = await store.add_fact(PERSON_ALICE, Fact("Alice", "lives in", "Porto"))
        assert moved.id != first.id
        active = await store.list_facts(PERSON_ALICE)
        assert [f.object for f in active] == ["Porto"]
        history = await store.list_facts(PERSON_ALICE, include_superseded=True)
        old = next(f for f in history if f.id == first.id)
        assert old.superseded_at and old.superseded_by == moved.id
        await store.add_fact(PERSON_OTHER, Fact("Carol", "lives in", "Porto"))
        hits = await store.search_facts(PERSON_ALICE, "where does alice live")
        assert [f.object for f, _ in hits] == ["Porto"]
        assert len(await store.search_facts(PERSON_ALICE, "lisbon", include_superseded=True)) == 1
        assert await store.search_facts(PERSON_ALICE, "lisbon") == []
        assert {f.subject for f, _ in await store.search_facts(None, "porto")} == {"Alice", "Carol"}
        assert await store.search_facts(PERSON_ALICE, "   ") == []
        assert await store.retire_fact(PERSON_OTHER, moved.id) is None  # another person's fact: untouched
        retired = await store.retire_fact(PERSON_ALICE, moved.id)
        assert retired is not None and retired.superseded_at
        assert await store.list_facts(PERSON_ALICE) == []
        with pytest.raises(ValueError):
            await store.add_fact(PERSON_ALICE, Fact("", "x", "y"))

    # ------------------------------------------------------------ usage (budgets sum it)

    async def test_usage_sums_and_reports(self, store: Any) -> None:
        await store.record_usage(usage("2026-11-24T23:59:59.999999Z", ALICE, "main", 100, 1))
        await store.record_usage(usage("2026-11-25T00:00:00Z", ALICE, "main", 10, 5))
        await store.record_usage(usage("2026-11-25T08:00:00+02:00", BOB, "main", 20, 5))  # 06:00Z
        await store.record_usage(usage("2026-11-25T09:00:00Z", OTHER, "work", 40, 5, priced=False, cost_usd=0.0))
        assert await store.sum_tokens("") == 101 + 15 + 25 + 45
        assert await store.sum_tokens("2026-11-25") == 85
        assert await store.sum_tokens("2026-11-25T06:00:00Z") == 70
        assert await store.sum_tokens("2026-11-25T06:00:00.000001Z") == 45
        assert await store.sum_tokens("2026-11-25", session_key=ALICE) == 15
        assert await store.sum_tokens("2026-11-24", agent_id="main") == 141
        assert await store.sum_tokens("2026-11-25T07:00:00Z", session_key=OTHER, agent_id="work") == 45
        days = await store.usage_report("day")
        assert [(r["group"], r["calls"]) for r in days] == [("2026-11-24", 1), ("2026-11-25", 3)]
        agents = {r["group"]: r for r in await store.usage_report("agent")}
        assert agents["work"]["unpriced_calls"] == 1 and "unpriced_calls" not in agents["main"]
        assert [r["group"] for r in await store.usage_report("model")] == ["echo:echo"]
        assert [r["group"] for r in await store.usage_report("session", session_key=BOB)] == [BOB]
        with pytest.raises(ValueError):
            await store.usage_report("planet")
        with pytest.raises(ValueError):
            await store.record_usage(usage("yesterday"))
        with pytest.raises(ValueError):
            await store.sum_tokens("not a time")

    async def test_usage_sums_tokens_and_dollars_by_person_and_marks_estimates(self, store: Any) -> None:
        await store.record_usage(usage("2026-11-25T00:00:00Z", ALICE, "main", 10, 5, cost_usd=0.25))
        await store.record_usage(usage("2026-11-25T01:00:00Z", BOB, "work", 20, 5, cost_usd=0.5, estimated=True))
        await store.record_usage(usage("2026-11-25T02:00:00Z", OTHER, "main", 40, 5, cost_usd=1.0))
        await store.record_usage(usage("2026-11-25T03:00:00Z", "main:telegram:bot_x:dave", "main", 1, 1))
        assert await store.sum_usage("2026-11-25") == (87, 1.75)
        assert await store.sum_usage("2026-11-25", person="telegram:bot") == (40, 0.75)  # not bot_x's
        assert await store.sum_usage("2026-11-25", person="telegram:bot", agent_id="work") == (25, 0.5)
        assert await store.sum_usage("2026-11-25T01:00:00Z", session_key=OTHER) == (45, 1.0)
        assert await store.sum_usage("2026-11-26") == (0, 0.0)
        agents = {r["group"]: r for r in await store.usage_report("agent")}
        assert agents["work"]["estimated_calls"] == 1 and "estimated_calls" not in agents["main"]

    async def test_usage_cost_is_kept(self, store: Any) -> None:
        await store.record_usage(usage("2026-11-25T10:00:00Z", inp=1000, out=200, cost_usd=0.006,
                                       cache_read_tokens=7, cache_write_tokens=3))
        [row] = await store.usage_report("model")
        assert row == {"group": "echo:echo", "calls": 1, "input_tokens": 1000, "output_tokens": 200,
                       "cost_usd": pytest.approx(0.006)}

    # ------------------------------------------------------------ kv

    async def test_kv_namespaces_are_separate_and_blocking_calls_work_from_threads(self, store: Any) -> None:
        def work() -> None:
            store.kv_set("plugin-a", "k", "1")
            store.kv_set("plugin-b", "k", "2")
            store.kv_set("plugin-a", "k", "one")
            store.kv_set("plugin-a", "unicode", "ünï ✓")

        thread = threading.Thread(target=work)
        thread.start()
        await asyncio.to_thread(thread.join)
        assert await asyncio.to_thread(store.kv_get, "plugin-a", "k") == "one"
        assert await asyncio.to_thread(store.kv_get, "plugin-b", "k") == "2"
        assert await asyncio.to_thread(store.kv_get, "plugin-a", "unicode") == "ünï ✓"
        await asyncio.to_thread(store.kv_delete, "plugin-a", "k")
        await asyncio.to_thread(store.kv_delete, "plugin-a", "never-there")
        assert await asyncio.to_thread(store.kv_get, "plugin-a", "k") is None
        assert await asyncio.to_thread(store.kv_get, "plugin-b", "k") == "2"
        with pytest.raises(TypeError):
            await asyncio.to_thread(store.kv_set, "plugin-a", "k", 5)

    # ------------------------------------------------------------ inbox

    async def test_inbox_dedupes_lists_pending_in_order_and_replied_is_final(self, store: Any) -> None:
        msg = IncomingMessage(channel="tg", account="bot", content="hi", peer="alice", message_id="m1")
        first, new = await store.inbox_add("tg", "m1", msg)
        assert new
        assert await store.inbox_add("tg", "m1", msg) == (first, False)  # the platform's retry
        second, _ = await store.inbox_add("tg", None, IncomingMessage(channel="tg", account="bot", content="x", peer="b"))
        third, _ = await store.inbox_add("tg", None, IncomingMessage(channel="tg", account="bot", content="y", peer="c"))
        assert second != third  # no platform id: always new
        pending = await store.inbox_pending()
        assert [i.id for i in pending] == [first, second, third]
        assert pending[0].message == msg and pending[0].state == "pending" and pending[0].received_at
        assert await store.inbox_answer(first, "hello alice")
        assert (await store.inbox_pending())[0].reply == "hello alice"
        assert await store.inbox_mark(first, "pending", reply_status=502, error="HTTP 502")
        assert (await store.inbox_pending())[0].attempts == 1
        assert await store.inbox_mark(first, "replied", reply_status=200)
        assert not await store.inbox_mark(first, "failed")  # replied is final
        assert not await store.inbox_answer(first, "again")
        assert await store.inbox_mark(second, "ignored")
        assert await store.inbox_mark(third, "failed", error="gave up")
        assert not await store.inbox_mark(10 ** 9, "failed")
        assert await store.inbox_pending() == []
        assert await store.inbox_counts() == {"pending": 0, "replied": 1, "failed": 1, "ignored": 1}
        with pytest.raises(ValueError):
            await store.inbox_mark(second, "lost")
        assert set(INBOX_STATES) == set(await store.inbox_counts())

    async def test_a_turn_keeps_its_webhook_reply_in_its_own_transaction(self, store: Any) -> None:
        ask = IncomingMessage(channel="tg", account="bot", content="question", peer="alice")
        pending, _ = await store.inbox_add("tg", "q1", ask)
        sent, _ = await store.inbox_add("tg", "q2", ask)
        await store.inbox_mark(sent, "replied", reply_status=200)
        await store.append_turn(ALICE, "main", said("question", "the answer"), 10, answers=(pending, "the answer"))
        await store.append_turn(ALICE, "main", said("question", "again"), 10, answers=(sent, "a second answer"))
        with pytest.raises(ValueError):  # a turn that is not stored keeps no reply either
            await store.append_turn(ALICE, "main", [Message("wizard", "?")], 1, answers=(pending, "lost"))
        (item,) = await store.inbox_pending()
        assert (item.id, item.reply) == (pending, "the answer")  # a replied item is left alone
        assert await store.inbox_counts() == {"pending": 1, "replied": 1, "failed": 0, "ignored": 0}

    async def test_inbox_claims_give_each_pending_item_to_one_owner_until_its_lease_runs_out(self, store: Any) -> None:
        ids = []
        for n in range(4):
            item, _ = await store.inbox_add("tg", f"c{n}", IncomingMessage(channel="tg", account="bot", content=str(n)))
            ids.append(item)
        await store.inbox_mark(ids[3], "replied", reply_status=200)
        mine = await store.inbox_claim("gw-a", 600)
        assert [i.id for i in mine] == ids[:3] and mine[0].message.content == "0"
        assert await store.inbox_claim("gw-b", 600) == []  # held: nobody else gets them
        assert await store.inbox_claim("gw-c", 0, ids=[ids[0]]) == []
        # a lease that ran out: another owner takes the item (a crashed gateway's delivery is retried)
        late, _ = await store.inbox_add("tg", "late", IncomingMessage(channel="tg", account="bot", content="late"))
        [short] = await store.inbox_claim("gw-a", 0, ids=[late])
        assert short.id == late
        [taken] = await store.inbox_claim("gw-b", 600, ids=[late, ids[3]])  # replied items are never claimed
        assert taken.id == late
        assert await store.inbox_renew("gw-a", [late], 600) == 0  # no longer gw-a's
        assert await store.inbox_renew("gw-a", [ids[1], ids[2]], 600) == 2
        assert await store.inbox_renew("gw-a", [], 600) == 0
        # renewing a short lease keeps the item
        [renewed] = await store.inbox_claim("gw-a", 0, ids=[ids[0]]) or [None]
        assert renewed is None  # still gw-a's long lease
        await store.inbox_mark(ids[1], "pending", reply_status=502, error="HTTP 502")  # a retry keeps its claim
        assert await store.inbox_claim("gw-b", 600, ids=[ids[1]]) == []
        assert await store.inbox_claim("gw-b", 600, limit=0) == []

    async def test_concurrent_claims_never_share_an_item(self, store: Any) -> None:
        for n in range(30):
            await store.inbox_add("tg", f"r{n}", IncomingMessage(channel="tg", account="bot", content=str(n)))
        rounds = await asyncio.gather(*(store.inbox_claim(f"gw-{k}", 600, limit=4) for k in range(10)))
        taken = [i.id for got in rounds for i in got]
        assert len(taken) == len(set(taken)) == 30

    # ------------------------------------------------------------ budget counters

    async def test_budget_reservations_fit_every_limit_or_change_nothing(self, store: Any) -> None:
        limits = {"daily:2026-12-04": 1000, "session:s1": 600}
        rid, seen = await store.budget_reserve("gw-a", limits, 400, hold_s=600, seed={"daily:2026-12-04": 100})
        assert rid is not None and seen == {"daily:2026-12-04": (100, 0), "session:s1": (0, 0)}
        assert await store.budget_counters(list(limits)) == {"daily:2026-12-04": (100, 400), "session:s1": (0, 400)}
        # 100 + 400 + 300 fits the day, but 400 + 300 is over the session's 600: refused, nothing changed
        refused, seen = await store.budget_reserve("gw-b", limits, 300, hold_s=600)
        assert refused is None and seen["session:s1"] == (0, 400)
        assert await store.budget_counters(list(limits)) == {"daily:2026-12-04": (100, 400), "session:s1": (0, 400)}
        # the call used 250 of its 400: settled, the counters hold what was spent
        await store.budget_settle(rid, list(limits), 250)
        assert await store.budget_counters(list(limits)) == {"daily:2026-12-04": (350, 0), "session:s1": (250, 0)}
        # the seed counts only the first time a counter is seen
        again, seen = await store.budget_reserve("gw-b", limits, 300, hold_s=600, seed={"daily:2026-12-04": 5000})
        assert again is not None and seen["daily:2026-12-04"] == (350, 0)
        await store.budget_settle(again, list(limits), 300)
        assert await store.budget_counters(["session:s1", "never"]) == {"session:s1": (550, 0)}
        # tokens spent without a reservation (or after it expired) still count
        await store.budget_settle(None, ["session:s1"], 50)
        assert (await store.budget_counters(["session:s1"]))["session:s1"] == (600, 0)

    async def test_an_expired_reservation_holds_nothing(self, store: Any) -> None:
        first, _ = await store.budget_reserve("gw-dead", {"daily:x": 100}, 100, hold_s=0)
        assert first is not None
        second, seen = await store.budget_reserve("gw-live", {"daily:x": 100}, 100, hold_s=600)
        assert second is not None and seen == {"daily:x": (0, 0)}

    async def test_concurrent_reservations_never_overspend(self, store: Any) -> None:
        granted = await asyncio.gather(*(
            store.budget_reserve(f"gw-{i % 3}", {"monthly:2026-12": 1000}, 100, hold_s=600) for i in range(25)))
        assert sum(rid is not None for rid, _ in granted) == 10
        assert await store.budget_counters(["monthly:2026-12"]) == {"monthly:2026-12": (0, 1000)}

    # ------------------------------------------------------------ operating it

    async def test_describe_and_ping(self, store: Any) -> None:
        info = store.describe()
        assert isinstance(info["kind"], str) and info["kind"]
        assert isinstance(info["url"], str)
        assert isinstance(info["persistent"], bool)
        assert isinstance(info.get("shared", False), bool)  # absent: not shared
        await store.ping()

    async def test_what_was_acknowledged_survives_a_reopen(self, store: Any, open_store: Any) -> None:
        if not store.describe()["persistent"]:
            pytest.skip("this store keeps nothing")
        await store.append_turn(ALICE, "main", said("remember the aardvark", "noted"), 9, speaker="Alice")
        await store.record_usage(usage("2026-11-25T10:00:00Z"))
        await store.add_fact(PERSON_ALICE, Fact("Alice", "likes", "aardvarks"))
        await asyncio.to_thread(store.kv_set, "ns", "k", "v")
        item, _ = await store.inbox_add("tg", "m9", IncomingMessage(channel="tg", account="bot", content="t", peer="a"))
        await store.inbox_answer(item, "the reply")
        await store.aclose()
        await store.aclose()  # idempotent
        again = await _maybe(open_store())
        [turn] = await again.load_turns(ALICE, 5)
        assert [m.content for m in turn.messages] == ["remember the aardvark", "noted"]
        assert (await again.search_messages(PERSON_ALICE, ["aardvark"]))[0][0].speaker == "Alice"
        assert await again.sum_tokens("2026-11-25") == 15
        assert [f.object for f in await again.list_facts(PERSON_ALICE)] == ["aardvarks"]
        assert await asyncio.to_thread(again.kv_get, "ns", "k") == "v"
        [pending] = await again.inbox_pending()
        assert (pending.id, pending.reply) == (item, "the reply")
        # a new turn continues the numbering
        assert (await again.append_turn(ALICE, "main", said("more", "ok"), 1)).seq == 2
