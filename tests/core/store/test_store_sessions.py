"""Sessions, turns and messages: append_turn, load_turns, history, list/count sessions."""

from __future__ import annotations

import datetime as dt

import pytest

from exoclaw_core.store import SQLiteStore
from exoclaw_hooks import Message, SessionInfo, ToolCall, ToolResult, Turn

pytestmark = pytest.mark.asyncio

T0 = dt.datetime(2026, 11, 25, 11, 38, 47, 123456, tzinfo=dt.timezone.utc)


class Clock:
    """A settable clock that moves one second per reading."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        current = self.now
        self.now += dt.timedelta(seconds=1)
        return current


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = SQLiteStore(tmp_path / "exoclaw.db", clock=clock)
    clock.now = T0  # opening read the clock (migrations are time-stamped)
    yield s
    s.close()


def tool_turn(n: int) -> list[Message]:
    """A user message, a tool call, its result and the reply."""
    return [
        Message("user", f"question {n}"),
        Message(
            "assistant",
            "let me look",
            tool_calls=(ToolCall(f"call-{n}", "lookup", {"q": n, "nested": {"ü": [1, 2]}}),),
        ),
        Message("tool", tool_results=(ToolResult(f"call-{n}", f"result {n}", is_error=n % 2 == 0),)),
        Message("assistant", f"answer {n}"),
    ]


async def test_append_turn_returns_the_stored_turn(store):
    turn = await store.append_turn("a:c:u:p", "a", tool_turn(1), 42)
    assert isinstance(turn, Turn)
    assert turn.seq == 1
    assert turn.tokens == 42
    assert turn.created_at == "2026-11-25T11:38:47.123456Z"
    assert [m.role for m in turn.messages] == ["user", "assistant", "tool", "assistant"]
    assert all(m.created_at == turn.created_at for m in turn.messages)
    second = await store.append_turn("a:c:u:p", "a", [Message("user", "hi")], 1)
    assert second.seq == 2
    assert second.created_at == "2026-11-25T11:38:48.123456Z"


async def test_message_created_at_is_kept_when_given(store):
    stamped = Message("user", "hi", created_at="2020-01-01T00:00:00.000000Z")
    turn = await store.append_turn("k", "a", [stamped, Message("assistant", "yo")], 0)
    assert turn.messages[0].created_at == "2020-01-01T00:00:00.000000Z"
    (loaded,) = await store.load_turns("k", 1)
    assert loaded.messages[0].created_at == "2020-01-01T00:00:00.000000Z"
    assert loaded.messages[1].created_at == turn.created_at


async def test_load_turns_round_trips_whole_turns_with_tools(store):
    appended = [await store.append_turn("s", "a", tool_turn(n), n) for n in range(1, 4)]
    loaded = await store.load_turns("s", 10)
    assert loaded == appended
    call = loaded[0].messages[1].tool_calls[0]
    assert call == ToolCall("call-1", "lookup", {"q": 1, "nested": {"ü": [1, 2]}})
    result = loaded[1].messages[2].tool_results[0]
    assert result == ToolResult("call-2", "result 2", is_error=True)


async def test_load_turns_returns_the_last_n_oldest_first(store):
    for n in range(1, 21):
        await store.append_turn("s", "a", [Message("user", f"u{n}"), Message("assistant", f"r{n}")], 1)
    last = await store.load_turns("s", 5)
    assert [t.seq for t in last] == [16, 17, 18, 19, 20]
    assert [t.messages[0].content for t in last] == ["u16", "u17", "u18", "u19", "u20"]
    assert await store.load_turns("s", 0) == []
    assert await store.load_turns("s", -3) == []
    assert await store.load_turns("nobody", 5) == []
    assert len(await store.load_turns("s", 100)) == 20


async def test_load_turns_uses_the_session_seq_index(store):
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM turns WHERE session_key = ? ORDER BY seq DESC LIMIT ?", ("s", 5)
    ).fetchall()
    detail = " ".join(row[-1] for row in plan)
    assert "INDEX" in detail and "(session_key=?)" in detail and "TEMP B-TREE" not in detail


async def test_sessions_do_not_mix(store):
    await store.append_turn("one", "a", [Message("user", "1")], 1)
    await store.append_turn("two", "a", [Message("user", "2")], 1)
    await store.append_turn("one", "a", [Message("user", "3")], 1)
    assert [t.seq for t in await store.load_turns("one", 5)] == [1, 2]
    assert [t.seq for t in await store.load_turns("two", 5)] == [1]


async def test_turn_without_messages_is_kept(store):
    turn = await store.append_turn("s", "a", [], 0)
    assert turn.messages == ()
    assert await store.load_turns("s", 1) == [turn]


async def test_unknown_role_is_refused_and_nothing_is_written(store):
    with pytest.raises(ValueError):
        await store.append_turn("s", "a", [Message("user", "x"), Message("system", "y")], 1)  # type: ignore[arg-type]
    assert await store.count_sessions() == 0


async def test_failed_append_leaves_no_partial_record(store, monkeypatch):
    import exoclaw_core.store.sessions as sessions

    def boom(_calls):
        raise RuntimeError("encoding failed")

    await store.append_turn("s", "a", [Message("user", "first")], 5)
    monkeypatch.setattr(sessions, "_encode_calls", boom)
    with pytest.raises(RuntimeError):
        await store.append_turn("s", "a", [Message("user", "second")], 5)
    monkeypatch.undo()
    (info,) = await store.list_sessions()
    assert (info.message_count, info.tokens) == (1, 5)
    assert [t.seq for t in await store.load_turns("s", 5)] == [1]


async def test_a_write_that_fails_inside_the_transaction_rolls_back(store):
    await store.append_turn("s", "a", [Message("user", "first")], 5)
    # The messages' INSERT fails after the session row was updated and the
    # turn row inserted: the whole transaction must roll back.
    store._conn.execute("CREATE TRIGGER no_msgs BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(Exception, match="no"):
        await store.append_turn("s", "a", [Message("user", "second")], 7)
    store._conn.execute("DROP TRIGGER no_msgs")
    (info,) = await store.list_sessions()
    assert (info.message_count, info.tokens) == (1, 5)
    assert [t.seq for t in await store.load_turns("s", 5)] == [1]
    assert (await store.append_turn("s", "a", [Message("user", "third")], 1)).seq == 2


async def test_session_rows_count_messages_and_tokens(store):
    await store.append_turn("s", "agent", tool_turn(1), 100)
    await store.append_turn("s", "agent", [Message("user", "x"), Message("assistant", "y")], 20)
    (info,) = await store.list_sessions()
    assert info == SessionInfo(
        key="s",
        agent_id="agent",
        created_at="2026-11-25T11:38:47.123456Z",
        updated_at="2026-11-25T11:38:48.123456Z",
        message_count=6,
        tokens=120,
    )


async def test_list_sessions_most_recent_first_filter_and_limit(store):
    await store.append_turn("a1", "a", [Message("user", "x")], 1)
    await store.append_turn("b1", "b", [Message("user", "x")], 1)
    await store.append_turn("a2", "a", [Message("user", "x")], 1)
    await store.append_turn("a1", "a", [Message("user", "x")], 1)  # a1 is now the most recent
    assert [s.key for s in await store.list_sessions()] == ["a1", "a2", "b1"]
    assert [s.key for s in await store.list_sessions(agent_id="a")] == ["a1", "a2"]
    assert [s.key for s in await store.list_sessions(agent_id="b")] == ["b1"]
    assert [s.key for s in await store.list_sessions(limit=2)] == ["a1", "a2"]
    assert [s.key for s in await store.list_sessions(agent_id="a", limit=1)] == ["a1"]
    assert await store.list_sessions(limit=0) == []
    assert await store.list_sessions(agent_id="nobody") == []
    assert await store.count_sessions() == 3


async def test_history_shape(store):
    await store.append_turn("s", "a", tool_turn(1), 1)
    await store.append_turn("s", "a", [Message("user", "plain"), Message("assistant", "reply")], 1)
    history = await store.history("s")
    assert [h["role"] for h in history] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert [h["turn"] for h in history] == [1, 1, 1, 1, 2, 2]
    assert history[0] == {
        "role": "user",
        "content": "question 1",
        "created_at": "2026-11-25T11:38:47.123456Z",
        "turn": 1,
    }
    assert history[1]["tool_calls"] == [{"id": "call-1", "name": "lookup", "input": {"q": 1, "nested": {"ü": [1, 2]}}}]
    assert "tool_results" not in history[1]
    assert history[2]["tool_results"] == [{"tool_use_id": "call-1", "content": "result 1", "is_error": False}]
    assert "tool_calls" not in history[2]
    assert "tool_calls" not in history[3] and "tool_results" not in history[3]


async def test_history_limit_keeps_the_last_messages(store):
    await store.append_turn("s", "a", tool_turn(1), 1)
    await store.append_turn("s", "a", [Message("user", "plain"), Message("assistant", "reply")], 1)
    last3 = await store.history("s", limit=3)
    assert [(h["role"], h["content"]) for h in last3] == [
        ("assistant", "answer 1"),
        ("user", "plain"),
        ("assistant", "reply"),
    ]
    assert await store.history("s", limit=0) == []
    assert len(await store.history("s", limit=1000)) == 6
    assert await store.history("unknown") == []
