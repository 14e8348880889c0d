"""append_turn(..., replaces=seq): a regenerated answer replaces a turn in one transaction."""

from __future__ import annotations

import pytest

from exoclaw_core.store import SQLiteStore
from exoclaw_hooks import Message, ToolCall, ToolResult

pytestmark = pytest.mark.asyncio
KEY = "a:t:u:main"


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "exoclaw.db")
    yield s
    s.close()


def exchange(q: str, a: str) -> list[Message]:
    return [Message("user", q), Message("assistant", a)]


async def test_replacing_the_last_turn_keeps_one_question_and_the_new_answer(store):
    await store.append_turn(KEY, "a", exchange("q1", "a1"), 10)
    tool_turn = [Message("user", "q2"), Message("assistant", "", (ToolCall("c1", "echo", {}),)),
                 Message("tool", tool_results=(ToolResult("c1", "x"),)), Message("assistant", "a2")]
    await store.append_turn(KEY, "a", tool_turn, 20)
    turn = await store.append_turn(KEY, "a", exchange("q2", "a2 again"), 30, replaces=2)
    assert turn.seq == 2
    turns = await store.load_turns(KEY, 10)
    assert [(t.seq, [m.content for m in t.messages]) for t in turns] == [(1, ["q1", "a1"]), (2, ["q2", "a2 again"])]
    [info] = await store.list_sessions()
    assert info.message_count == 4 and info.tokens == 60  # spent tokens stay counted
    assert [m["content"] for m in await store.history(KEY)] == ["q1", "a1", "q2", "a2 again"]


async def test_replacing_an_unknown_turn_only_appends(store):
    await store.append_turn(KEY, "a", exchange("q1", "a1"), 10)
    turn = await store.append_turn(KEY, "a", exchange("q2", "a2"), 10, replaces=7)
    assert turn.seq == 2
    [info] = await store.list_sessions()
    assert info.message_count == 4
